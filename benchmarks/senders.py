"""The Python senders of the aiomcast benchmarks: one process per measurement.

    python benchmarks/senders.py KIND --group G --port P --interface IF --ifaddr A
        --count N [--size 64] [--batch 64] [--max-seconds S]

Each sender sends ``--count`` datagrams as fast as it can (unpaced), stops early after
``--max-seconds``, and prints one JSON line: datagrams sent, elapsed seconds, and the CPU
seconds (user + system, getrusage) its send loop used. The clock runs from the send loop's
start (its socket or endpoint is open by then: importing aiomcast, about 60 ms of CPU from
source, is not the send loop's) until its socket or endpoint is closed again (anything still
queued is flushed by then), the same span for every sender. Payloads are those of mcsend.c: a
64-bit big-endian sequence number and the CLOCK_MONOTONIC send time in ns, zero-padded to
``--size``, built ``--batch`` at a time with one clock read per batch (as mcsend.c stamps
each send); every sender builds them the same way, then sends them its own way. A sender
whose aiomcast API is missing prints ``{"skipped": "<why>"}`` and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import resource
import socket
import struct
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import uvloop

_HEADER = struct.Struct(">QQ")


class Skip(Exception):
    """The sender cannot run here (an aiomcast API it needs is missing)."""


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def payload_maker(size: int) -> Callable[[int, int], list[bytes]]:
    """Return ``make(first, end) -> payloads`` for sequence numbers ``first`` to ``end - 1``.

    As mcsend.c does, the batch's payloads share one send time, read once per batch; each is
    the header and zero padding, packed by one ``struct`` call.
    """
    pack = struct.Struct(f">QQ{size - _HEADER.size}x").pack
    now = time.monotonic_ns

    def make(first: int, end: int) -> list[bytes]:
        stamp = now()
        return [pack(sequence, stamp) for sequence in range(first, end)]

    return make


def plain_socket(interface_address: str) -> socket.socket:
    """A sending socket: outgoing interface by address, TTL 1, no local copy (as mcsend.c)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface_address))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    return sock


class Budget:
    """The send loop's bounds and payloads: iterate it for the batches of payloads to send.

    It yields ``--batch`` payloads at a time (payload_maker's) until ``--count`` datagrams
    were yielded or ``--max-seconds`` passed (checked once per batch), whichever comes
    first; ``sent`` is how many it yielded.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.count: int = args.count
        self.batch: int = args.batch
        self.make = payload_maker(args.size)
        self.sent = 0
        #: The send loop's clock starts here (see the module's docstring).
        self.cpu0 = cpu_seconds()
        self.t0 = time.monotonic()
        self.deadline: float = self.t0 + float(args.max_seconds)

    def result(self, kind: str) -> dict[str, Any]:
        """The JSON result, timed from the Budget's making until now (the sender closed)."""
        elapsed, cpu = time.monotonic() - self.t0, cpu_seconds() - self.cpu0
        return {
            "sender": kind,
            "sent": self.sent,
            "elapsed_s": elapsed,
            "rate": self.sent / elapsed if elapsed > 0 else 0.0,
            "cpu_s": cpu,
        }

    def __iter__(self) -> Iterator[list[bytes]]:
        while self.sent < self.count and time.monotonic() <= self.deadline:
            end = min(self.sent + self.batch, self.count)
            payloads = self.make(self.sent, end)
            self.sent = end
            yield payloads


def blocking_sender(args: argparse.Namespace) -> Budget:
    """``sock.sendto`` in a plain loop."""
    sock = plain_socket(args.ifaddr)
    destination = (args.group, args.port)
    sendto, budget = sock.sendto, Budget(args)
    try:
        for payloads in budget:
            for payload in payloads:
                sendto(payload, destination)
    finally:
        sock.close()
    return budget


