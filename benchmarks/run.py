"""Benchmark harness of aiomcast: receivers and senders side by side, in namespaces of its own.

    python benchmarks/run.py [--quick] [--out DIR]

As root it builds two network namespaces joined by a veth pair (``aiomcast.lab``: hosts
"tx" and "rx", interface n1, 10.201.1.1 and 10.201.1.2) and moves itself into a private
network namespace first, so no benchmark datagram can reach this machine's own interfaces.
Without root (or with ``--interface lo``) it runs over the loopback interface instead, and
says that sender and receiver then share one kernel path. The sender is pinned to CPU 0 and
the receiver to CPU 1.

It measures, for every receiver (a process of its own, started in the receiving namespace):
delivered % and receiver CPU seconds per million datagrams at each offered rate of 64-byte
datagrams (the paced C sender mcsend.c, and iperf2 as a second load), the highest offered
rate with < 0.1 % loss, and one-way latency p50/p99 at 1k/s and 100k/s; the RSS of aiomcast's
per-datagram receiver under three times its loss-free rate; and for every sender the
datagrams/s it reaches and its CPU per datagram. Results go to --out as JSON (all raw
numbers), a markdown table and a PNG plot; a progress bar runs on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import inspect
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Final, Self

import report

from aiomcast import lab

HERE: Final = Path(__file__).resolve().parent
GROUP: Final = "239.77.0.1"
FIRST_PORT: Final = 42000
#: Loss below this fraction counts as loss-free.
LOSS_FREE: Final = 0.001

PYTHON_RECEIVERS: Final = [
    "asyncio-protocol",
    "uvloop-protocol",
    "blocking",
    "asyncio-dgram",
    "aiomcast",
    "aiomcast-batches",
    "aiomcast-gro",
]
RECEIVERS: Final = [*PYTHON_RECEIVERS[:4], "iperf2", "c-recvmmsg", *PYTHON_RECEIVERS[4:]]
PYTHON_SENDERS: Final = ["blocking-sendto", "uvloop-sendto", "aiomcast-send", "aiomcast-send-many"]
SENDERS: Final = ["c-sendmmsg", "iperf2", *PYTHON_SENDERS]


@dataclasses.dataclass(frozen=True)
class Profile:
    """How much to measure: the full run or --quick."""

    rates: tuple[int, ...]
    seconds: float
    iperf2_rates: tuple[int, ...]
    latency_points: tuple[tuple[int, float], ...]  # (rate, seconds)
    memory_seconds: float
    sender_count: int
    calibration_count: int


FULL: Final = Profile(
    rates=(50_000, 100_000, 200_000, 400_000, 600_000, 800_000, 1_000_000),
    seconds=2.0,
    iperf2_rates=(50_000, 100_000, 200_000),
    latency_points=((1_000, 3.0), (100_000, 2.0)),
    memory_seconds=10.0,
    sender_count=500_000,
    calibration_count=600_000,
)
QUICK: Final = Profile(
    rates=(50_000, 100_000, 200_000, 400_000),
    seconds=1.0,
    iperf2_rates=(100_000,),
    latency_points=((1_000, 2.0), (100_000, 1.0)),
    memory_seconds=10.0,
    sender_count=200_000,
    calibration_count=300_000,
)


class BenchError(RuntimeError):
    """A measurement could not be made (a child failed or did not answer in time)."""


# -- where the traffic flows ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Side:
    """One end of the benchmark: how to start a process there, and its interface."""

    prefix: tuple[str, ...]  # runs a command in the namespace ("ip netns exec NS") or nothing
    cpu: int
    interface: str
    address: str

    def command(self, *argv: str) -> list[str]:
        """The argv that runs ``argv`` on this side, pinned to this side's CPU."""
        pin = ("taskset", "-c", str(self.cpu)) if shutil.which("taskset") else ()
        return [*self.prefix, *pin, *argv]


@dataclasses.dataclass(frozen=True)
class Setup:
    """The sender's side, the receiver's side and what the run is like."""

    sender: Side
    receiver: Side
    mode: str  # "lab" or "loopback"
    notes: tuple[str, ...]


