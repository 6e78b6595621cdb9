"""Receive a source-specific multicast (SSM) group: datagrams from chosen senders only.

Usage::

    python examples/ssm_receiver.py [GROUP] [PORT] [--source ADDR ...] [--interface IF]
                                    [--count N]

GROUP defaults to 232.255.77.77 (the IPv4 SSM range 232.0.0.0/8; IPv6 SSM groups are
ff3x::/32), PORT to 5077 and the source to 127.0.0.1 on the loopback interface ``lo``, so the
example as it stands sends nothing out of this machine. On a network, name the sender::

    python examples/ssm_receiver.py 232.1.2.3 5000 --source 192.0.2.10 --interface eth0

The host tells its routers (IGMPv3 / MLDv2) which sources it wants, and its kernel drops
datagrams from any other sender. Try it with the sender in a second terminal::

    python examples/ssm_receiver.py --count 3
    python examples/sender.py 232.255.77.77 --count 3

It says ``listening on ...`` on stderr once joined, then prints ``SOURCE:PORT TEXT`` per
datagram, and stops after ``--count`` datagrams or on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

import aiomcast


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Receive an SSM group from chosen senders.")
    parser.add_argument("group", nargs="?", default="232.255.77.77", help="group to join")
    parser.add_argument("port", nargs="?", type=int, default=5077, help="UDP port")
    parser.add_argument(
        "--source",
        "-s",
        action="append",
        help="sender to receive from (repeatable; default 127.0.0.1)",
    )
    parser.add_argument("--interface", "-i", default="lo", help="interface to join on (default lo)")
    parser.add_argument(
        "--count", "-c", type=int, default=0, help="stop after N datagrams (default: never)"
    )
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    sources = args.source or ["127.0.0.1"]
    # One source-specific membership per (group, source); leaving the `async with` leaves
    # them all and closes the socket.
    async with aiomcast.open_receiver(
        args.group, args.port, interface=args.interface, sources=sources
    ) as rx:
        where = f"{args.group}:{args.port} via {args.interface}"
        print(f"listening on {where} from {', '.join(sources)}", file=sys.stderr, flush=True)
        received = 0
        async for datagram in rx:
            text = datagram.payload.decode("utf-8", errors="replace")
            print(f"{datagram.source}:{datagram.source_port} {text}", flush=True)
            received += 1
            if received == args.count:
                break


if __name__ == "__main__":
    try:
        aiomcast.run(main())  # on uvloop when it is installed
    except KeyboardInterrupt:
        pass
    except aiomcast.AiomcastError as exc:
        sys.exit(f"ssm_receiver: {exc}")
