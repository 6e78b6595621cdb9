"""One measurement: a receiver at an offered rate, the memory point, a sender."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from typing import Any, Final

from children import HERE, BenchError, Child
from netsetup import FIRST_PORT, GROUP, Setup
from plan import CLI_SENDER, TRIO_ROWS

from aiomcast.testing import lab

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

    def python_sender_argv(
        self, sender: str, port: int, count: int, seconds: float, *extra: str
    ) -> list[str]:
        """The command line of a Python sender (senders.py, trio_rows.py) in the sending side."""
        side = self.setup.sender
        argv = [sys.executable, str(HERE / python_script(sender, "senders.py")), sender]
        argv += ["--group", GROUP, "--port", str(port), "--interface", side.interface]
        argv += ["--ifaddr", side.address, "--count", str(count), "--max-seconds", f"{seconds:g}"]
        return side.command(*argv, *extra)

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


def measure_foreign(bench: Bench, payload: str, rate: int, seconds: float) -> dict[str, Any]:
    """``aiomcast listen --stats`` under ``rate``/s of mcsend's ``payload`` for ``seconds``.

    The payloads (plan.FOREIGN_PAYLOADS, read with the CLI's default --format auto):
    aiomcast's own timestamped header (the well-formed reference), random bytes, and a
    counter in the high 32 bits of the first 8 bytes (how iperf2's and RTP's headers look
    read as one 64-bit number).

    What it must show: every datagram counted as received, the CPU per datagram near the
    well-formed row's, the resident memory flat (sampled every 0.5 s, as measure_memory).
    """
    port = bench.next_port()
    count = int(rate * seconds)
    samples: list[tuple[float, int]] = []
    with bench.start_receiver("aiomcast-cli", port, count, "auto", False) as rx:
        base, backlog = rx.cpu_now(), backlog_drops()
        argv = bench.mcsend_argv(port, rate, count, payload, seconds * 1.25 + 0.5)
        with Child(argv, "mcsend") as tx:
            start = time.monotonic()
            while tx.running():
                rss = rx.rss_kib()
                if rss is not None:
                    samples.append((round(time.monotonic() - start, 3), rss))
                if time.monotonic() - start > seconds * 1.25 + 10:
                    raise BenchError("mcsend did not finish the foreign-payload run")
                time.sleep(0.5)
            sender = tx.json_result(5)
        result = rx.json_result(bench.idle + 30)
        assert rx.cpu_total is not None
        cpu = rx.cpu_total - base
    result["backlog_dropped"] = backlog_drops() - backlog
    sent, received = int(sender["sent"]), int(result["received"])
    under_load = [rss for t, rss in samples if t >= MEMORY_WARMUP_S] or [r for _, r in samples]
    return {
        "payload": payload,
        "rate_target": rate,
        "seconds": seconds,
        "sent": sent,
        "sender_rate": sender["rate"],
        "received": received,
        "received_pct": 100.0 * received / sent if sent else 0.0,
        "unnumbered": result["unnumbered"],
        "gaps": result["gaps"],
        "cpu_s": cpu,
        "cpu_s_per_million": cpu / received * 1e6 if received else None,
        "samples": samples,
        "rss_kib": {
            "first": under_load[0] if under_load else None,
            "peak": max(under_load) if under_load else None,
            "last": under_load[-1] if under_load else None,
        },
        "receiver_result": result,
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


def _paced_send(bench: Bench, port: int, rate: int, seconds: float) -> dict[str, Any]:
    """Run ``aiomcast send --rate RATE --count RATE*seconds`` to ``port``; its JSON line."""
    argv = bench.python_sender_argv(
        CLI_SENDER, port, int(rate * seconds), seconds * 3 + 1, "--rate", str(rate)
    )
    with Child(argv, "aiomcast send") as tx:
        return tx.json_result(seconds * 3 + 30)


def measure_pacing(bench: Bench, rate: int, seconds: float) -> dict[str, Any]:
    """``aiomcast send --rate RATE`` for ``seconds``: the rate achieved, two ways.

    Into the lab, to the C receiver with RPS on the receiving veth (as the senders are): the
    sender's rate (datagrams over its elapsed time, which ends when the last datagram's slot
    does) and the arrivals' (n arrivals span n - 1 slots: n - 1 over the time from the first
    to the last). Then on its own path (the receiving end down, as the senders' own-path
    rounds): the sender's rate without the receiving kernel's work interrupting its CPU.
    """
    port, count = bench.next_port(), int(rate * seconds)
    with bench.setup.rps(True), bench.start_receiver("c-recvmmsg", port, count, "seq", False) as rx:
        sent = _paced_send(bench, port, rate, seconds)
        received = rx.json_result(bench.idle + 30)
    own: dict[str, Any] | None = None
    with bench.setup.peer_down() as down:
        if down:
            own = _paced_send(bench, bench.next_port(), rate, seconds)
    stats = sent["cli_stats"]
    unique, span = int(received["unique"]), float(received["span_s"])
    arrival = (unique - 1) / span if unique > 1 and span > 0 else None
    own_pps = None if own is None else float(own["cli_stats"]["pps"])
    return {
        "rate_target": rate,
        "seconds": seconds,
        "sent": int(stats["sent"]),
        "errors": int(stats["errors"]),
        "sender_pps": float(stats["pps"]),
        "sender_error_pct": 100.0 * (float(stats["pps"]) / rate - 1),
        "arrival_pps": arrival,
        "arrival_error_pct": None if arrival is None else 100.0 * (arrival / rate - 1),
        "delivered_pct": 100.0 * unique / count if count else 0.0,
        "cpu_s": sent["cpu_s"],
        "own_pps": own_pps,
        "own_error_pct": None if own_pps is None else 100.0 * (own_pps / rate - 1),
        "own_cpu_s": None if own is None else own["cpu_s"],
        "sender_result": sent,
        "own_result": own,
        "receiver_result": received,
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
    with Child(bench.python_sender_argv(sender, port, count, seconds), sender) as tx:
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
