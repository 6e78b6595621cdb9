"""Benchmark harness of aiomcast: receivers and senders side by side, in namespaces of its own.

    python benchmarks/run.py [--quick] [--out DIR]

As root it builds two network namespaces joined by a veth pair (``aiomcast.testing.lab``: hosts
"tx" and "rx", interface n1, 10.201.1.1 and 10.201.1.2) and moves itself into a private
network namespace first, so no benchmark datagram can reach this machine's own interfaces.
Without root (or with ``--interface lo``) it runs over the loopback interface instead, and
says that sender and receiver then share one kernel path. The sender is pinned to CPU 0 and
the receiver to CPU 1.

It measures, for every receiver (a process of its own, started in the receiving namespace):
delivered % and receiver CPU seconds per million datagrams at each offered rate of 64-byte
datagrams (the paced C sender mcsend.c, with sendmmsg or UDP_SEGMENT whichever goes faster
here, and iperf2 as a second load), the highest offered rate with < 0.1 % loss, and one-way
latency p50/p99 at 1k/s and 100k/s; the RSS of aiomcast's per-datagram receiver under three
times its loss-free rate; and for every sender the datagrams/s it reaches and its CPU per
datagram. Results go to --out as JSON (all raw numbers and the targets, met or not),
a markdown table and a PNG plot; a progress bar runs on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.util
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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Final, Self

import report
from plan import (
    FULL,
    QUICK,
    Profile,
    clean_prefix,
    loss_free_rate,
    parse_rates,
    plan,
    rate_label,
    refine_rate,
)

from aiomcast.testing import lab

HERE: Final = Path(__file__).resolve().parent
GROUP: Final = "239.77.0.1"
FIRST_PORT: Final = 42000
#: Loss below this fraction counts as loss-free.
LOSS_FREE: Final = report.LOSS_FREE

PYTHON_RECEIVERS: Final = [
    "asyncio-protocol",
    "uvloop-protocol",
    "blocking",
    "floor",
    "asyncio-dgram",
    "aiomcast",
    "aiomcast-batches",
    "aiomcast-gro",
    "aiomcast-python",
    "trio-aiomcast",
    "trio-aiomcast-batches",
    "trio-socket",
]
RECEIVERS: Final = [*PYTHON_RECEIVERS[:4], "iperf2", "c-recvmmsg", *PYTHON_RECEIVERS[4:]]
PYTHON_SENDERS: Final = [
    "blocking-sendto",
    "asyncio-sendto",
    "uvloop-sendto",
    "aiomcast-send",
    "aiomcast-send-many",
    "aiomcast-send-many-no-gso",
    "trio-aiomcast-send",
    "trio-aiomcast-send-many",
    "trio-socket-sendto",
]
#: The rows on anyio's trio backend: trio_rows.py runs them, with the options and JSON line
#: of receivers.py and senders.py.
TRIO_ROWS: Final = frozenset(
    {
        "trio-aiomcast",
        "trio-aiomcast-batches",
        "trio-socket",
        "trio-aiomcast-send",
        "trio-aiomcast-send-many",
        "trio-socket-sendto",
    }
)
#: The C senders are measured first, as the calibration that picks the sweep's load.
C_SENDERS: Final = ["c-sendmmsg", "c-gso"]
SENDERS: Final = [*C_SENDERS, "iperf2", *PYTHON_SENDERS]


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
    #: Moves the receiving veth's kernel path to the receiver's CPU (True, RPS) or leaves it
    #: on the sender's (False); None over lo, where there is no such choice.
    set_rps: Callable[[bool], None] | None = None
    #: The receivers' layout (the sender rows always run with RPS: see measure_sender).
    receiver_rps: bool = False
    #: Takes the receiving end of the veth pair down (True) or up again; None over lo.
    set_peer_down: Callable[[bool], None] | None = None

    @contextlib.contextmanager
    def peer_down(self) -> Iterator[bool]:
        """The receiving end down for a block (yields False where there is none to take down).

        With its peer down a veth drops what it is given at once (counted as transmit drops):
        the sender's CPU then carries its own path only, as when a NIC takes the frame.
        """
        if self.set_peer_down is None:
            yield False
            return
        self.set_peer_down(True)
        try:
            yield True
        finally:
            self.set_peer_down(False)

    @contextlib.contextmanager
    def rps(self, on: bool) -> Iterator[None]:
        """RPS ``on`` for a block, then the receivers' layout again."""
        if self.set_rps is None:
            yield
            return
        self.set_rps(on)
        try:
            yield
        finally:
            self.set_rps(self.receiver_rps)


def cpus_for_sides() -> tuple[int, int, str | None]:
    """CPUs for the sender and the receiver: 0 and 1 where this process may use both."""
    allowed = sorted(os.sched_getaffinity(0))
    if 0 in allowed and 1 in allowed:
        return 0, 1, None
    if len(allowed) >= 2:
        return allowed[0], allowed[1], f"CPUs 0 and 1 are not available: using {allowed[:2]}"
    return allowed[0], allowed[0], f"one CPU only ({allowed[0]}): sender and receiver share it"


