"""Send a few datagrams to a multicast group.

Usage::

    python examples/sender.py [GROUP] [PORT] [--interface IF] [--count N] [--ttl TTL]
                              [--message TEXT] [--interval SECONDS]

GROUP defaults to 239.255.77.77 and PORT to 5077, matching ``receiver.py``. The interface
defaults to ``lo``, the loopback interface, so the example as it stands sends nothing out of
this machine. Give ``--interface eth0`` to send on a real network.

``--ttl`` sets how far the datagrams go (default 1: they never leave the subnet). It takes a
number 0-255 or a conventional scope name: host (0), subnet (1), site (32), region (64),
continent (128), unrestricted (255). With TTL 0 datagrams reach only members on this host.

Each datagram carries ``TEXT #N``; the sender prints one ``sent ...`` line per datagram.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiomcast


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Send datagrams to a multicast group.")
    parser.add_argument("group", nargs="?", default="239.255.77.77", help="destination group")
    parser.add_argument("port", nargs="?", type=int, default=5077, help="destination UDP port")
    parser.add_argument(
        "--interface",
        "-i",
        default="lo",
        help="outgoing interface: name, index or address (default lo: stays on this host)",
    )
    parser.add_argument("--count", "-c", type=int, default=3, help="datagrams to send")
    parser.add_argument("--ttl", default="1", help="TTL 0-255 or a scope name (default 1)")
    parser.add_argument("--message", "-m", default="hello, multicast", help="payload text")
    parser.add_argument(
        "--interval", type=float, default=0.1, help="seconds between datagrams (default 0.1)"
    )
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    async with aiomcast.open_sender(
        args.group, args.port, interface=args.interface, ttl=args.ttl
    ) as tx:
        for n in range(1, args.count + 1):
            if n > 1:
                await asyncio.sleep(args.interval)
            text = f"{args.message} #{n}"
            await tx.send(text.encode())  # to the group and port given to open_sender
            print(f"sent {text!r} to {args.group}:{args.port} with ttl {tx.ttl}", flush=True)


if __name__ == "__main__":
    try:
        aiomcast.run(main())  # on uvloop when it is installed
    except KeyboardInterrupt:
        pass
    except aiomcast.AiomcastError as exc:
        sys.exit(f"sender: {exc}")