def cpus_for_sides() -> tuple[int, int, str | None]:
    """CPUs for the sender and the receiver: 0 and 1 where this process may use both."""
    allowed = sorted(os.sched_getaffinity(0))
    if 0 in allowed and 1 in allowed:
        return 0, 1, None
    if len(allowed) >= 2:
        return allowed[0], allowed[1], f"CPUs 0 and 1 are not available: using {allowed[:2]}"
    return allowed[0], allowed[0], f"one CPU only ({allowed[0]}): sender and receiver share it"


@contextlib.contextmanager
def traffic_setup(interface: str | None, rps: bool) -> Iterator[Setup]:
    """Build where the traffic flows: the lab (root) or the loopback interface."""
    tx_cpu, rx_cpu, cpu_note = cpus_for_sides()
    notes = [cpu_note] if cpu_note else []
    root = os.geteuid() == 0
    if interface not in (None, "lo"):
        raise SystemExit(
            f"--interface {interface!r}: only 'lo' is allowed; benchmark traffic never uses a "
            "real interface (by default it flows between namespaces the harness builds)"
        )
    if interface == "lo" or not root:
        why = "--interface lo" if interface == "lo" else "not root: no network namespaces"
        if root:
            lab.enter_private_network()  # a private lo: still nothing reaches a real interface
            why += " (in a private network namespace)"
        notes.append(
            f"loopback interface ({why}): sender and receiver share the kernel path of lo, "
            "so the numbers are not those of two hosts"
        )
        local = Side((), tx_cpu, "lo", "127.0.0.1")
        yield Setup(local, dataclasses.replace(local, cpu=rx_cpu), "loopback", tuple(notes))
        return
    ok, why = lab.lab_available()
    if not ok:
        raise SystemExit(f"cannot build the namespaces: {why}")
    lab.enter_private_network()
    try:
        with lab.Lab(prefix="amcb") as net:
            net.build("hosts tx rx\nnet 1 tx rx\n")
            tx, rx = net["tx"], net["rx"]
            if rps:
                rx.run("sh", "-c", f"echo {1 << rx_cpu:x} > /sys/class/net/n1/queues/rx-0/rps_cpus")
                notes.append(f"RPS on the receiving veth: its kernel receive path runs on CPU {rx_cpu}")
            else:
                notes.append(
                    "veth: the kernel's receive path (IP, UDP, socket buffer) runs on the "
                    f"sender's CPU {tx_cpu}; receiver CPU is the receiver's own work (--rps moves it)"
                )
            try:
                yield Setup(
                    Side(tuple(tx.command()), tx_cpu, "n1", tx.address(1)),
                    Side(tuple(rx.command()), rx_cpu, "n1", rx.address(1)),
                    "lab",
                    tuple(notes),
                )
            finally:
                kill_children()  # nothing may keep a namespace alive
    finally:
        lab.sweep()  # the safety net: namespaces of this process that are still there


# -- child processes -----------------------------------------------------------------------------

_children: list[Child] = []


def kill_children() -> None:
    """Kill every child this harness started that still runs (by its pid)."""
    for child in _children:
        child.kill()


