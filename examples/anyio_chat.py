"""The multicast chat of chat.py, written once for anyio: it runs on asyncio, uvloop or trio.

Usage::

    python examples/anyio_chat.py [GROUP] [PORT] [--backend asyncio|uvloop|trio]
                                  [--interface IF] [--name NAME] [--ttl TTL]

GROUP defaults to 239.255.77.78 and PORT to 5078, and the datagrams are chat.py's (its
``encode`` and printer are imported), so chats on different backends and chat.py itself
talk to each other. The interface defaults to ``lo``: nothing
leaves this machine unless you give a real interface.

    python examples/anyio_chat.py --name ada --backend trio
    python examples/anyio_chat.py --name bob --backend uvloop

Lines from the others are printed as ``name> text``; end with Ctrl-D (end of input).

The program does not depend on the backend: ``aiomcast.anyio.open_endpoint`` takes the
arguments of ``aiomcast.open_endpoint`` and returns the same Endpoint on every backend. The
printer runs in a task group; closing the endpoint ends its ``async for``, and the task group
ends with it (structured concurrency: nothing outlives main()).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import threading
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream
from chat import SEPARATOR, encode, show_messages  # the same datagrams as chat.py

import aiomcast
import aiomcast.anyio

#: --backend: anyio's backend name and its options.
BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "asyncio": ("asyncio", {"use_uvloop": False}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Chat with everyone in a multicast group.")
    parser.add_argument("group", nargs="?", default="239.255.77.78", help="group to chat in")
    parser.add_argument("port", nargs="?", type=int, default=5078, help="UDP port")
    parser.add_argument(
        "--backend", choices=sorted(BACKENDS), default="asyncio", help="anyio backend"
    )
    parser.add_argument(
        "--interface",
        "-i",
        default="lo",
        help="interface: name, index or address (default lo: stays on this host)",
    )
    parser.add_argument("--name", "-n", default=getpass.getuser(), help="your name")
    parser.add_argument("--ttl", default="1", help="TTL 0-255 or a scope name (default 1)")
    return parser.parse_args()


def start_reading_stdin() -> MemoryObjectReceiveStream[str]:
    """Stream stdin's lines; the stream ends at the end of input.

    A daemon thread does the blocking reads (as in chat.py: it does not keep the program
    alive after Ctrl-C) and hands each line to the event loop, whichever the backend.
    """
    send, receive = anyio.create_memory_object_stream[str](16)
    token = anyio.lowlevel.current_token()

    def read() -> None:
        try:
            for line in sys.stdin:
                anyio.from_thread.run(send.send, line.rstrip("\r\n"), token=token)
            anyio.from_thread.run_sync(send.close, token=token)
        except (RuntimeError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the chat ended first

    threading.Thread(target=read, name="stdin", daemon=True).start()
    return receive


async def main(args: argparse.Namespace) -> None:
    lines = start_reading_stdin()
    async with (
        aiomcast.anyio.open_endpoint(
            args.group, args.port, interface=args.interface, ttl=args.ttl
        ) as chat,
        anyio.create_task_group() as tasks,
    ):
        print(
            f"chatting in {args.group}:{args.port} via {args.interface} as {args.name}"
            f" on {args.backend}; Ctrl-D ends",
            file=sys.stderr,
            flush=True,
        )
        tasks.start_soon(show_messages, chat, args.name)
        async with lines:
            async for line in lines:
                if line:
                    await chat.send(encode(args.name, line))  # to the group, on our port
        await chat.aclose()  # ends show_messages' loop, and so the task group


def first_error(group: BaseExceptionGroup[aiomcast.AiomcastError]) -> aiomcast.AiomcastError:
    """The first aiomcast error in a (possibly nested) exception group from a task group."""
    first = group.exceptions[0]
    return first_error(first) if isinstance(first, BaseExceptionGroup) else first


def run() -> None:
    args = parse_args()
    if not args.name or SEPARATOR in args.name:
        sys.exit("chat: --name must be non-empty and without NUL")
    backend, options = BACKENDS[args.backend]
    failure: aiomcast.AiomcastError | None = None
    try:
        anyio.run(main, args, backend=backend, backend_options=options)
    except* KeyboardInterrupt:
        pass
    except* aiomcast.AiomcastError as errors:
        failure = first_error(errors)
    if failure is not None:
        sys.exit(f"chat: {failure}")


if __name__ == "__main__":
    run()