@contextlib.contextmanager
def traffic_setup(interface: str | None, rps: bool, rcvbuf: int = 0) -> Iterator[Setup]:
    """Build where the traffic flows: the lab (root) or the loopback interface.

    ``rcvbuf``: the SO_RCVBUF the receivers will ask for. net.core.rmem_max caps it; a
    namespace sees the host's value read-only (Linux 6.18, pinned in tests/test_fastpath.py),
    so the harness cannot raise it for its own namespaces: its receivers get ``rcvbuf`` past
    it with SO_RCVBUFFORCE instead (root), and the notes say when that was needed.
    """
    tx_cpu, rx_cpu, cpu_note = cpus_for_sides()
    notes = [cpu_note] if cpu_note else []
    notes += rmem_max_note(rcvbuf)
    root = os.geteuid() == 0
    if interface not in (None, "lo"):
        raise SystemExit(
            f"--interface {interface!r}: only 'lo' is allowed; benchmark traffic never uses a "
            "real interface (by default it flows between namespaces the harness builds)"
        )
    if interface == "lo" or not root:
        why = "--interface lo" if interface == "lo" else "not root, so no namespaces"
        if root:
            lab.enter_private_network()  # a private lo: still nothing reaches a real interface
            why += ", in a private network namespace"
        notes.append(
            f"loopback interface ({why}): sender and receiver share the kernel path of lo, "
            "so the numbers are not those of two hosts"
        )
        local = Side((), tx_cpu, "lo", "127.0.0.1")
        try:
            yield Setup(local, dataclasses.replace(local, cpu=rx_cpu), "loopback", tuple(notes))
        finally:
            kill_children()
        return
    ok, why = lab.lab_available()
    if not ok:
        raise SystemExit(f"cannot build the namespaces: {why}")
    lab.enter_private_network()
    try:
        with lab.Lab(prefix="amcb") as net:
            net.build("hosts tx rx\nnet 1 tx rx\n")
            tx, rx = net["tx"], net["rx"]
            # A veth pair delivers on the sending CPU. Receivers run without RPS by default:
            # the receiving side's IP and UDP work then runs on the sender's CPU, and the
            # receiver's CPU does the receiver's own work only (the layout of the targets'
            # table). Senders run with RPS, which moves that work to the receiver's CPU, so
            # the sender's CPU does the sender's own work only (measure_sender).
            mask = f"{1 << rx_cpu:x}"

            def set_rps(on: bool) -> None:
                path = "/sys/class/net/n1/queues/rx-0/rps_cpus"
                rx.run("sh", "-c", f"echo {mask if on else 0} > {path}")

            set_rps(rps)

            # Taking a link down deletes its routes, and its IPv6 addresses unless they are
            # kept: keep them, and put the group route back when it comes up.
            rx.run("sysctl", "-qw", "net.ipv6.conf.n1.keep_addr_on_down=1")

            def set_peer_down(down: bool) -> None:
                rx.ip("link", "set", "n1", "down" if down else "up")
                if not down:
                    rx.ip("route", "replace", "224.0.0.0/4", "dev", "n1")

            if rps:
                notes.append(
                    "--rps: the receiving kernel path (IP, UDP, socket buffer) runs on the "
                    f"receiver's CPU {rx_cpu}, as on a receiving host whose interrupts land on "
                    "the application's CPU; the receiver's rusage includes the part of it that "
                    "interrupted the receiver"
                )
            else:
                notes.append(
                    f"receivers: the receiving kernel path runs on the sender's CPU {tx_cpu} "
                    "(veth's default); receiver CPU is the receiver's own work only"
                )
            notes.append(
                "senders: RPS on the receiving veth moves the receiving kernel path to CPU "
                f"{rx_cpu}, so the sender's CPU {tx_cpu} does the sender's own work only"
            )
            try:
                yield Setup(
                    Side(tuple(tx.command()), tx_cpu, "n1", tx.address(1)),
                    Side(tuple(rx.command()), rx_cpu, "n1", rx.address(1)),
                    "lab",
                    tuple(notes),
                    set_rps,
                    rps,
                    set_peer_down,
                )
            finally:
                kill_children()  # nothing may keep a namespace alive
    finally:
        lab.sweep()  # the safety net: namespaces of this process that are still there


def rmem_max_note(rcvbuf: int) -> list[str]:
    """A note when ``rcvbuf`` is above net.core.rmem_max (the host's; see traffic_setup)."""
    try:
        limit = int(Path("/proc/sys/net/core/rmem_max").read_text())
    except (OSError, ValueError):
        return []
    if rcvbuf <= limit:
        return []
    if os.geteuid() != 0:
        return [
            f"--rcvbuf {rcvbuf} is above net.core.rmem_max ({limit}) and this is not root: "
            f"every receiver is capped at {limit}"
        ]
    return [
        f"--rcvbuf {rcvbuf} is above net.core.rmem_max ({limit}): the receivers get it "
        "with SO_RCVBUFFORCE (root), except iperf2, whose -w stays capped at the limit"
    ]


