"""The trio rows of the aiomcast benchmarks: receivers and senders on anyio's trio backend.

    python benchmarks/trio_rows.py KIND [the options of receivers.py or senders.py]

KIND is a receiver (``trio-aiomcast``, ``trio-aiomcast-batches``, ``trio-socket``) or a sender
(``trio-aiomcast-send``, ``trio-aiomcast-send-many``, ``trio-socket-sendto``). The options,
the per-datagram work (receivers.py's ``Tally``), the payloads and their budget
(senders.py's ``Budget``), the ``ready`` line and the JSON line printed at the end are
those of receivers.py and senders.py, so run.py can start these rows like the others: only
the event loop differs. The aiomcast rows open their endpoints with ``aiomcast.anyio``
(the fast transport with anyio tasks as reader and writer); ``trio-socket`` and
``trio-socket-sendto`` are trio's own sockets on the same plain socket as the other
baselines, for comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio
import trio
from receivers import Tally, kernel_drops, multicast_socket, ready, set_rcvbuf, until_idle
from receivers import parse_args as receiver_args
from senders import Budget, plain_socket
from senders import parse_args as sender_args

if TYPE_CHECKING:
    import aiomcast


async def consume_until_idle(
    consume: Callable[[], Awaitable[None]], tally: Tally, args: argparse.Namespace
) -> None:
    """Run ``consume`` until the stream went idle (or the consumer ended), then cancel it."""
    async with anyio.create_task_group() as tasks:

        async def consumer() -> None:
            await consume()
            tasks.cancel_scope.cancel()

        tasks.start_soon(consumer)
        await until_idle(
            tally, args.idle, args.first_timeout, clock=anyio.current_time, sleep=anyio.sleep
        )
        tasks.cancel_scope.cancel()


# -- receivers ----------------------------------------------------------------------------------


def _aiomcast_extra(rx: aiomcast.Receiver) -> dict[str, Any]:
    stats = rx.stats
    return {
        "kernel_dropped": kernel_drops(rx.socket),
        "queue_dropped": stats.dropped,
        "aiomcast_received": stats.received,
        "queue_size": rx.queue_size,
        "loop": "trio",
    }


async def aiomcast_receiver(
    tally: Tally, args: argparse.Namespace, *, batches: bool = False
) -> dict[str, Any]:
    """aiomcast on trio: ``async for datagram in rx`` (or ``rx.batches()``)."""
    import aiomcast.anyio  # here: the peers' processes do not import aiomcast (set_rcvbuf)

    async with aiomcast.anyio.open_receiver(args.group, args.port, interface=args.interface) as rx:
        set_rcvbuf(rx.socket, args.rcvbuf)
        sink = tally.sink
        counts = [0, 0]  # batches, datagrams in them
        ready()

        async def each() -> None:
            async for datagram in rx:
                sink(datagram.payload)

        async def in_batches() -> None:
            async for batch in rx.batches():
                counts[0] += 1
                counts[1] += len(batch)
                for datagram in batch:
                    sink(datagram.payload)

        await consume_until_idle(in_batches if batches else each, tally, args)
        extra = _aiomcast_extra(rx)
        if batches:
            extra["batches"] = counts[0]
            extra["mean_batch"] = counts[1] / counts[0] if counts[0] else 0.0
        return extra


async def aiomcast_batches_receiver(tally: Tally, args: argparse.Namespace) -> dict[str, Any]:
    """aiomcast in batches on trio: ``async for batch in rx.batches()``."""
    return await aiomcast_receiver(tally, args, batches=True)


async def trio_socket_receiver(tally: Tally, args: argparse.Namespace) -> dict[str, Any]:
    """trio's own socket: ``await sock.recv_into(buffer)`` per datagram (the trio baseline)."""
    plain = multicast_socket(args.group, args.port, args.interface, args.rcvbuf)
    sock = trio.socket.from_stdlib_socket(plain)
    sink = tally.sink
    ready()

    async def consume() -> None:
        buffer = bytearray(65536)
        view = memoryview(buffer)
        recv_into = sock.recv_into
        while True:
            n = await recv_into(buffer)
            sink(bytes(view[:n]))

    try:
        await consume_until_idle(consume, tally, args)
        return {"kernel_dropped": kernel_drops(plain), "loop": "trio"}
    finally:
        sock.close()


# -- senders ------------------------------------------------------------------------------------


async def aiomcast_send_sender(args: argparse.Namespace) -> Budget:
    """aiomcast ``await tx.send(payload)`` per datagram, on trio."""
    import aiomcast.anyio

    async with aiomcast.anyio.open_sender(
        args.group, args.port, interface=args.interface, ttl=1, loopback=False
    ) as tx:
        send, budget = tx.send, Budget(args)
        for payloads in budget:
            for payload in payloads:
                await send(payload)
        return budget


async def aiomcast_send_many_sender(args: argparse.Namespace) -> Budget:
    """aiomcast ``await tx.send_many(payloads)``, ``--batch`` payloads per call, on trio."""
    import aiomcast.anyio

    async with aiomcast.anyio.open_sender(
        args.group, args.port, interface=args.interface, ttl=1, loopback=False
    ) as tx:
        send_many, budget = tx.send_many, Budget(args)
        for payloads in budget:
            await send_many(payloads)
        return budget


async def trio_socket_sender(args: argparse.Namespace) -> Budget:
    """trio's own socket: ``await sock.sendto(payload, destination)`` per datagram."""
    sock = trio.socket.from_stdlib_socket(plain_socket(args.ifaddr))
    destination = (args.group, args.port)
    sendto, budget = sock.sendto, Budget(args)
    try:
        for payloads in budget:
            for payload in payloads:
                await sendto(payload, destination)
    finally:
        sock.close()
    return budget


TrioReceiver = Callable[[Tally, argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]
TrioSender = Callable[[argparse.Namespace], Coroutine[Any, Any, Budget]]

TRIO_RECEIVERS: dict[str, TrioReceiver] = {
    "trio-aiomcast": aiomcast_receiver,
    "trio-aiomcast-batches": aiomcast_batches_receiver,
    "trio-socket": trio_socket_receiver,
}
TRIO_SENDERS: dict[str, TrioSender] = {
    "trio-aiomcast-send": aiomcast_send_sender,
    "trio-aiomcast-send-many": aiomcast_send_many_sender,
    "trio-socket-sendto": trio_socket_sender,
}


def run_receiver(kind: str, rest: list[str]) -> dict[str, Any]:
    # receivers.py's own options, parsed by its parser (the kind there is a stand-in).
    args = receiver_args(["blocking", *rest])
    tally = Tally(args.expect, args.format, args.latency)
    extra = anyio.run(TRIO_RECEIVERS[kind], tally, args, backend="trio")
    return {"receiver": kind, **tally.result(), **extra}


def run_sender(kind: str, rest: list[str]) -> dict[str, Any]:
    args = sender_args(["blocking-sendto", *rest])
    budget = anyio.run(TRIO_SENDERS[kind], args, backend="trio")
    return budget.result(kind)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    kinds = [*TRIO_RECEIVERS, *TRIO_SENDERS]
    if not argv or argv[0] not in kinds:
        print(f"usage: trio_rows.py {{{','.join(kinds)}}} [options]", file=sys.stderr)
        return 2
    kind, rest = argv[0], argv[1:]
    result = run_receiver(kind, rest) if kind in TRIO_RECEIVERS else run_sender(kind, rest)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
