"""A tiny multicast chat: every line you type goes to everyone in the group.

Usage::

    python examples/chat.py [GROUP] [PORT] [--interface IF] [--name NAME] [--ttl TTL]

GROUP defaults to 239.255.77.78 and PORT to 5078. The interface defaults to ``lo``, the
loopback interface, so chats started as they stand talk only to other chats on this machine
and send nothing out of it. Give ``--interface eth0`` to chat across a real network (and
``--ttl`` to cross multicast routers).

Start two or more chats with different names, in different terminals::

    python examples/chat.py --name ada
    python examples/chat.py --name bob

Lines from the others are printed as ``name> text``; end with Ctrl-D (end of input).

One Endpoint both receives (it joins the group) and sends (to the group and its own port).
Each datagram carries ``name``, a NUL byte and the text. Loopback stays on, as it must when
several instances share a host (seed S14), so every chat also hears itself: it skips the
datagrams that carry its own name, so names must differ within a group.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import threading

import aiomcast

SEPARATOR = "\x00"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Chat with everyone in a multicast group.")
    parser.add_argument("group", nargs="?", default="239.255.77.78", help="group to chat in")
    parser.add_argument("port", nargs="?", type=int, default=5078, help="UDP port")
    parser.add_argument(
        "--interface",
        "-i",
        default="lo",
        help="interface: name, index or address (default lo: stays on this host)",
    )
    parser.add_argument("--name", "-n", default=getpass.getuser(), help="your name")
    parser.add_argument("--ttl", default="1", help="TTL 0-255 or a scope name (default 1)")
    return parser.parse_args()


def encode(name: str, text: str) -> bytes:
    return f"{name}{SEPARATOR}{text}".encode()


def decode(payload: bytes) -> tuple[str, str]:
    name, _, text = payload.decode("utf-8", errors="replace").partition(SEPARATOR)
    return name, text


def start_reading_stdin() -> asyncio.Queue[str | None]:
    """Feed stdin's lines into a queue; None marks the end of input.

    A daemon thread does the blocking reads: it works for terminals, pipes and files alike,
    leaves stdin in blocking mode for the shell, and does not keep the program alive after
    Ctrl-C (a thread of asyncio.to_thread would, until Enter is pressed).
    """
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\r\n"))
            loop.call_soon_threadsafe(lines.put_nowait, None)
        except RuntimeError:  # the loop closed first: the chat is over anyway
            pass

    threading.Thread(target=read, name="stdin", daemon=True).start()
    return lines


async def show_messages(chat: aiomcast.Endpoint, me: str) -> None:
    # The loop ends when the endpoint is closed (StopAsyncIteration on a close we asked for).
    async for datagram in chat:
        name, text = decode(datagram.payload)
        if name != me:
            print(f"{name}> {text}", flush=True)


async def main() -> None:
    args = parse_args()
    if not args.name or SEPARATOR in args.name:
        sys.exit("chat: --name must be non-empty and without NUL")
    lines = start_reading_stdin()
    async with aiomcast.open_endpoint(
        args.group, args.port, interface=args.interface, ttl=args.ttl
    ) as chat:
        print(
            f"chatting in {args.group}:{args.port} via {args.interface} as {args.name};"
            " Ctrl-D ends",
            file=sys.stderr,
            flush=True,
        )
        printer = asyncio.create_task(show_messages(chat, args.name))
        while (line := await lines.get()) is not None:
            if line:
                await chat.send(encode(args.name, line))  # to the group, on our port
        await chat.aclose()  # ends show_messages' loop
        await printer


if __name__ == "__main__":
    try:
        aiomcast.run(main())  # on uvloop when it is installed
    except KeyboardInterrupt:
        pass
    except aiomcast.AiomcastError as exc:
        sys.exit(f"chat: {exc}")