# -- child processes -----------------------------------------------------------------------------

_children: list[Child] = []


def kill_children() -> None:
    """Kill every child this harness started that still runs (each by its own pid)."""
    for child in list(_children):
        child.close()


class Child:
    """A process the harness started: lines with a timeout, CPU time, RSS and rusage.

    Use it as a context manager: leaving the block kills the child if it still runs, reaps
    it and closes its pipes.
    """

    def __init__(self, argv: Sequence[str], label: str) -> None:
        self.label = label
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr
        )
        assert self.proc.stdout is not None
        self._stdout = self.proc.stdout
        self._buffer = b""
        self._eof = False
        self.returncode: int | None = None
        #: User + system CPU seconds of the whole process, from wait4's rusage once reaped.
        self.cpu_total: float | None = None
        _children.append(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pid(self) -> int:
        """The child's process id (``ip netns exec`` and ``taskset`` exec, so it is the tool's)."""
        return self.proc.pid

    def readline(self, timeout: float) -> str | None:
        """The next line of stdout, or None at end of file or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        fd = self._stdout.fileno()
        while b"\n" not in self._buffer and not self._eof:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
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
        raise BenchError(f"{self.label}: no {pattern!r} within {timeout:.0f} s{self.stderr_tail()}")

    def cpu_now(self) -> float:
        """User + system CPU seconds so far, from /proc/PID/stat (in clock ticks)."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int | None:
        """Resident set size now (VmRSS in /proc/PID/status), None once it is gone."""
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def running(self) -> bool:
        """True until the child has exited; reaps it when it has."""
        return self.returncode is None and not self._reap(os.WNOHANG)

    def _reap(self, flags: int) -> bool:
        pid, status, usage = os.wait4(self.pid, flags)
        if pid == 0:
            return False
        self.returncode = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.returncode  # reaped here: Popen must not wait again
        self.cpu_total = usage.ru_utime + usage.ru_stime
        return True

    def wait(self, timeout: float) -> int:
        """Wait for the exit and return the exit code; kill and BenchError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.running():
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

    def close(self) -> None:
        """Kill (if needed) and reap the child, and close its pipes."""
        self.kill()
        self._stdout.close()
        self._stderr.close()
        if self in _children:
            _children.remove(self)

    def rest(self) -> str:
        """Everything left on stdout (call after the child exited)."""
        chunks = [self._buffer]
        self._buffer = b""
        while not self._eof:
            chunk = os.read(self._stdout.fileno(), 65536)
            self._eof = not chunk
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def stderr_tail(self, lines: int = 3) -> str:
        """The last lines of the child's stderr, ready to append to an error message."""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return ": " + " | ".join(text.splitlines()[-lines:]) if text else ""

    def json_result(self, timeout: float) -> dict[str, Any]:
        """Wait for the exit and return the last JSON line it printed on stdout."""
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


def backlog_drops() -> int:
    """Datagrams the kernel dropped from full per-CPU input backlogs, all CPUs, so far.

    /proc/net/softnet_stat (second column) is machine-wide; during a point only the
    benchmark's traffic moves, so the difference over a point is its backlog loss (with RPS
    a burst longer than net.core.netdev_max_backlog is dropped there, not at the socket).
    """
    try:
        with open("/proc/net/softnet_stat", encoding="ascii") as handle:
            return sum(int(line.split()[1], 16) for line in handle if line.strip())
    except (OSError, IndexError, ValueError):
        return 0


# -- one measurement -----------------------------------------------------------------------------


def python_script(row: str, default: str) -> str:
    """The script that runs a Python row: trio_rows.py for the trio rows, else ``default``."""
    return "trio_rows.py" if row in TRIO_ROWS else default


class Skipped(Exception):
    """A receiver or sender said it cannot run here; the message says why."""


@dataclasses.dataclass
class Bench:
    """Everything a measurement needs: the sides, the built tools, options, a port counter."""

    setup: Setup
    mcsend: str
    mcrecv: str
    rcvbuf: int
    idle: float
    port: int = FIRST_PORT
    #: Datagrams per UDP_SEGMENT send of the sweep's load (0: sendmmsg); set by calibration.
    load_gso: int = 0
    #: mcsend's --quantum-us for paced loads: what is due gathers this long before a send.
    quantum_us: float = 0.0

    def next_port(self) -> int:
        """A fresh UDP port for each measurement, so no late datagram crosses over."""
        self.port += 1
        return self.port

    def mcsend_argv(
        self, port: int, rate: int, count: int, fmt: str, seconds: float, gso: int | None = None
    ) -> list[str]:
        """The C sender: ``count`` datagrams at ``rate``/s (0: unpaced), at most ``seconds``.

        ``gso``: datagrams per UDP_SEGMENT send, 0 for sendmmsg; None for the sweep's load.
        """
        side = self.setup.sender
        segments = self.load_gso if gso is None else gso
        return side.command(
            self.mcsend,
            *("--group", GROUP, "--port", str(port), "--ifaddr", side.address),
            *("--count", str(count), "--rate", str(rate), "--format", fmt),
            *("--max-seconds", f"{seconds:.3f}", "--gso", str(segments)),
            *("--quantum-us", f"{self.quantum_us:g}"),
        )

    def iperf2_client_argv(self, port: int, rate: int, seconds: float) -> list[str]:
        """iperf2 as a sender: ``rate`` datagrams/s (0: unpaced) of 64 bytes, TTL 1."""
        pps = f"{rate}pps" if rate else "100000000pps"
        argv = ["iperf", "-c", GROUP, "-u", "-b", pps, "-l", "64", "-T", "1"]
        argv += ["-t", f"{seconds:g}", "-p", str(port), "-e"]
        if self.setup.mode != "lab":
            argv += ["-B", "127.0.0.1"]  # out of lo (only in a private namespace: see probe)
        return self.setup.sender.command(*argv)

    def receiver_argv(
        self, receiver: str, port: int, expect: int, fmt: str, latency: bool, work_us: float = 0.0
    ) -> list[str]:
        """The command line of ``receiver`` in the receiving namespace."""
        side = self.setup.receiver
        common = ["--group", GROUP, "--port", str(port), "--idle", str(self.idle)]
        common += ["--first-timeout", "8"]
        if receiver == "c-recvmmsg":
            return side.command(
                self.mcrecv,
                *common,
                *("--ifaddr", side.address, "--expect", str(expect), "--format", fmt),
                *("--latency", "1" if latency else "0", "--rcvbuf", str(self.rcvbuf)),
            )
        if receiver == "iperf2":
            bind = GROUP if self.setup.mode == "lab" else f"{GROUP}%lo"
            window = ["-w", str(self.rcvbuf)] if self.rcvbuf else []
            return side.command("iperf", "-s", "-u", "-B", bind, "-p", str(port), "-e", *window)
        argv = [sys.executable, str(HERE / python_script(receiver, "receivers.py")), receiver]
        argv += common
        argv += ["--interface", side.interface, "--expect", str(expect), "--format", fmt]
        argv += ["--rcvbuf", str(self.rcvbuf), *(["--latency"] if latency else [])]
        if work_us:
            argv += ["--work-us", f"{work_us:g}"]
        return side.command(*argv)

    def start_receiver(
        self, receiver: str, port: int, expect: int, fmt: str, latency: bool, work_us: float = 0.0
    ) -> Child:
        """Start ``receiver`` and return once it has joined the group."""
        argv = self.receiver_argv(receiver, port, expect, fmt, latency, work_us)
        child = Child(argv, receiver)
        try:
            if receiver == "iperf2":
                child.wait_for("UDP buffer size", 10)
                time.sleep(0.1)  # printed just before its receive loop starts
                return child
            line = child.readline(15)
            if line is not None and line.startswith("{"):
                raise Skipped(json.loads(line).get("skipped", line))
            if line != "ready":
                raise BenchError(f"{receiver} did not get ready ({line!r}){child.stderr_tail()}")
        except BaseException:
            child.close()
            raise
        return child


_IPERF2_SERVER = re.compile(
    r"(?P<jitter>[\d.]+) ms\s+(?P<lost>-?\d+)/\s*(?P<total>\d+)\s+\([^)]*\)"
    r"(?:\s+(?P<avg>-?[\d.]+)/(?P<min>-?[\d.]+)/(?P<max>-?[\d.]+)/(?P<stdev>[\d.]+) ms)?"
)
_IPERF2_SENT = re.compile(r"Sent (\d+) datagrams")
_IPERF2_INTERVAL = re.compile(r"\]\s+([\d.]+)-([\d.]+) sec")


def finish_iperf2_server(child: Child, idle: float) -> dict[str, Any]:
    """Stop iperf2's server (it prints its report on SIGTERM) and read loss and latency."""
    time.sleep(idle)
    child.terminate()
    child.wait(10)
    text = child.rest()
    matches = list(_IPERF2_SERVER.finditer(text))
    if not matches:
        if "connected with" not in text:
            return {"receiver": "iperf2", "received": 0, "unique": 0}  # nothing arrived
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
            "source": "iperf2 -e: no percentiles; send time from CLOCK_REALTIME",
        }
    return result