async def loop_sender(args: argparse.Namespace) -> Budget:
    """The event loop's own ``transport.sendto`` (yields to the loop once per batch)."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, sock=plain_socket(args.ifaddr)
    )
    destination = (args.group, args.port)
    sendto, budget = transport.sendto, Budget(args)
    try:
        for payloads in budget:
            for payload in payloads:
                sendto(payload, destination)
            await asyncio.sleep(0)
    finally:
        transport.close()
    return budget


async def _open_aiomcast(args: argparse.Namespace) -> Any:
    # Imported here: the peers' processes do not import aiomcast (receivers.set_rcvbuf says
    # why). TTL 1 and no local copy, as the plain sockets and mcsend.c.
    import aiomcast

    return await aiomcast.open_sender(
        args.group, args.port, interface=args.interface, ttl=1, loopback=False
    )


async def aiomcast_send_sender(args: argparse.Namespace) -> Budget:
    """aiomcast ``await tx.send(payload)`` per datagram."""
    tx = await _open_aiomcast(args)
    send, budget = tx.send, Budget(args)
    try:
        for payloads in budget:
            for payload in payloads:
                await send(payload)
    finally:
        await tx.aclose()
    return budget


async def aiomcast_send_many_sender(args: argparse.Namespace, *, gso: bool = True) -> Budget:
    """aiomcast ``await tx.send_many(payloads)``, ``--batch`` payloads per call.

    With ``gso=False`` the same public call with ``tx.gso = False``: sendmmsg only.
    """
    tx = await _open_aiomcast(args)
    try:
        if not hasattr(tx, "send_many"):
            raise Skip("aiomcast's Sender has no send_many() yet")
        tx.gso = gso
        send_many, budget = tx.send_many, Budget(args)
        for payloads in budget:
            await send_many(payloads)
    finally:
        await tx.aclose()
    return budget


async def aiomcast_send_many_no_gso_sender(args: argparse.Namespace) -> Budget:
    """aiomcast ``await tx.send_many(payloads)`` with sendmmsg only (no UDP_SEGMENT)."""
    return await aiomcast_send_many_sender(args, gso=False)


def cli_sender(args: argparse.Namespace) -> dict[str, Any]:
    """aiomcast's command line, ``aiomcast send --rate 0 --size N``, run by ``aiomcast.cli.main``.

    With ``--rate R`` (this row only) it paces at R instead: the pacing measurement.

    Its own payloads (aiomcast's test payloads: the sequence number and marker) and its own
    send loop (send_many of --burst 64 with GSO); timed around the whole command, which
    includes opening and closing its endpoint (about a millisecond). It runs in this process
    so that interpreter start-up is not counted, as for every row.
    """
    from aiomcast import cli

    argv = ["send", args.group, str(args.port), "--interface", args.interface, "--no-loop"]
    argv += ["--size", str(args.size), "--rate", f"{args.rate:g}"]
    if not args.rate:
        argv += ["--burst", str(args.batch)]
    argv += ["--count", str(args.count), "--duration", f"{args.max_seconds:g}", "--stats"]
    out, err = io.StringIO(), io.StringIO()
    cpu0, t0 = cpu_seconds(), time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    elapsed, cpu = time.monotonic() - t0, cpu_seconds() - cpu0
    if status != 0:
        raise SystemExit(f"aiomcast send failed ({status}): {err.getvalue().strip()}")
    stats = json.loads(out.getvalue())
    return {
        "sender": args.kind,
        "sent": stats["sent"],
        "elapsed_s": elapsed,
        "rate": stats["sent"] / elapsed if elapsed > 0 else 0.0,
        "cpu_s": cpu,
        "cli_stats": stats,
    }


AsyncSender = Callable[[argparse.Namespace], Coroutine[Any, Any, Budget]]

#: name -> (event loop, async sender); all but asyncio-sendto run on uvloop.
ASYNC_SENDERS: dict[str, tuple[str, AsyncSender]] = {
    "asyncio-sendto": ("asyncio", loop_sender),
    "uvloop-sendto": ("uvloop", loop_sender),
    "aiomcast-send": ("uvloop", aiomcast_send_sender),
    "aiomcast-send-many": ("uvloop", aiomcast_send_many_sender),
    "aiomcast-send-many-no-gso": ("uvloop", aiomcast_send_many_no_gso_sender),
}
KINDS = ["blocking-sendto", *ASYNC_SENDERS, "aiomcast-cli-send"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--group", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", required=True, help="outgoing interface name")
    parser.add_argument("--ifaddr", required=True, help="its IPv4 address")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="aiomcast-cli-send only: pace at this rate"
    )
    args = parser.parse_args(argv)
    if args.size < _HEADER.size:
        parser.error(f"--size {args.size} is below the {_HEADER.size}-byte header")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.kind == "aiomcast-cli-send":
        print(json.dumps(cli_sender(args)), flush=True)
        return 0
    try:
        if args.kind == "blocking-sendto":
            budget = blocking_sender(args)
        else:
            loop_kind, sender = ASYNC_SENDERS[args.kind]
            factory = uvloop.new_event_loop if loop_kind == "uvloop" else asyncio.new_event_loop
            with asyncio.Runner(loop_factory=factory) as runner:
                budget = runner.run(sender(args))
    except Skip as why:
        print(json.dumps({"sender": args.kind, "skipped": str(why)}), flush=True)
        return 0
    print(json.dumps(budget.result(args.kind)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