class Child:
    """A process the harness started: line reading with a timeout, CPU and rusage."""

    def __init__(self, argv: Sequence[str], label: str) -> None:
        self.label = label
        self.argv = list(argv)
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr
        )
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        self._buffer = b""
        self._eof = False
        self.returncode: int | None = None
        self.cpu_total: float | None = None
        _children.append(self)

    @property
    def pid(self) -> int:
        """The child's process id (``ip netns exec`` and ``taskset`` exec, keeping it)."""
        return self.proc.pid

    def readline(self, timeout: float) -> str | None:
        """The next line of stdout, or None at end of file or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer and not self._eof:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                return None
            chunk = os.read(self._fd, 65536)
            self._eof = not chunk
            self._buffer += chunk
        if b"\n" not in self._buffer:
            return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")

    def wait_for(self, pattern: str, timeout: float) -> str:
        """Read lines until one contains ``pattern``; BenchError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self.readline(left)
            if line is None:
                break
            if pattern in line:
                return line
        self.kill()
        raise BenchError(f"{self.label}: no {pattern!r} within {timeout:.0f} s{self.stderr_tail()}")

    def cpu_now(self) -> float:
        """User + system CPU seconds so far, from /proc/PID/stat (clock ticks)."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int | None:
        """Resident set size now (VmRSS of /proc/PID/status), None once it is gone."""
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def running(self) -> bool:
        """True until the child has exited (and was reaped by ``wait``)."""
        return self.returncode is None and not self._reap(os.WNOHANG)

    def _reap(self, flags: int) -> bool:
        pid, status, usage = os.wait4(self.pid, flags)
        if pid == 0:
            return False
        self.returncode = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.returncode
        self.cpu_total = usage.ru_utime + usage.ru_stime
        return True

    def wait(self, timeout: float) -> int:
        """Wait for the exit (killing the child after ``timeout`` s); return the exit code.

        ``cpu_total`` is then the child's whole CPU time from its rusage (wait4).
        """
        deadline = time.monotonic() + timeout
        while self.returncode is None:
            if self._reap(os.WNOHANG):
                break
            if time.monotonic() > deadline:
                self.kill()
                raise BenchError(f"{self.label}: still running after {timeout:.0f} s, killed")
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode

    def terminate(self) -> None:
        """Send SIGTERM (iperf2's server prints its report on it)."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the child if it still runs, and reap it."""
        if self.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            self._reap(0)

    def rest(self) -> str:
        """Everything left on stdout (call after the child exited)."""
        chunks = [self._buffer]
        self._buffer = b""
        while not self._eof:
            chunk = os.read(self._fd, 65536)
            self._eof = not chunk
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def stderr_tail(self, size: int = 600) -> str:
        """The end of the child's stderr, to put in an error message."""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return f": {text[-size:]}" if text else ""

    def json_result(self, timeout: float) -> dict[str, Any]:
        """Wait for the exit and return the last JSON line printed on stdout."""
        code = self.wait(timeout)
        lines = [line for line in self.rest().splitlines() if line.startswith("{")]
        if code != 0 or not lines:
            raise BenchError(f"{self.label} exited with {code}{self.stderr_tail()}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result


# -- progress ------------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr, with the step being run and an estimate of time left."""

    def __init__(self, weights: Sequence[float]) -> None:
        self.total = sum(weights) or 1.0
        self.steps = len(weights)
        self.done = 0.0
        self.count = 0
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()

    def show(self, label: str) -> None:
        """Redraw the bar with ``label`` as the step now running."""
        fraction = min(self.done / self.total, 1.0)
        elapsed = time.monotonic() - self.start
        eta = elapsed / fraction - elapsed if fraction > 0.02 else None
        bar = "#" * int(fraction * 30)
        line = (
            f"[{bar:<30}] {self.count}/{self.steps} {fraction:4.0%} "
            f"{_clock(elapsed)} elapsed, {'?' if eta is None else _clock(eta)} left  {label}"
        )
        if self.tty:
            sys.stderr.write("\r\x1b[K" + line[: shutil.get_terminal_size().columns - 1])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def advance(self, weight: float) -> None:
        """Mark one step of ``weight`` as done."""
        self.done += weight
        self.count += 1

    def note(self, text: str) -> None:
        """Print a line above the bar."""
        sys.stderr.write(("\r\x1b[K" if self.tty else "") + text + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.tty:
            sys.stderr.write("\n")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


# -- one measurement -----------------------------------------------------------------------------


@dataclasses.dataclass
class Bench:
    """Everything a measurement needs: sides, built tools, options and a port counter."""

    setup: Setup
    mcsend: str
    mcrecv: str
    rcvbuf: int
    idle: float
    port: int = FIRST_PORT

    def next_port(self) -> int:
        """A fresh UDP port for each measurement, so no stray datagram crosses over."""
        self.port += 1
        return self.port


def receiver_argv(
    bench: Bench, receiver: str, port: int, expect: int, fmt: str, latency: bool
) -> list[str]:
    """The command line of ``receiver`` in the receiving namespace."""
    side = bench.setup.receiver
    common = ["--group", GROUP, "--port", str(port), "--idle", str(bench.idle)]
    common += ["--first-timeout", "8"]
    if receiver == "c-recvmmsg":
        return side.command(
            bench.mcrecv,
            *common,
            "--ifaddr",
            side.address,
            "--expect",
            str(expect),
            "--format",
            fmt,
            "--latency",
            "1" if latency else "0",
            "--rcvbuf",
            str(bench.rcvbuf),
        )
    if receiver == "iperf2":
        bind = GROUP if bench.setup.mode == "lab" else f"{GROUP}%lo"
        window = ["-w", str(bench.rcvbuf)] if bench.rcvbuf else []
        return side.command("iperf", "-s", "-u", "-B", bind, "-p", str(port), "-e", *window)
    argv = [sys.executable, str(HERE / "receivers.py"), receiver, *common]
    argv += ["--interface", side.interface, "--expect", str(expect), "--format", fmt]
    argv += ["--rcvbuf", str(bench.rcvbuf)]
    if latency:
        argv.append("--latency")
    return side.command(*argv)


def start_receiver(
    bench: Bench, receiver: str, port: int, expect: int, fmt: str, latency: bool
) -> Child:
    """Start ``receiver`` and return once it has joined the group."""
    child = Child(receiver_argv(bench, receiver, port, expect, fmt, latency), receiver)
    if receiver == "iperf2":
        child.wait_for("UDP buffer size", 10)
        time.sleep(0.1)  # it prints the line just before its receive loop starts
        return child
    line = child.readline(15)
    if line is not None and line.startswith("{"):
        result = json.loads(line)
        child.wait(5)
        raise Skipped(result.get("skipped", line))
    if line != "ready":
        child.kill()
        raise BenchError(f"{receiver} did not get ready ({line!r}){child.stderr_tail()}")
    return child


class Skipped(Exception):
    """The receiver or sender said it cannot run here; the message says why."""


_IPERF2_SERVER = re.compile(
    r"(?P<jitter>[\d.]+) ms\s+(?P<lost>-?\d+)/\s*(?P<total>\d+)\s+\([^)]*\)"
    r"(?:\s+(?P<avg>-?[\d.]+)/(?P<min>-?[\d.]+)/(?P<max>-?[\d.]+)/(?P<stdev>[\d.]+) ms)?"
)


def finish_iperf2_server(child: Child, bench: Bench) -> dict[str, Any]:
    """Stop iperf2's server (it reports on SIGTERM) and read its loss and latency."""
    time.sleep(bench.idle)
    child.terminate()
    child.wait(10)
    text = child.rest()
    matches = list(_IPERF2_SERVER.finditer(text))
    if not matches:
        if "connected with" not in text:
            return {"receiver": "iperf2", "received": 0, "unique": 0}
        raise BenchError(f"iperf2 server: no report in {text[-400:]!r}")
    found = matches[-1]
    total, lost = int(found["total"]), int(found["lost"])
    result: dict[str, Any] = {
        "receiver": "iperf2",
        "received": total - lost,
        "unique": total - lost,
        "iperf2_total": total,
        "iperf2_lost": lost,
        "jitter_ms": float(found["jitter"]),
    }
    if found["avg"] is not None:
        result["latency_us"] = {
            "mean": float(found["avg"]) * 1e3,
            "max": float(found["max"]) * 1e3,
            "source": "iperf2 -e (send time from CLOCK_REALTIME; no percentiles)",
        }
    return result


def run_mcsend(
    bench: Bench, rate: int, count: int, port: int, fmt: str, max_seconds: float
) -> dict[str, Any]:
    """Run the C sender to completion and return its JSON line."""
    side = bench.setup.sender
    child = Child(
        side.command(
            bench.mcsend,
            "--group",
            GROUP,
            "--port",
            str(port),
            "--ifaddr",
            side.address,
            "--count",
            str(count),
            "--rate",
            str(rate),
            "--format",
            fmt,
            "--max-seconds",
            f"{max_seconds:.3f}",
        ),
        "mcsend",
    )
    return child.json_result(max_seconds + 10)


_IPERF2_SENT = re.compile(r"Sent (\d+) datagrams")
_IPERF2_INTERVAL = re.compile(r"\]\s+([\d.]+)-([\d.]+) sec")


def iperf2_client_argv(bench: Bench, rate: int, seconds: float, port: int) -> list[str]:
    """iperf2 as a sender: ``rate`` datagrams/s (0: as fast as it goes) of 64 bytes, TTL 1."""
    pps = f"{rate}pps" if rate else "100000000pps"
    argv = ["iperf", "-c", GROUP, "-u", "-b", pps, "-l", "64", "-T", "1"]
    argv += ["-t", f"{seconds:g}", "-p", str(port), "-e"]
    if bench.setup.mode != "lab":
        argv += ["-B", "127.0.0.1"]
    return bench.setup.sender.command(*argv)


def run_iperf2_client(bench: Bench, rate: int, seconds: float, port: int) -> dict[str, Any]:
    """Run iperf2's client and return what it sent (its data datagrams, not the final ones)."""
    child = Child(iperf2_client_argv(bench, rate, seconds, port), "iperf2 client")
    code = child.wait(seconds + 15)
    text = child.rest()
    sent = _IPERF2_SENT.search(text)
    interval = _IPERF2_INTERVAL.findall(text)
    if code != 0 or sent is None or not interval:
        raise BenchError(f"iperf2 client exited with {code}: {text[-400:]!r}{child.stderr_tail()}")
    elapsed = float(interval[-1][1]) - float(interval[-1][0])
    # "Sent N datagrams" counts the final datagram too: the data datagrams are N - 1.
    datagrams = int(sent[1]) - 1
    assert child.cpu_total is not None
    return {
        "sender": "iperf2",
        "sent": datagrams,
        "elapsed_s": elapsed,
        "rate": datagrams / elapsed if elapsed else 0.0,
        "cpu_s": child.cpu_total,
        "cpu_source": "rusage of the whole iperf2 process",
    }


def measure_receiver(
    bench: Bench,
    receiver: str,
    rate: int,
    seconds: float,
    *,
    load: str = "mcsend",
    latency: bool = False,
) -> dict[str, Any]:
    """One receiver at one offered rate: delivered %, CPU per million datagrams, latency."""
    port = bench.next_port()
    count = max(1, int(rate * seconds)) if rate else int(seconds * 2_000_000)
    if load == "iperf2":
        fmt, expect = "iperf2", int((rate or 2_000_000) * seconds * 1.2) + 1000
    else:
        fmt, expect = ("iperf2" if receiver == "iperf2" else "seq"), count
    rx = start_receiver(bench, receiver, port, expect, fmt, latency)
    try:
        base = rx.cpu_now()
        if load == "iperf2":
            sender = run_iperf2_client(bench, rate, seconds, port)
        else:
            sender = run_mcsend(bench, rate, count, port, fmt, seconds * 1.25 + 0.5)
        if receiver == "iperf2":
            result = finish_iperf2_server(rx, bench)
        else:
            result = rx.json_result(bench.idle + 30)
    finally:
        rx.kill()
    assert rx.cpu_total is not None
    cpu = rx.cpu_total - base
    sent = int(sender["sent"])
    delivered = int(result.get("unique", result["received"]))
    return {
        "receiver": receiver,
        "load": load,
        "rate_target": rate,
        "seconds": seconds,
        "latency_run": latency,
        "sent": sent,
        "sender_rate": sender["rate"],
        "sender_cpu_s": sender["cpu_s"],
        "received": result["received"],
        "delivered": delivered,
        "delivered_pct": 100.0 * delivered / sent if sent else 0.0,
        "loss": 1.0 - delivered / sent if sent else 1.0,
        "cpu_s": cpu,
        "cpu_s_per_million": cpu / result["received"] * 1e6 if result["received"] else None,
        "receiver_result": result,
        "sender_result": sender,
    }


def measure_memory(bench: Bench, rate: int, seconds: float) -> dict[str, Any]:
    """RSS of aiomcast's per-datagram receiver while mcsend offers ``rate`` for ``seconds``."""
    port = bench.next_port()
    count = int(rate * seconds)
    rx = start_receiver(bench, "aiomcast", port, count, "none", False)
    samples: list[tuple[float, int]] = []
    try:
        side = bench.setup.sender
        sender = Child(
            side.command(
                bench.mcsend,
                "--group",
                GROUP,
                "--port",
                str(port),
                "--ifaddr",
                side.address,
                "--count",
                str(count),
                "--rate",
                str(rate),
                "--max-seconds",
                f"{seconds:.3f}",
            ),
            "mcsend",
        )
        start = time.monotonic()
        while rx.running():
            rss = rx.rss_kib()
            if rss is not None:
                samples.append((round(time.monotonic() - start, 3), rss))
            if time.monotonic() - start > seconds + 30:
                raise BenchError("aiomcast receiver did not go idle after the memory run")
            time.sleep(0.5)
        sent = sender.json_result(seconds + 10)
        result = rx.json_result(5)
    finally:
        rx.kill()
    under_load = [rss for t, rss in samples if t <= seconds] or [rss for _, rss in samples]
    return {
        "receiver": "aiomcast",
        "rate_target": rate,
        "seconds": seconds,
        "sender_rate": sent["rate"],
        "sent": sent["sent"],
        "received": result["received"],
        "samples": samples,
        "rss_kib": {
            "first": under_load[0] if under_load else None,
            "peak": max(under_load) if under_load else None,
            "last": under_load[-1] if under_load else None,
        },
        "receiver_result": result,
    }


def measure_sender(bench: Bench, sender: str, count: int) -> dict[str, Any]:
    """One sender, unpaced: datagrams/s reached, CPU per datagram, and what arrived."""
    port = bench.next_port()
    seconds = 2.0
    fmt = "iperf2" if sender == "iperf2" else "seq"
    expect = count if sender != "iperf2" else 2_000_000
    rx = start_receiver(bench, "c-recvmmsg", port, expect, fmt, False)
    try:
        if sender == "c-sendmmsg":
            result = run_mcsend(bench, 0, count, port, "seq", 10)
        elif sender == "iperf2":
            result = run_iperf2_client(bench, 0, seconds, port)
        else:
            side = bench.setup.sender
            argv = [sys.executable, str(HERE / "senders.py"), sender, "--group", GROUP]
            argv += ["--port", str(port), "--interface", side.interface, "--ifaddr", side.address]
            argv += ["--count", str(count), "--max-seconds", "10"]
            result = Child(side.command(*argv), sender).json_result(30)
            if "skipped" in result:
                raise Skipped(result["skipped"])
        received = rx.json_result(bench.idle + 30)
    finally:
        rx.kill()
    sent = int(result["sent"])
    return {
        "sender": sender,
        "sent": sent,
        "elapsed_s": result["elapsed_s"],
        "rate": result["rate"],
        "cpu_s": result["cpu_s"],
        "cpu_us_per_datagram": result["cpu_s"] / sent * 1e6 if sent else None,
        "delivered_pct": 100.0 * received["unique"] / sent if sent else 0.0,
        "sender_result": result,
        "receiver_result": received,
    }


# -- the plan ------------------------------------------------------------------------------------


def build_tools(out: Path) -> tuple[str, str]:
    """Compile mcsend.c and mcrecv.c with ``cc -O2`` into out/build."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("no C compiler (cc): the load generator mcsend.c needs one")
    build = out / "build"
    build.mkdir(parents=True, exist_ok=True)
    binaries = []
    for name in ("mcsend", "mcrecv"):
        target = build / name
        result = subprocess.run(
            [compiler, "-O2", "-Wall", "-o", str(target), str(HERE / f"{name}.c")],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"cc {name}.c failed:\n{result.stderr}")
        binaries.append(str(target))
    return binaries[0], binaries[1]


def probe(mode: str) -> dict[str, str]:
    """Receivers and senders that cannot run here, with the reason for each."""
    import aiomcast

    skipped: dict[str, str] = {}
    if not hasattr(aiomcast.Receiver, "batches"):
        skipped["aiomcast-batches"] = "aiomcast's Receiver has no batches() yet"
    if "gro" not in inspect.signature(aiomcast.open_receiver).parameters:
        skipped["aiomcast-gro"] = "aiomcast.open_receiver takes no gro= keyword yet"
    elif "aiomcast-batches" in skipped:
        skipped["aiomcast-gro"] = skipped["aiomcast-batches"]
    if not hasattr(aiomcast.Sender, "send_many"):
        skipped["aiomcast-send-many"] = "aiomcast's Sender has no send_many() yet"
    try:
        import asyncio_dgram  # noqa: F401
    except ImportError:
        skipped["asyncio-dgram"] = "not installed: pip install -r benchmarks/requirements.txt"
    if shutil.which("iperf") is None:
        reason = "iperf2 is not installed (Debian package iperf)"
    elif mode != "lab" and os.geteuid() != 0:
        reason = "on the host's loopback interface the harness does not run iperf2 (use root)"
    else:
        reason = ""
    if reason:
        skipped["iperf2"] = reason
    return skipped


def loss_free_rate(points: list[dict[str, Any]]) -> float | None:
    """The highest offered rate (achieved rate for the unpaced point) with loss below 0.1 %."""
    rates = [
        float(p["rate_target"] or p["sender_rate"])
        for p in points
        if p.get("loss") is not None and p["loss"] < LOSS_FREE
    ]
    return max(rates) if rates else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter points (minutes)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="output directory")
    parser.add_argument(
        "--interface", choices=["lo"], help="run over the loopback interface instead of the lab"
    )
    parser.add_argument("--receivers", help="comma-separated subset of: " + ",".join(RECEIVERS))
    parser.add_argument("--senders", help="comma-separated subset of: " + ",".join(SENDERS))
    parser.add_argument(
        "--rcvbuf",
        type=int,
        default=4 << 20,
        help="SO_RCVBUF every receiver requests, bytes (0: the kernel default); default 4 MiB",
    )
    parser.add_argument("--idle", type=float, default=0.5, help="receiver idle exit, seconds")
    parser.add_argument("--rps", action="store_true", help="steer the receive path to CPU 1")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    receivers = _subset(args.receivers, RECEIVERS, parser)
    senders = _subset(args.senders, SENDERS, parser)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    mcsend, mcrecv = build_tools(out)
    try:
        with traffic_setup(args.interface, args.rps) as setup:
            for note in setup.notes:
                print(f"note: {note}", file=sys.stderr)
            bench = Bench(setup, mcsend, mcrecv, args.rcvbuf, args.idle)
            results = run_all(bench, profile, receivers, senders)
    finally:
        kill_children()
    results["meta"] |= {
        "quick": args.quick,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "wall_s": time.monotonic() - started,
        "rcvbuf": args.rcvbuf,
        "rps": args.rps,
        "notes": list(setup.notes),
    }
    import report

    paths = report.write_all(results, out)
    print(paths["markdown"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0


def _subset(value: str | None, allowed: list[str], parser: argparse.ArgumentParser) -> list[str]:
    if value is None:
        return list(allowed)
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return chosen


def run_all(
    bench: Bench, profile: Profile, receivers: list[str], senders: list[str]
) -> dict[str, Any]:
    """Calibrate, then run every measurement of ``profile`` with a progress bar."""
    setup = bench.setup
    skipped = probe(setup.mode)
    for name, why in skipped.items():
        if name in receivers or name in senders:
            print(f"skip {name}: {why}", file=sys.stderr)
    active = [r for r in receivers if r not in skipped]
    active_senders = [s for s in senders if s not in skipped]

    calibration = measure_sender(bench, "c-sendmmsg", profile.calibration_count)
    ceiling = calibration["rate"]
    rates = [r for r in profile.rates if r <= ceiling * 1.1]
    dropped = [r for r in profile.rates if r not in rates]
    if dropped:
        rates.append(0)  # one unpaced point: as fast as mcsend goes
        print(
            f"note: mcsend reaches {ceiling:,.0f} datagrams/s here; offered rates "
            f"{', '.join(f'{r:,}' for r in dropped)} are replaced by one unpaced point",
            file=sys.stderr,
        )
    iperf2_rates = [r for r in profile.iperf2_rates if r <= ceiling * 1.1]

    steps: list[tuple[str, float, Any]] = []
    for receiver in active:
        for rate in rates:
            steps.append(("sweep", profile.seconds, (receiver, rate)))
    if "iperf2" not in skipped:
        for receiver in active:
            for rate in iperf2_rates:
                steps.append(("iperf2-load", profile.seconds, (receiver, rate)))
    for receiver in active:
        for rate, seconds in profile.latency_points:
            steps.append(("latency", seconds, (receiver, rate)))
    if "aiomcast" in active:
        steps.append(("memory", profile.memory_seconds, None))
    for sender in active_senders:
        steps.append(("sender", 2.0, sender))

    progress = Progress([seconds + 1.5 for _, seconds, _ in steps])
    sweep: list[dict[str, Any]] = []
    iperf2_load: list[dict[str, Any]] = []
    latency: list[dict[str, Any]] = []
    memory: dict[str, Any] | None = None
    sender_rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for kind, seconds, what in steps:
        label = f"{kind} {what[0]} @ {_rate_label(what[1])}" if isinstance(what, tuple) else kind
        if kind == "sender":
            label = f"sender {what}"
        progress.show(label)
        try:
            if kind == "sweep":
                sweep.append(measure_receiver(bench, what[0], what[1], seconds))
            elif kind == "iperf2-load":
                iperf2_load.append(
                    measure_receiver(bench, what[0], what[1], seconds, load="iperf2")
                )
            elif kind == "latency":
                latency.append(measure_receiver(bench, what[0], what[1], seconds, latency=True))
            elif kind == "memory":
                base = loss_free_rate([p for p in sweep if p["receiver"] == "aiomcast"])
                rate = int(3 * (base or min(r for r in rates if r) or ceiling))
                memory = measure_memory(bench, rate, seconds)
                memory["loss_free_rate"] = base
            elif kind == "sender":
                sender_rows.append(measure_sender(bench, what, profile.sender_count))
        except Skipped as why:
            name = what[0] if isinstance(what, tuple) else str(what)
            if name not in skipped:
                skipped[name] = str(why)
                progress.note(f"skip {name}: {why}")
        except BenchError as exc:
            errors.append(f"{label}: {exc}")
            progress.note(f"error in {label}: {exc}")
        progress.advance(seconds + 1.5)
    progress.show("done")
    progress.close()

    summary = {
        receiver: {
            "loss_free_rate": loss_free_rate([p for p in sweep if p["receiver"] == receiver])
        }
        for receiver in active
        if receiver not in skipped
    }
    return {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "cpu_model": _cpu_model(),
            "cpus": os.cpu_count(),
            "mode": setup.mode,
            "sender_cpu": setup.sender.cpu,
            "receiver_cpu": setup.receiver.cpu,
            "interface": setup.receiver.interface,
            "group": GROUP,
            "payload_bytes": 64,
            "seconds_per_point": profile.seconds,
            "rates": rates,
            "rates_dropped": dropped,
            "iperf2_rates": iperf2_rates,
            "loss_free_threshold": LOSS_FREE,
            "versions": _versions(),
        },
        "calibration": calibration,
        "skipped": skipped,
        "errors": errors,
        "sweep": sweep,
        "iperf2_load": iperf2_load,
        "latency": latency,
        "memory": memory,
        "senders": sender_rows,
        "summary": summary,
    }


def _rate_label(rate: int) -> str:
    if rate == 0:
        return "max"
    if rate >= 1_000_000 and rate % 1_000_000 == 0:
        return f"{rate // 1_000_000}M/s"
    return f"{rate / 1000:g}k/s"


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in ("aiomcast", "uvloop", "asyncio-dgram"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    iperf = shutil.which("iperf")
    if iperf:
        result = subprocess.run([iperf, "-v"], capture_output=True, text=True, check=False)
        versions["iperf2"] = (result.stdout + result.stderr).strip()
    return versions


if __name__ == "__main__":
    sys.exit(main())
