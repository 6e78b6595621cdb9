"""Join a group on every interface (or several), follow interface changes, print datagrams.

Usage::

    python examples/all_interfaces.py [GROUP] [PORT] [--all | --interface IF ...]
                                      [--follow] [--count N]

GROUP defaults to 239.255.77.77 and PORT to 5077. Without ``--all`` it joins on ``lo`` only,
so the example as it stands sends nothing out of this machine (``--interface`` is repeatable).
``--all`` joins on every interface that can carry multicast of the group's family: each one
is listed with the outcome (joined, or why not: down, no address, a kernel limit), and one
that fails does not stop the others. ``--follow`` keeps the memberships in step with the
host: an interface that comes up, gains an address or appears is joined, one that is deleted
and recreated is joined again, and each change is printed as it happens.

stdout: one line per interface (``joined GROUP on IF`` or ``not joined on IF: WHY``), then
``change: ...`` lines and ``SOURCE:PORT TEXT`` lines for datagrams. stderr says
``listening on ...`` once the joins are done. It stops after ``--count`` datagrams or on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiomcast


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Join a group on many interfaces.")
    parser.add_argument("group", nargs="?", default="239.255.77.77", help="group to join")
    parser.add_argument("port", nargs="?", type=int, default=5077, help="UDP port")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--all", action="store_true", help="every multicast-capable interface")
    where.add_argument(
        "--interface", "-i", action="append", help="an interface to join on (repeatable)"
    )
    parser.add_argument("--follow", action="store_true", help="follow interface changes")
    parser.add_argument(
        "--count", "-c", type=int, default=0, help="stop after N datagrams (default: never)"
    )
    return parser.parse_args()


async def print_changes(watcher: aiomcast.InterfaceWatcher) -> None:
    # Each change once, as it happens: what the interface did and what the receiver did
    # about it (joined, forgot, kept).
    async for change in watcher:
        print(f"change: {change}", flush=True)


async def main() -> None:
    args = parse_args()
    group = aiomcast.Group(args.group)
    chosen = None if args.all else (args.interface or ["lo"])
    async with aiomcast.open_receiver(
        None, args.port, family=group.family, follow_interfaces=args.follow
    ) as rx:
        results = rx.join_all_interfaces(group, chosen)
        for result in results:
            if result.joined:
                print(f"joined {group} on {result.interface}", flush=True)
            else:
                print(f"not joined on {result.interface}: {result.error}", flush=True)
        joined = sum(r.joined for r in results)
        print(
            f"listening on {group}:{args.port} via {joined} of {len(results)} interfaces",
            file=sys.stderr,
            flush=True,
        )
        watcher = rx.interface_watcher
        printer = asyncio.create_task(print_changes(watcher)) if watcher is not None else None
        received = 0
        try:
            async for datagram in rx:
                text = datagram.payload.decode("utf-8", errors="replace")
                print(f"{datagram.source}:{datagram.source_port} {text}", flush=True)
                received += 1
                if received == args.count:
                    break
        finally:
            if printer is not None:
                printer.cancel()


if __name__ == "__main__":
    try:
        aiomcast.run(main())  # on uvloop when it is installed
    except KeyboardInterrupt:
        pass
    except aiomcast.AiomcastError as exc:
        sys.exit(f"all_interfaces: {exc}")
