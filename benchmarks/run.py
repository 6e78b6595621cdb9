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
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Final

import report
from children import HERE, BenchError
from measure import (
    C_GSO_SEGMENTS,
    LOAD_QUANTUM_US,
    MEMORY_OVERLOAD,
    MEMORY_WORK_US,
    Bench,
    Skipped,
    add_own_round,
    measure_foreign,
    measure_memory,
    measure_pacing,
    measure_receiver,
    measure_sender,
)
from netsetup import GROUP, traffic_setup
from plan import (
    C_SENDERS,
    FULL,
    QUICK,
    RECEIVERS,
    SENDERS,
    TRIO_ROWS,
    Profile,
    clean_prefix,
    loss_free_rate,
    parse_rates,
    plan,
    rate_label,
    refine_rate,
)

#: Loss below this fraction counts as loss-free.
LOSS_FREE: Final = report.LOSS_FREE


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
    from aiomcast import _native

    if _native.BatchReader is None:
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
        "foreign": [],
        "pacing": [],
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
            elif step.kind == "foreign":
                results["foreign"].append(
                    measure_foreign(bench, step.name, step.rate, step.seconds)
                )
            elif step.kind == "pacing":
                results["pacing"].append(measure_pacing(bench, step.rate, step.seconds))
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
