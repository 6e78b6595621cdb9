"""The Python receivers of the aiomcast benchmarks: one process per measurement.

    python benchmarks/receivers.py KIND --group G --port P --interface IF [--expect N]
        [--format seq|iperf2|none] [--latency] [--idle S] [--first-timeout S] [--rcvbuf BYTES]

Each receiver joins GROUP on IF, prints ``ready`` once the membership is in place, counts
datagrams until none arrived for ``--idle`` seconds (or none at all within
``--first-timeout``), and prints one JSON line. A receiver whose aiomcast API is missing
prints ``{"skipped": "<why>"}`` instead and exits 0.

What every receiver does per datagram is the same few lines (``Tally.sink``), so the
differences between rows are the receive paths themselves:

- ``seq``: the payload starts with a 64-bit big-endian sequence number (mcsend.c); a bitmap
  of ``--expect`` bytes counts unique numbers and duplicates.
- ``--latency``: the next 8 bytes are the sender's CLOCK_MONOTONIC time in ns; the receiver
  records ``time.monotonic_ns()`` minus that for every datagram (one clock: same machine).
- ``iperf2``: iperf2's signed 32-bit number (from 0); negative numbers end the stream.
- ``none``: count only (the memory run: no bitmap to inflate the RSS); with ``--work-us``
  the consumer also busy-works that long per datagram (a slow application).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import io
import json
import os
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

Payload = bytes | bytearray | memoryview
Sink = Callable[[Payload], None]

IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
SO_MEMINFO = 55
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
SK_MEMINFO_DROPS = 8
_SEQ = struct.Struct(">Q")
_SEQ_STAMP = struct.Struct(">QQ")
_IPERF2_ID = struct.Struct("!i")


class Skip(Exception):
    """The receiver cannot run here (an aiomcast API it needs is missing)."""


class Tally:
    """Counts what one receiver got; ``sink`` is called once per datagram payload."""

    def __init__(self, expect: int, fmt: str, latency: bool, work_us: float = 0.0) -> None:
        self.fmt = fmt
        self.work_ns = int(work_us * 1000)
        self.received = 0
        self.out_of_range = 0
        self.finals = 0
        self.seen = bytearray(expect + 1) if fmt != "none" and expect > 0 else None
        self.latencies: array.array[int] | None = (
            array.array("q") if latency and fmt == "seq" else None
        )
        self.sink: Sink = self._make_sink()

    def _make_sink(self) -> Sink:
        # Hot path: one call per datagram; locals instead of attribute look-ups where it counts.
        seen = self.seen
        if seen is None and self.work_ns:
            # A consumer with work to do per datagram (the memory run's slow application).
            work_ns, clock = self.work_ns, time.perf_counter_ns

            def count_and_work(data: Payload) -> None:
                self.received += 1
                end = clock() + work_ns
                while clock() < end:
                    pass

            return count_and_work
        if seen is None:

            def count(data: Payload) -> None:
                self.received += 1

            return count
        if self.fmt == "iperf2":
            unpack_id = _IPERF2_ID.unpack_from

            def iperf2(data: Payload) -> None:
                try:
                    (number,) = unpack_id(data)
                except struct.error:
                    self.out_of_range += 1
                    return
                if number < 0:
                    self.finals += 1
                    return
                self.received += 1
                try:
                    seen[number] = 1
                except IndexError:
                    self.out_of_range += 1

            return iperf2
        latencies = self.latencies
        if latencies is None:
            unpack_seq = _SEQ.unpack_from

            def sequence(data: Payload) -> None:
                self.received += 1
                try:
                    seen[unpack_seq(data)[0]] = 1
                except (IndexError, struct.error):
                    self.out_of_range += 1

            return sequence
        unpack_both = _SEQ_STAMP.unpack_from
        now = time.monotonic_ns
        append = latencies.append

        def timed(data: Payload) -> None:
            self.received += 1
            try:
                number, stamp = unpack_both(data)
                seen[number] = 1
            except (IndexError, struct.error):
                self.out_of_range += 1
                return
            append(now() - stamp)

        return timed

    def result(self) -> dict[str, Any]:
        """The counts as a JSON-ready dict."""
        out: dict[str, Any] = {"received": self.received, "out_of_range": self.out_of_range}
        if self.seen is not None:
            unique = len(self.seen) - self.seen.count(0)
            out["unique"] = unique
            out["duplicates"] = self.received - unique - self.out_of_range
        if self.fmt == "iperf2":
            out["finals"] = self.finals
        if self.latencies:
            out["latency_us"] = percentiles(self.latencies)
        return out


def percentiles(samples_ns: array.array[int]) -> dict[str, float]:
    """p50, p90, p99, max and mean of latency samples, in microseconds (mcrecv.c's rule)."""
    ordered = sorted(samples_ns)
    n = len(ordered)
    return {
        "samples": n,
        "p50": ordered[n // 2] / 1e3,
        "p90": ordered[n * 90 // 100] / 1e3,
        "p99": ordered[n * 99 // 100] / 1e3,
        "max": ordered[-1] / 1e3,
        "mean": sum(ordered) / n / 1e3,
    }


def kernel_drops(sock: socket.socket) -> int:
    """Datagrams the kernel dropped for this socket (SO_MEMINFO); -1 where unknown."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 9 * 4)
    except OSError:
        return -1
    return int(struct.unpack("9I", raw)[SK_MEMINFO_DROPS])


def set_rcvbuf(sock: socket.socket, size: int) -> None:
    """Give ``sock`` a receive buffer of ``size`` bytes (0: leave the kernel's default).

    Every receiver of the harness gets its buffer here (mcrecv.c the same way): SO_RCVBUF,
    then SO_RCVBUFFORCE where net.core.rmem_max capped it and the process may (root), so all
    rows get the same buffer whatever the host's limit. Linux grants twice the request.

    This is aiomcast's set_receive_buffer again, on purpose: the peers' processes must not
    import aiomcast. Importing it (compiled from source, as with PYTHONDONTWRITEBYTECODE)
    frees a block of about 400 KiB, which raises glibc's dynamic mmap threshold above
    256 KiB; the stdlib transport's 256 KiB receive buffer then comes from the heap instead
    of an mmap per datagram, and the stdlib rows ran three to four times faster than in a
    process of their own (tests/sockets/test_libc.py pins the glibc behaviour).
    """
    if not size:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < 2 * size:
        # Not root: rmem_max caps it (run.py's note says so).
        with contextlib.suppress(PermissionError):
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)


def multicast_socket(group: str, port: int, interface: str, rcvbuf: int) -> socket.socket:
    """A plain socket that receives ``group``:``port`` on ``interface`` only."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
    set_rcvbuf(sock, rcvbuf)
    sock.bind(("0.0.0.0", port))
    mreqn = struct.pack(
        "=4s4si",
        socket.inet_aton(group),
        socket.inet_aton("0.0.0.0"),
        socket.if_nametoindex(interface),
    )
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    return sock


def ready() -> None:
    """Tell the harness the membership is in place."""
    print("ready", flush=True)


async def until_idle(
    tally: Tally,
    idle: float,
    first_timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Return once no datagram arrived for ``idle`` s (or none at all for ``first_timeout``).

    ``clock`` and ``sleep`` are asyncio's by default; trio_rows.py passes anyio's, so the
    rows on trio stop by the same rule.
    """
    start = last_change = clock()
    seen = 0
    while True:
        await sleep(0.05)
        now = clock()
        count = tally.received + tally.finals
        if count != seen:
            seen, last_change = count, now
        elif (count and now - last_change > idle) or (not count and now - start > first_timeout):
            return


async def consume_until_idle(
    consumer: Coroutine[Any, Any, None], tally: Tally, args: argparse.Namespace
) -> None:
    """Run ``consumer`` until the stream went idle (or the consumer failed), then cancel it."""
    task = asyncio.ensure_future(consumer)
    watchdog = asyncio.ensure_future(until_idle(tally, args.idle, args.first_timeout))
    await asyncio.wait([task, watchdog], return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    watchdog.cancel()
    for outcome in await asyncio.gather(task, watchdog, return_exceptions=True):
        if isinstance(outcome, Exception):
            raise outcome


# -- receivers ----------------------------------------------------------------------------------


class _CountingProtocol(asyncio.DatagramProtocol):
    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._sink(data)


async def protocol_receiver(tally: Tally, args: argparse.Namespace) -> dict[str, Any]:
    """A DatagramProtocol whose datagram_received calls the sink: the loop's own receive path."""
    sock = multicast_socket(args.group, args.port, args.interface, args.rcvbuf)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _CountingProtocol(tally.sink), sock=sock
    )
    ready()
    try:
        await until_idle(tally, args.idle, args.first_timeout)
        return {"kernel_dropped": kernel_drops(sock), "loop": type(loop).__module__}
    finally:
        transport.close()


async def asyncio_dgram_receiver(tally: Tally, args: argparse.Namespace) -> dict[str, Any]:
    """asyncio-dgram's ``await stream.recv()`` on a socket joined here."""
    import asyncio_dgram

    sock = multicast_socket(args.group, args.port, args.interface, args.rcvbuf)
    stream = await asyncio_dgram.from_socket(sock)
    sink = tally.sink
    ready()

    async def consume() -> None:
        recv = stream.recv
        while True:
            data, _ = await recv()
            sink(data)

    try:
        await consume_until_idle(consume(), tally, args)
        return {"kernel_dropped": kernel_drops(sock)}
    finally:
        stream.close()


def _open_aiomcast(args: argparse.Namespace, **options: Any) -> Any:
    import aiomcast

    return aiomcast.open_receiver(args.group, args.port, interface=args.interface, **options)


def _aiomcast_extra(rx: Any, sock: socket.socket) -> dict[str, Any]:
    stats = rx.stats
    return {
        "kernel_dropped": kernel_drops(sock),
        "queue_dropped": stats.dropped,
        "aiomcast_received": stats.received,
        "queue_size": rx.queue_size,
        "rcvbuf_granted": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
    }


async def aiomcast_receiver(tally: Tally, args: argparse.Namespace) -> dict[str, Any]:
    """aiomcast per datagram: ``async for datagram in rx``."""
    async with _open_aiomcast(args) as rx:
        sock = rx.socket
        set_rcvbuf(sock, args.rcvbuf)
        sink = tally.sink
        ready()

        async def consume() -> None:
            async for datagram in rx:
                sink(datagram.payload)

        await consume_until_idle(consume(), tally, args)
        return _aiomcast_extra(rx, sock)


async def aiomcast_python_receiver(tally: Tally, args: argparse.Namespace) -> dict[str, Any]:
    """aiomcast per datagram on its pure-Python readers (AIOMCAST_PURE_PYTHON=1, set by main).

    What an install without a C compiler gets: the same ``async for`` without the C
    extension (recvmmsg through ctypes, a coroutine per datagram).
    """
    from aiomcast import _native

    if _native.BatchReader is not None:
        raise Skip("AIOMCAST_PURE_PYTHON was not honoured: the C reader is in use")
    return await aiomcast_receiver(tally, args)


async def _aiomcast_batches(
    tally: Tally, args: argparse.Namespace, **options: Any
) -> dict[str, Any]:
    try:
        opener = _open_aiomcast(args, **options)
    except TypeError as exc:
        raise Skip(f"aiomcast.open_receiver does not take {sorted(options)}: {exc}") from None
    async with opener as rx:
        if not hasattr(rx, "batches"):
            raise Skip("aiomcast's Receiver has no batches() yet")
        sock = rx.socket
        set_rcvbuf(sock, args.rcvbuf)
        sink = tally.sink
        counts = [0, 0]  # batches, datagrams in them
        ready()

        async def consume() -> None:
            async for batch in rx.batches():
                counts[0] += 1
                counts[1] += len(batch)
                for datagram in batch:
                    sink(datagram.payload)

        await consume_until_idle(consume(), tally, args)
        extra = _aiomcast_extra(rx, sock)
        extra["batches"] = counts[0]
        extra["mean_batch"] = counts[1] / counts[0] if counts[0] else 0.0
        return extra


async def aiomcast_batches_receiver(tally: Tally, args: argparse.Namespace) -> dict[str, Any]:
    """aiomcast in batches: ``async for batch in rx.batches()``."""
    return await _aiomcast_batches(tally, args)


async def aiomcast_gro_receiver(tally: Tally, args: argparse.Namespace) -> dict[str, Any]:
    """aiomcast in batches with ``gro=True`` (the kernel coalesces, aiomcast splits)."""
    return await _aiomcast_batches(tally, args, gro=True)


def quiet_too_long(tally: Tally, args: argparse.Namespace, start: float, last: float) -> bool:
    """The blocking loops' end: nothing for ``--idle`` s since ``last`` (or ever, for
    ``--first-timeout`` s since ``start``), on time.monotonic()."""
    now = time.monotonic()
    got = tally.received + tally.finals
    return bool(got and now - last > args.idle) or (not got and now - start > args.first_timeout)


def blocking_receiver(tally: Tally, args: argparse.Namespace) -> dict[str, Any]:
    """A blocking ``recv_into`` loop, no event loop at all.

    The socket stays in blocking mode (a Python socket timeout would poll before every
    receive); SO_RCVTIMEO wakes it every 50 ms to check for the idle end.
    """
    sock = multicast_socket(args.group, args.port, args.interface, args.rcvbuf)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 50_000))
    buffer = bytearray(2048)
    recv_into = sock.recv_into
    sink = tally.sink
    ready()
    start = last = time.monotonic()
    try:
        while True:
            try:
                size = recv_into(buffer)
            except BlockingIOError:
                if quiet_too_long(tally, args, start, last):
                    break
                continue
            if size:
                # No copy: the sink reads the header in place (the point of recv_into).
                sink(buffer)
            last = time.monotonic()
        return {"kernel_dropped": kernel_drops(sock)}
    finally:
        sock.close()


def floor_receiver(tally: Tally, args: argparse.Namespace) -> dict[str, Any]:
    """The floor of a Python receiver: aiomcast's C batch reader in a blocking poll loop.

    No event loop, no queue, no iterator: one ``poll`` per wake-up, then ``recvmmsg`` batches
    until the socket is empty, and the sink per datagram as in every Python row. What any
    per-datagram Python consumer on this machine costs at least.
    """
    import select

    from aiomcast import _native
    from aiomcast._types import Datagram

    if _native.BatchReader is None:
        raise Skip("aiomcast's C extension is not built here")
    sock = multicast_socket(args.group, args.port, args.interface, args.rcvbuf)
    sock.setblocking(False)
    reader = _native.BatchReader(sock.fileno(), sock.family, Datagram, count=64, slot=65536)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    sink = tally.sink
    read = reader.read
    ready()
    start = last = time.monotonic()
    try:
        while True:
            if not poller.poll(50):
                if quiet_too_long(tally, args, start, last):
                    break
                continue
            while (batch := read()) is not None:
                for datagram in batch[0]:
                    sink(datagram[0])
                if batch[3] < 64:
                    break
            last = time.monotonic()
        return {"kernel_dropped": kernel_drops(sock)}
    finally:
        sock.close()


class _JoinedWatch(io.TextIOBase):
    """The CLI's stderr: says ``ready`` on the real stdout once it printed "joined"."""

    def __init__(self) -> None:
        self.said = False
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        if not self.said and "joined " in self.text:
            self.said = True
            os.write(1, b"ready\n")
        return len(text)


#: --format of this script -> --format of ``aiomcast listen``.
_CLI_FORMATS = {"seq": "aiomcast", "iperf2": "iperf2", "none": "auto", "auto": "auto"}


def cli_receiver(args: argparse.Namespace) -> dict[str, Any]:
    """aiomcast's command line, ``aiomcast listen --stats``, run by ``aiomcast.cli.main``.

    The CLI does its own counting (aiomcast/_measure.py), so this row does not use Tally:
    its cost per datagram is the command's whole cost. It runs in this process so that its
    CPU is counted from the join, as every row's is; ``--format auto`` (this script's
    ``auto``) is the CLI's default, which tells aiomcast's and iperf2's headers from the rest.
    """
    from aiomcast import cli

    argv = ["listen", args.group, str(args.port), "--interface", args.interface, "--stats"]
    argv += ["--format", _CLI_FORMATS[args.format], "--idle", f"{args.idle:g}"]
    argv += ["--duration", f"{max(args.first_timeout, 1.0) + 60:g}"]
    if args.rcvbuf:
        argv += ["--receive-buffer", str(args.rcvbuf)]
    out, watch = io.StringIO(), _JoinedWatch()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(watch):
        status = cli.main(argv)
    if status != 0 or not watch.said:
        raise SystemExit(f"aiomcast listen failed ({status}): {watch.text.strip()}")
    stats = json.loads(out.getvalue())
    return {
        "received": stats["received"],
        # Numbered datagrams, each counted once: what every row's "unique" is.
        "unique": stats["received"] - stats["duplicates"] - stats["unnumbered"],
        "duplicates": stats["duplicates"],
        "unnumbered": stats["unnumbered"],
        "gaps": stats["gaps"],
        "kernel_dropped": stats["kernel_dropped"],
        "queue_dropped": stats["dropped"],
        "cli_stats": stats,
    }


AsyncReceiver = Callable[[Tally, argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]


def _loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if kind == "asyncio":
        return asyncio.new_event_loop
    import uvloop

    return uvloop.new_event_loop


#: name -> (event loop, receiver). The aiomcast rows run on uvloop, as aiomcast.run does.
ASYNC_RECEIVERS: dict[str, tuple[str, AsyncReceiver]] = {
    "asyncio-protocol": ("asyncio", protocol_receiver),
    "uvloop-protocol": ("uvloop", protocol_receiver),
    "asyncio-dgram": ("asyncio", asyncio_dgram_receiver),
    "aiomcast": ("uvloop", aiomcast_receiver),
    "aiomcast-python": ("uvloop", aiomcast_python_receiver),
    "aiomcast-batches": ("uvloop", aiomcast_batches_receiver),
    "aiomcast-gro": ("uvloop", aiomcast_gro_receiver),
}
KINDS = [*ASYNC_RECEIVERS, "blocking", "floor", "aiomcast-cli"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--group", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", required=True, help="interface name to join on")
    parser.add_argument("--expect", type=int, default=0, help="datagrams the sender will send")
    parser.add_argument("--format", choices=["seq", "iperf2", "none", "auto"], default="seq")
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--idle", type=float, default=0.5)
    parser.add_argument("--first-timeout", type=float, default=15.0)
    parser.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF to request (0: default)")
    parser.add_argument(
        "--work-us", type=float, default=0.0, help="busy work per datagram, µs (--format none)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.kind == "aiomcast-python":
        os.environ["AIOMCAST_PURE_PYTHON"] = "1"  # before aiomcast is imported
    if args.kind == "aiomcast-cli":
        print(json.dumps({"receiver": args.kind, **cli_receiver(args)}), flush=True)
        return 0
    tally = Tally(args.expect, args.format, args.latency, args.work_us)
    try:
        if args.kind == "blocking":
            extra = blocking_receiver(tally, args)
        elif args.kind == "floor":
            extra = floor_receiver(tally, args)
        else:
            loop_kind, receiver = ASYNC_RECEIVERS[args.kind]
            with asyncio.Runner(loop_factory=_loop_factory(loop_kind)) as runner:
                extra = runner.run(receiver(tally, args))
    except Skip as why:
        print(json.dumps({"receiver": args.kind, "skipped": str(why)}), flush=True)
        return 0
    print(json.dumps({"receiver": args.kind, **tally.result(), **extra}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
