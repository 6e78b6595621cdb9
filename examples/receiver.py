"""Join a multicast group and print every datagram that arrives.

Usage::

    python examples/receiver.py [GROUP] [PORT] [--interface IF] [--count N]

GROUP defaults to 239.255.77.77 (administratively scoped, site-local) and PORT to 5077. The
interface defaults to ``lo``, the loopback interface, so the example as it stands sends
nothing out of this machine, not even a membership report. Give ``--interface eth0`` (or the
interface's address, or its index) to listen on a real network.

Try it with the sender in a second terminal::

    python examples/receiver.py --count 3
    python examples/sender.py --count 3

The receiver says ``listening on ...`` on stderr once it is a member of the group, then prints
one line per datagram: ``SOURCE:PORT TEXT``. With ``--metadata`` it asks the kernel for each
datagram's destination group, ingress interface, TTL and receive time and prints them too:
``SOURCE:PORT -> GROUP on IF ttl N at SECONDS TEXT``. It stops after ``--count`` datagrams, or
on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

import aiomcast


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Print datagrams sent to a multicast group.")
    parser.add_argument("group", nargs="?", default="239.255.77.77", help="group to join")
    parser.add_argument("port", nargs="?", type=int, default=5077, help="UDP port")
    parser.add_argument(
        "--interface",
        "-i",
        default="lo",
        help="interface to join on: name, index or address (default lo: stays on this host)",
    )
    parser.add_argument(
        "--count", "-c", type=int, default=0, help="stop after N datagrams (default: never)"
    )
    parser.add_argument(
        "--metadata",
        action="store_true",
        help="print each datagram's group, interface, TTL and kernel receive time",
    )
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    # The receiver is bound to the port and joined to the group on the interface; leaving the
    # `async with` leaves the group and closes the socket.
    # metadata=True reads per-datagram control messages from the kernel; without it the
    # fields stay None and cost nothing.
    async with aiomcast.open_receiver(
        args.group, args.port, interface=args.interface, metadata=args.metadata
    ) as rx:
        where = f"{args.group}:{args.port} via {args.interface}"
        print(f"listening on {where}", file=sys.stderr, flush=True)
        received = 0
        async for datagram in rx:
            text = datagram.payload.decode("utf-8", errors="replace")
            where = f"{datagram.source}:{datagram.source_port}"
            if args.metadata:
                seconds = (datagram.timestamp_ns or 0) / 1e9
                where += (
                    f" -> {datagram.group} on {datagram.interface} ttl {datagram.ttl}"
                    f" at {seconds:.6f}"
                )
            print(f"{where} {text}", flush=True)
            received += 1
            if received == args.count:
                break


if __name__ == "__main__":
    try:
        aiomcast.run(main())  # on uvloop when it is installed
    except KeyboardInterrupt:
        pass
    except aiomcast.AiomcastError as exc:
        sys.exit(f"receiver: {exc}")