def run_iperf2_client(bench: Bench, port: int, rate: int, seconds: float) -> dict[str, Any]:
    """Run iperf2's client to the end and return what it sent (data datagrams only)."""
    with Child(bench.iperf2_client_argv(port, rate, seconds), "iperf2 client") as child:
        code = child.wait(seconds + 15)
        text = child.rest()
        sent = _IPERF2_SENT.search(text)
        interval = _IPERF2_INTERVAL.findall(text)
        if code != 0 or sent is None or not interval:
            raise BenchError(f"iperf2 client exited with {code}: {text[-300:]!r}")
        assert child.cpu_total is not None
        cpu = child.cpu_total
    elapsed = float(interval[-1][1]) - float(interval[-1][0])
    datagrams = int(sent[1]) - 1  # "Sent N datagrams" counts the final datagram too
    return {
        "sender": "iperf2",
        "sent": datagrams,
        "elapsed_s": elapsed,
        "rate": datagrams / elapsed if elapsed else 0.0,
        "cpu_s": cpu,
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
    """One receiver at one offered rate: delivered %, CPU per million datagrams, latency.

    The receiver's CPU is its rusage at exit (wait4) minus its /proc/PID/stat time when it
    said it had joined: start-up and imports are not counted, the idle tail costs nothing.
    """
    port = bench.next_port()
    if load == "iperf2":
        fmt, count = "iperf2", 0
        expect = int((rate or 2_000_000) * seconds * 1.2) + 1000
    else:
        fmt = "iperf2" if receiver == "iperf2" else "seq"
        count = int(rate * seconds) if rate else int(seconds * 5_000_000)
        expect = count
    max_seconds = seconds * 1.25 + 0.5 if rate else seconds
    with bench.start_receiver(receiver, port, expect, fmt, latency) as rx:
        base, backlog = rx.cpu_now(), backlog_drops()
        if load == "iperf2":
            sender = run_iperf2_client(bench, port, rate, seconds)
        else:
            # Latency is measured under sendmmsg load at every rate: per-send stamps, no
            # receive-side GSO segmentation in the path being timed.
            gso = 0 if latency else None
            argv = bench.mcsend_argv(port, rate, count, fmt, max_seconds, gso)
            with Child(argv, "mcsend") as tx:
                sender = tx.json_result(max_seconds + 10)
        if receiver == "iperf2":
            result = finish_iperf2_server(rx, bench.idle)
        else:
            result = rx.json_result(bench.idle + 30)
        assert rx.cpu_total is not None
        cpu = rx.cpu_total - base
    result["backlog_dropped"] = backlog_drops() - backlog
    sent = int(sender["sent"])
    delivered = int(result.get("unique", result["received"]))
    received = int(result["received"])
    return {
        "receiver": receiver,
        "load": load,
        "rate_target": rate,
        "seconds": seconds,
        "latency_run": latency,
        "sent": sent,
        "sender_rate": sender["rate"],
        "sender_cpu_s": sender["cpu_s"],
        "received": received,
        "delivered": delivered,
        "delivered_pct": 100.0 * delivered / sent if sent else 0.0,
        "loss": 1.0 - delivered / sent if sent else 1.0,
        "cpu_s": cpu,
        "cpu_s_per_million": cpu / received * 1e6 if received else None,
        "receiver_result": result,
        "sender_result": sender,
    }


#: Seconds of load before the memory run's first sample counts (see measure_memory).
MEMORY_WARMUP_S: Final = 1.0


#: The memory run's consumer busy-works this long per datagram (a slow application): it can
#: take at most 1e6 / MEMORY_WORK_US datagrams/s, and is offered three times that.
MEMORY_WORK_US: Final = 4.0
MEMORY_OVERLOAD: Final = 3.0


def measure_memory(bench: Bench, rate: int, seconds: float) -> dict[str, Any]:
    """VmRSS of aiomcast's per-datagram receiver, every 0.5 s, while mcsend offers ``rate``.

    The consumer works MEMORY_WORK_US per datagram, so ``rate`` is an overload of at least
    ``rate * MEMORY_WORK_US / 1e6`` (the measured factor, offered over consumed, is reported).
    """
    port = bench.next_port()
    count = int(rate * seconds) if rate else int(seconds * SENDER_COUNT_CAP)  # 0: unpaced
    samples: list[tuple[float, int]] = []
    with bench.start_receiver("aiomcast", port, count, "none", False, MEMORY_WORK_US) as rx:
        backlog = backlog_drops()
        with Child(bench.mcsend_argv(port, rate, count, "seq", seconds), "mcsend") as tx:
            start = time.monotonic()
            while rx.running():
                rss = rx.rss_kib()
                if rss is not None:
                    samples.append((round(time.monotonic() - start, 3), rss))
                if time.monotonic() - start > seconds + 30:
                    raise BenchError("the aiomcast receiver did not go idle after the memory run")
                time.sleep(0.5)
            sent = tx.json_result(seconds + 10)
        result = rx.json_result(5)
    result["backlog_dropped"] = backlog_drops() - backlog
    # Growth is judged from the first sample after MEMORY_WARMUP_S of load: by then the
    # receiver has made what it makes on first use (aiomcast's recvmmsg buffers, 4 MiB, come
    # with the first busy read); the sample at the load's start is kept as "before".
    under_load = [rss for t, rss in samples if MEMORY_WARMUP_S <= t <= seconds] or [
        rss for _, rss in samples
    ]
    return {
        "receiver": "aiomcast",
        "rate_target": rate,
        "seconds": seconds,
        "sender_rate": sent["rate"],
        "sent": sent["sent"],
        "received": result["received"],
        "delivered_pct": 100.0 * result["received"] / sent["sent"] if sent["sent"] else 0.0,
        "work_us": MEMORY_WORK_US,
        # Offered over consumed.
        "overload": sent["sent"] / result["received"] if result["received"] else None,
        "samples": samples,
        "rss_kib": {
            "before": samples[0][1] if samples else None,
            "first": under_load[0] if under_load else None,
            "peak": max(under_load) if under_load else None,
            "last": under_load[-1] if under_load else None,
        },
        "receiver_result": result,
    }


#: mcsend's datagrams per UDP_SEGMENT send for the c-gso sender (the kernel's limit, 64).
C_GSO_SEGMENTS: Final = 64
#: With the GSO load, what is due gathers this long before a paced send (mcsend --quantum-us):
#: sends of a few datagrams each (a send every few µs) would cost the receiving kernel one
#: IP-layer pass per send, and the C reference then lost datagrams from 500k/s on.
LOAD_QUANTUM_US: Final = 50.0
#: An unpaced sender stops after this many datagrams, or after its time, whichever is first.
SENDER_COUNT_CAP: Final = 5_000_000


def measure_sender(
    bench: Bench, sender: str, seconds: float, *, layout: str = "sender"
) -> dict[str, Any]:
    """One sender, unpaced for ``seconds``: datagrams/s it reaches, CPU per datagram, arrivals.

    mcsend.c and the Python senders time their own send loop (getrusage around it); iperf2's
    CPU is its whole process's rusage. The C receiver counts what arrived. ``layout``
    "sender" runs it with RPS (the receiving kernel path off the sender's CPU, as when the
    receivers are other hosts), then again with the receiving end down (``own``: the
    sender's own path, measure_own_path); "receiver" in the receivers' layout (the
    calibration of the sweep's load).
    """
    with bench.setup.rps(layout == "sender" or bench.setup.receiver_rps):
        row = _measure_sender(bench, sender, seconds)
    row["layout"] = layout
    if layout == "sender":
        row["own_rounds"] = []
        add_own_round(bench, row, seconds)
    return row


def add_own_round(bench: Bench, row: dict[str, Any], seconds: float) -> None:
    """Measure ``row``'s sender on its own path once more; ``row["own"]`` is the median round.

    A failed round is noted (``own_error``) and leaves the others standing. The median is
    the middle round by rate (the lower middle of an even count), so its rate and its CPU
    per datagram come from the same measurement.
    """
    try:
        own = measure_own_path(bench, row["sender"], seconds)
    except (BenchError, lab.LabError) as exc:  # the row into the lab still stands
        row["own_error"] = str(exc)
        own = None
    if own is not None:
        row["own_rounds"].append(own)
    rounds = sorted(row["own_rounds"], key=lambda r: float(r["rate"]))
    row["own"] = rounds[(len(rounds) - 1) // 2] if rounds else None


def measure_own_path(bench: Bench, sender: str, seconds: float) -> dict[str, Any] | None:
    """``sender`` with the receiving end down: its own path only (None over lo).

    Into the lab with RPS, every datagram the receiving CPU's queue was empty for costs the
    sender an inter-processor interrupt, and on this VM those dominate (perf: a third of
    the C sendmmsg sender's CPU in native_write_msr, about 1.2 µs per datagram), the same
    for every sender; a NIC raises its interrupts on the receiving host instead.
    """
    with bench.setup.peer_down() as down:
        if not down:
            return None
        result = _send(bench, sender, bench.next_port(), seconds)
    sent = int(result["sent"])
    return {
        "sent": sent,
        "elapsed_s": result["elapsed_s"],
        "rate": result["rate"],
        "cpu_s": result["cpu_s"],
        "cpu_us_per_datagram": result["cpu_s"] / sent * 1e6 if sent else None,
    }


def _send(bench: Bench, sender: str, port: int, seconds: float) -> dict[str, Any]:
    """Run ``sender`` unpaced for ``seconds`` to ``port``; its own JSON result."""
    count = SENDER_COUNT_CAP
    if sender in ("c-sendmmsg", "c-gso"):
        gso = C_GSO_SEGMENTS if sender == "c-gso" else 0
        with Child(bench.mcsend_argv(port, 0, count, "seq", seconds, gso), sender) as tx:
            return tx.json_result(seconds + 10)
    if sender == "iperf2":
        return run_iperf2_client(bench, port, 0, seconds)
    side = bench.setup.sender
    script = python_script(sender, "senders.py")
    argv = [sys.executable, str(HERE / script), sender, "--group", GROUP]
    argv += ["--port", str(port), "--interface", side.interface, "--ifaddr", side.address]
    argv += ["--count", str(count), "--max-seconds", f"{seconds:g}"]
    with Child(side.command(*argv), sender) as tx:
        result = tx.json_result(30)
    if "skipped" in result:
        raise Skipped(result["skipped"])
    return result


def _measure_sender(bench: Bench, sender: str, seconds: float) -> dict[str, Any]:
    port = bench.next_port()
    fmt = "iperf2" if sender == "iperf2" else "seq"
    expect = SENDER_COUNT_CAP if sender != "iperf2" else 2_000_000
    with bench.start_receiver("c-recvmmsg", port, expect, fmt, False) as rx:
        backlog = backlog_drops()
        result = _send(bench, sender, port, seconds)
        received = rx.json_result(bench.idle + 30)
    received["backlog_dropped"] = backlog_drops() - backlog
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
    from aiomcast import _fastio

    if _fastio.BatchReader is None:
        skipped["floor"] = "aiomcast's C extension is not built here (the floor is its reader)"
    if not hasattr(aiomcast.Sender, "send_many"):
        skipped["aiomcast-send-many"] = "aiomcast's Sender has no send_many() yet"
    if importlib.util.find_spec("trio") is None:
        for row in TRIO_ROWS:
            skipped[row] = "trio is not installed: pip install -r benchmarks/requirements.txt"
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


def calibrate(bench: Bench, profile: Profile, errors: list[str]) -> dict[str, Any]:
    """Measure both C senders unpaced and make the faster one the load of the sweep.

    Returns the sender rows, the load's name and the rate it reaches (the ceiling): offered
    rates above it are not worth asking for. Sets ``bench.load_gso`` and ``bench.quantum_us``.
    """
    rows = []
    for sender in C_SENDERS:
        print(f"calibrating: {sender} unpaced", file=sys.stderr)
        try:
            row = measure_sender(bench, sender, profile.sender_seconds, layout="receiver")
        except BenchError as exc:
            errors.append(f"calibration {sender}: {exc}")
            continue
        failed = row["sender_result"].get("errors", 0)
        if failed and sender == "c-gso":  # no UDP_SEGMENT here: every send fails
            errors.append(f"calibration c-gso: {failed} sends failed; the load is c-sendmmsg")
            continue
        rows.append(row)
    if not rows:
        raise SystemExit("mcsend cannot send here: " + "; ".join(errors))
    fastest = max(rows, key=lambda row: float(row["rate"]))
    if fastest["sender"] == "c-gso":
        bench.load_gso, bench.quantum_us = C_GSO_SEGMENTS, LOAD_QUANTUM_US
    return {"rows": rows, "load": fastest["sender"], "ceiling": float(fastest["rate"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter points (minutes)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="output directory")
    parser.add_argument(
        "--interface", help="'lo': run over the loopback interface instead of the lab"
    )
    parser.add_argument("--receivers", help="comma-separated subset of: " + ",".join(RECEIVERS))
    parser.add_argument("--senders", help="comma-separated subset of: " + ",".join(SENDERS))
    parser.add_argument(
        "--rcvbuf",
        type=int,
        default=4 << 20,
        help="SO_RCVBUF every receiver gets, in bytes (0: the kernel default; as root past "
        "net.core.rmem_max with SO_RCVBUFFORCE, iperf2 excepted); 4 MiB",
    )
    parser.add_argument(
        "--rates", type=parse_rates, help="offered rates of the sweep, e.g. 50k,100k,150k,1M"
    )
    parser.add_argument("--idle", type=float, default=0.5, help="receiver idle exit, seconds")
    parser.add_argument(
        "--rps",
        action="store_true",
        help="receivers too with RPS: the receiving kernel path on the receiver's CPU "
        "(default: on the sender's, veth's default; the sender rows always use RPS)",
    )
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.rates:
        profile = dataclasses.replace(profile, rates=args.rates)
    receivers = _subset(args.receivers, RECEIVERS, parser)
    senders = _subset(args.senders, SENDERS, parser)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    mcsend, mcrecv = build_tools(out)
    with traffic_setup(args.interface, args.rps, args.rcvbuf) as setup:
        for note in setup.notes:
            print(f"note: {note}", file=sys.stderr)
        bench = Bench(setup, mcsend, mcrecv, args.rcvbuf, args.idle)
        results = run_all(bench, profile, receivers, senders)
    results["meta"] |= {
        "quick": args.quick,
        "command": " ".join(["python", *sys.argv]),
        "wall_s": round(time.monotonic() - started, 1),
        "rcvbuf": args.rcvbuf,
        "rps": args.rps,
    }
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
    """Calibrate the load, then make every measurement of the plan under a progress bar."""
    setup = bench.setup
    skipped = probe(setup.mode)
    for name, why in skipped.items():
        if name in receivers or name in senders:
            print(f"skip {name}: {why}", file=sys.stderr)
    receivers = [r for r in receivers if r not in skipped]
    senders = [s for s in senders if s not in skipped]

    errors: list[str] = []
    calibration = calibrate(bench, profile, errors)
    ceiling = calibration["ceiling"]
    rates = [r for r in profile.rates if r <= ceiling * 1.1]
    dropped = [r for r in profile.rates if r not in rates]
    if dropped or profile.unpaced_point:
        rates.append(0)  # one unpaced point: as fast as the load goes
    if dropped:
        print(
            f"note: the load reaches {ceiling:,.0f} datagrams/s here; the offered rates "
            f"{', '.join(f'{r:,}' for r in dropped)} are replaced by one unpaced point (max)",
            file=sys.stderr,
        )
    steps = plan(profile, receivers, senders, rates, "iperf2" not in skipped)

    progress = Progress([step.weight for step in steps])
    results: dict[str, Any] = {
        "sweep": [],
        "refine": [],
        "iperf2_load": [],
        "latency": [],
        "memory": None,
        "senders": [],
    }
    for step in steps:
        progress.show(step.label)
        try:
            if step.name in skipped:
                pass
            elif step.kind == "sweep":
                results["sweep"].append(measure_receiver(bench, step.name, step.rate, step.seconds))
            elif step.kind == "refine":
                mine = [
                    p for p in results["sweep"] + results["refine"] if p["receiver"] == step.name
                ]
                rate = refine_rate(mine)
                if rate is not None:
                    progress.show(f"refine {step.name} @ {rate_label(rate)}")
                    results["refine"].append(measure_receiver(bench, step.name, rate, step.seconds))
            elif step.kind == "iperf2-load":
                results["iperf2_load"].append(
                    measure_receiver(bench, step.name, step.rate, step.seconds, load="iperf2")
                )
            elif step.kind == "latency":
                results["latency"].append(
                    measure_receiver(bench, step.name, step.rate, step.seconds, latency=True)
                )
            elif step.kind == "memory":
                # Three times what the slow consumer can take (MEMORY_WORK_US per datagram).
                capacity = 1e6 / MEMORY_WORK_US
                wanted = MEMORY_OVERLOAD * capacity
                rate = int(wanted) if wanted < ceiling else 0
                results["memory"] = measure_memory(bench, rate, step.seconds)
                results["memory"]["capacity"] = capacity
            elif step.kind == "own":
                row = next((r for r in results["senders"] if r["sender"] == step.name), None)
                if row is not None and row["own_rounds"]:  # not over lo, nor after a failure
                    add_own_round(bench, row, step.seconds)
            else:
                results["senders"].append(measure_sender(bench, step.name, profile.sender_seconds))
        except Skipped as why:
            skipped[step.name] = str(why)
            progress.note(f"skip {step.name}: {why}")
        except BenchError as exc:
            errors.append(f"{step.label}: {exc}")
            progress.note(f"error in {step.label}: {exc}")
        progress.advance(step.weight)
    progress.show("done")
    progress.close()

    results["summary"] = {}
    for receiver in receivers:
        if receiver in skipped:
            continue
        points = [p for p in results["sweep"] + results["refine"] if p["receiver"] == receiver]
        results["summary"][receiver] = {
            "loss_free_rate": loss_free_rate(points),
            # The lowest offered rate above it that lost (None: none did).
            "lost_at": clean_prefix(points)[1],
            "refined": [
                int(p["rate_target"]) for p in results["refine"] if p["receiver"] == receiver
            ],
        }
    results["meta"] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "mode": setup.mode,
        "notes": list(setup.notes),
        "sender_cpu": setup.sender.cpu,
        "receiver_cpu": setup.receiver.cpu,
        "interface": setup.receiver.interface,
        "group": GROUP,
        "payload_bytes": 64,
        "seconds_per_point": profile.seconds,
        "rates": rates,
        "rates_dropped": dropped,
        "mcsend_ceiling": ceiling,
        "load": calibration["load"],
        "load_gso": bench.load_gso,
        "load_quantum_us": bench.quantum_us,
        "iperf2_rates": list(profile.iperf2_rates),
        "refine_steps": profile.refine_steps,
        "own_rounds": profile.own_rounds,
        "loss_free_threshold": LOSS_FREE,
        "versions": _versions(),
    }
    results["calibration"] = calibration
    results["skipped"] = skipped
    results["errors"] = errors
    return results


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def _versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in ("aiomcast", "uvloop", "asyncio-dgram", "anyio", "trio"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    git = shutil.which("git")
    if git:
        head = subprocess.run(
            [git, "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            [git, "-C", str(HERE.parent), "status", "--porcelain", "--", "aiomcast"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if head:
            versions["aiomcast_commit"] = head + (" with uncommitted changes" if dirty else "")
    iperf = shutil.which("iperf")
    if iperf:
        result = subprocess.run([iperf, "-v"], capture_output=True, text=True, check=False)
        versions["iperf2"] = (result.stdout + result.stderr).strip()
    return versions


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: children and namespaces are gone
        print(f"\ninterrupted ({stop or 'Ctrl-C'}); nothing is left running", file=sys.stderr)
        sys.exit(130)
