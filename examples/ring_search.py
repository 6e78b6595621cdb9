"""Find the nearest responder with an expanding-ring search (seed S10).

Usage::

    python examples/ring_search.py --respond [GROUP] [PORT] [--interface IF] [--name NAME]
    python examples/ring_search.py [GROUP] [PORT] [--interface IF] [--max-ttl N] [--wait S]

GROUP defaults to 239.255.77.79 and PORT to 5079. The interface defaults to ``lo``, the
loopback interface, so the example as it stands sends nothing out of this machine. Give
``--interface eth0`` to search a real network.

With ``--respond`` the program joins GROUP on PORT and answers every query until Ctrl-C.
Without it, it searches: it sends a query to GROUP:PORT with TTL 0, waits ``--wait`` seconds
for an answer, then tries TTL 1, 2, ... up to ``--max-ttl``, and prints the first TTL that
drew an answer. A responder on this host answers the TTL 0 query (seed S8: TTL 0 stays on the
host but reaches its members); one on the same subnet answers TTL 1; each multicast router
in between adds one::

    python examples/ring_search.py --respond --name here &
    python examples/ring_search.py
    # found 'here' at TTL 0 (127.0.0.1:5079), after trying TTL 0

How the answer comes back: the searcher's Endpoint joins the group on a port of its own
(chosen by the kernel), and the responder sends its answer to the group on the port the query
came from, with TTL ``--reply-ttl`` (default 32, the "site" scope of seed S9), so only the
searcher hears it.
"""

from __future__ import annotations

import argparse
import socket
import sys

import aiomcast

QUERY = b"aiomcast ring search: who is there?"
ANSWER = b"aiomcast ring search: here is "


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Expanding-ring search over multicast.")
    parser.add_argument("group", nargs="?", default="239.255.77.79", help="group to search")
    parser.add_argument("port", nargs="?", type=int, default=5079, help="responders' UDP port")
    parser.add_argument(
        "--interface",
        "-i",
        default="lo",
        help="interface: name, index or address (default lo: stays on this host)",
    )
    parser.add_argument("--respond", action="store_true", help="answer queries, do not search")
    parser.add_argument("--name", default=socket.gethostname(), help="responder's name")
    parser.add_argument(
        "--reply-ttl", default="site", help="TTL of answers, 0-255 or a scope (default site)"
    )
    parser.add_argument("--max-ttl", type=int, default=32, help="largest TTL to try")
    parser.add_argument("--wait", type=float, default=0.5, help="seconds to wait at each TTL")
    return parser.parse_args()


async def respond(args: argparse.Namespace) -> None:
    async with aiomcast.open_endpoint(
        args.group, args.port, interface=args.interface, ttl=args.reply_ttl
    ) as responder:
        print(
            f"answering queries on {args.group}:{args.port} via {args.interface} as {args.name!r}",
            file=sys.stderr,
            flush=True,
        )
        async for query in responder:
            if query.payload != QUERY:
                continue
            # Multicast back to the group, on the port the query came from: the searcher's.
            await responder.send(ANSWER + args.name.encode(), args.group, query.source_port)
            print(f"answered {query.source}:{query.source_port}", flush=True)


async def search(args: argparse.Namespace) -> int:
    family = aiomcast.Group(args.group).family
    # Port 0: the kernel picks a port for the searcher, where the answers arrive.
    async with aiomcast.open_endpoint(
        args.group, 0, interface=args.interface, family=family
    ) as searcher:
        result = await aiomcast.expanding_ring_search(
            searcher,
            QUERY,
            group=args.group,
            port=args.port,
            max_ttl=args.max_ttl,
            wait=args.wait,
            accept=lambda datagram: datagram.payload.startswith(ANSWER),
        )
    tried = f"{result.tried[0]}-{result.tried[-1]}" if len(result.tried) > 1 else result.tried[0]
    if result.reply is None:
        print(f"no responder within TTL {tried}", file=sys.stderr)
        return 1
    name = result.reply.payload[len(ANSWER) :].decode("utf-8", errors="replace")
    print(
        f"found {name!r} at TTL {result.ttl} "
        f"({result.reply.source}:{result.reply.source_port}), after trying TTL {tried}",
        flush=True,
    )
    return 0


async def main() -> int:
    args = parse_args()
    if args.respond:
        await respond(args)
        return 0
    return await search(args)


if __name__ == "__main__":
    try:
        sys.exit(aiomcast.run(main()))  # on uvloop when it is installed
    except KeyboardInterrupt:
        pass
    except aiomcast.AiomcastError as exc:
        sys.exit(f"ring_search: {exc}")
