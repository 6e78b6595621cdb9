"""The benchmark's plan, pure: what to measure in which order, and how to read a sweep.

No process, socket or clock here: ``run.py`` carries the plan out, ``report.py`` turns the
numbers into targets and tables, and tests/unit/test_benchmark_plan.py checks these functions
from tables.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Final

import report

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
    "aiomcast-cli",
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
    "aiomcast-cli-send",
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
#: The command line's rows: ``aiomcast listen --stats`` and ``aiomcast send --rate 0``.
CLI_RECEIVER: Final = "aiomcast-cli"
CLI_SENDER: Final = "aiomcast-cli-send"
#: Receivers left out of the latency points: the CLI reads send times from aiomcast's own
#: header (send --timestamps) and iperf2's, not from mcsend's seq payloads.
NO_LATENCY: Final = frozenset({CLI_RECEIVER})
#: The foreign-payload rows of the CLI: mcsend's payload formats, at this rate and length.
FOREIGN_PAYLOADS: Final = ("marked", "random", "high32")
FOREIGN_RATE: Final = 100_000
FOREIGN_SECONDS: Final = 5.0
#: The rates at which `aiomcast send`'s pacing is measured (datagrams/s), each this long:
#: up to past what the command reaches unpaced here (about 2M/s into the lab), so that the
#: table shows where the machine's limit is.
PACING_RATES: Final = (
    *(1_000, 10_000, 100_000, 200_000, 400_000, 700_000),
    *(1_000_000, 1_500_000, 2_000_000, 3_000_000),
)
PACING_SECONDS: Final = 2.0

#: The C senders are measured first, as the calibration that picks the sweep's load.
C_SENDERS: Final = ["c-sendmmsg", "c-gso"]
SENDERS: Final = [*C_SENDERS, "iperf2", *PYTHON_SENDERS]

#: The latency point of the target (p50 at 1k/s), measured in rounds.
LATENCY_TARGET_RATE: Final = report.LATENCY_TARGET_RATE

#: Offered rates (datagrams/s). Those above the load's unpaced rate here (plus 10 %) are left
#: out at run time: the top ones are there so that a receiver loss-free at 1M/s is measured up
#: to what the sender reaches (1.2-1.6M/s on this machine), not capped at 1M/s.
SWEEP_RATES: Final = (
    *(50_000, 100_000, 200_000, 400_000, 600_000, 700_000, 800_000, 1_000_000),
    *(1_200_000, 1_400_000, 1_600_000),
)


@dataclasses.dataclass(frozen=True)
class Profile:
    """How much to measure: the full run or --quick."""

    rates: tuple[int, ...]
    seconds: float
    iperf2_rates: tuple[int, ...]
    latency_points: tuple[tuple[int, float], ...]  # (rate, seconds)
    #: Rounds of the 1k/s latency point, every receiver once per round: one p50 moves by tens
    #: of µs between runs here (how fast an idle vCPU wakes), so the report takes the median.
    latency_rounds: int
    memory_seconds: float
    sender_seconds: float
    #: Rounds of every sender on its own path (the first with its run into the lab), every
    #: sender once per round: one 1 s point moves by 5-10 % between runs here, as much as the
    #: margin of the send target, so the report takes each sender's median round.
    own_rounds: int
    unpaced_point: bool  # an unpaced "max" point even when the load reaches every rate
    #: Bisection steps after the sweep, between a receiver's last loss-free rate and the
    #: first rate it lost at: its loss-free rate to within (bracket / 2**steps).
    refine_steps: int
    #: Rounds of the CLI's foreign-payload rows, every payload once per round (the report
    #: takes each payload's median CPU per datagram).
    foreign_rounds: int = 3


FULL: Final = Profile(
    rates=SWEEP_RATES,
    seconds=2.0,
    iperf2_rates=(50_000, 100_000, 200_000),
    latency_points=((1_000, 3.0), (100_000, 2.0)),
    latency_rounds=7,
    memory_seconds=10.0,
    sender_seconds=2.0,
    own_rounds=3,
    unpaced_point=True,
    refine_steps=4,
)
QUICK: Final = Profile(
    rates=SWEEP_RATES,
    seconds=1.0,
    iperf2_rates=(100_000,),
    latency_points=((1_000, 1.0), (100_000, 1.0)),
    latency_rounds=5,
    memory_seconds=10.0,
    sender_seconds=1.0,
    own_rounds=3,
    unpaced_point=False,
    refine_steps=3,
    foreign_rounds=2,
)


def clean_prefix(points: list[dict[str, Any]]) -> tuple[int | None, int | None]:
    """(the highest paced rate that, like every lower one, lost < 0.1 %; the first that lost).

    Either is None where there is none. Unpaced points (rate 0) do not count.
    """
    best = None
    for rate, clean in sorted(
        (int(p["rate_target"]), p["loss"] < LOSS_FREE) for p in points if p["rate_target"]
    ):
        if not clean:
            return best, rate
        best = rate
    return best, None


def loss_free_rate(points: list[dict[str, Any]]) -> float | None:
    """The highest offered rate that, like every lower one, lost less than 0.1 %.

    A lucky point above a rate that lost does not count. When no paced point lost, the
    unpaced point (if it lost nothing too) counts at the rate it reached.
    """
    paced, lost = clean_prefix(points)
    best = None if paced is None else float(paced)
    if lost is not None:
        return best
    unpaced = [p for p in points if not p["rate_target"]]
    if unpaced and all(p["loss"] < LOSS_FREE for p in unpaced):
        reached = max(float(p["sender_rate"]) for p in unpaced)
        best = reached if best is None else max(best, reached)
    return best


@dataclasses.dataclass(frozen=True)
class Step:
    """One measurement of the plan; ``seconds`` is how long its load runs."""

    #: "sweep", "refine", "iperf2-load", "latency", "memory", "foreign", "sender", "pacing"
    #: or "own"
    kind: str
    name: str  # the receiver or sender
    rate: int
    seconds: float

    @property
    def label(self) -> str:
        """What the progress bar shows while the step runs."""
        if self.kind in ("sender", "memory"):
            return f"{self.kind} {self.name}"
        if self.kind == "foreign":
            return f"aiomcast listen, {self.name} payloads @ {rate_label(self.rate)}"
        if self.kind == "pacing":
            return f"aiomcast send pacing @ {rate_label(self.rate)}"
        if self.kind == "own":
            return f"sender {self.name}, own path"
        return f"{self.kind} {self.name} @ {rate_label(self.rate)}"

    @property
    def weight(self) -> float:
        """Its expected share of the run time: the load plus start-up and the idle tail."""
        if self.kind == "sender":  # into the lab, then its own path (measure_sender)
            return 2 * (self.seconds + 1.5)
        return self.seconds + 1.5


def plan(
    profile: Profile, receivers: list[str], senders: list[str], rates: list[int], iperf2: bool
) -> list[Step]:
    """Every measurement to make, in order (a refine step picks its rate when it runs)."""
    steps = [Step("sweep", r, rate, profile.seconds) for r in receivers for rate in rates]
    steps += [
        Step("refine", r, 0, profile.seconds)
        for _ in range(profile.refine_steps)
        for r in receivers
    ]
    if iperf2:
        steps += [
            Step("iperf2-load", r, rate, profile.seconds)
            for r in receivers
            for rate in profile.iperf2_rates
        ]
    timed = [r for r in receivers if r not in NO_LATENCY]
    for rate, seconds in profile.latency_points:
        if rate == LATENCY_TARGET_RATE:
            for index in range(profile.latency_rounds):
                steps += [Step("latency", r, rate, seconds) for r in latency_round(timed, index)]
        else:
            steps += [Step("latency", r, rate, seconds) for r in timed]
    if "aiomcast" in receivers:
        steps.append(Step("memory", "aiomcast", 0, profile.memory_seconds))
    if CLI_RECEIVER in receivers:
        steps += [
            Step("foreign", payload, FOREIGN_RATE, FOREIGN_SECONDS)
            for _ in range(profile.foreign_rounds)
            for payload in FOREIGN_PAYLOADS
        ]
    steps += [Step("sender", s, 0, profile.sender_seconds) for s in senders]
    if CLI_SENDER in senders:
        steps += [Step("pacing", CLI_SENDER, rate, PACING_SECONDS) for rate in PACING_RATES]
    steps += [
        Step("own", s, 0, profile.sender_seconds)
        for _ in range(profile.own_rounds - 1)
        for s in senders
    ]
    return steps


#: The two receivers the latency target compares (report.py's names).
LATENCY_PAIR: Final = (report.PER_DATAGRAM, report.UVLOOP)


def latency_round(receivers: list[str], index: int) -> list[str]:
    """The order of round ``index`` of the 1k/s latency point.

    One p50 here moves by tens of µs from one receiver's run to the next (how soon the idle
    vCPU wakes), more than the difference the target is about. So the target's pair runs
    twice a round, back to back at its start and again at its end, the first of the two
    alternating between rounds: each gets twice the samples, taken right next to the other's.
    """
    pair = [r for r in LATENCY_PAIR if r in receivers]
    rest = [r for r in receivers if r not in pair]
    if len(pair) < 2:
        return receivers
    first = pair if index % 2 == 0 else pair[::-1]
    return [*first, *rest, *first[::-1]]


#: Refined rates are multiples of this (datagrams/s).
REFINE_GRAIN: Final = 5_000


def bracket(points: list[dict[str, Any]]) -> tuple[int, int] | None:
    """(highest rate loss-free with every lower rate, lowest rate lost at above it), or None.

    None when there is nothing to refine: no paced point lost (the receiver is faster than
    the offered rates), or the two are one grain apart. Unpaced points (rate 0) do not count.
    """
    low, lost = clean_prefix(points)
    low = low or 0
    return (low, lost) if lost is not None and lost - low > REFINE_GRAIN else None


def refine_rate(points: list[dict[str, Any]]) -> int | None:
    """The next rate to try for a receiver: the middle of its bracket, or None (done)."""
    found = bracket(points)
    if found is None:
        return None
    low, high = found
    middle = round((low + high) / 2 / REFINE_GRAIN) * REFINE_GRAIN
    return middle if low < middle < high else None


def parse_rates(text: str) -> tuple[int, ...]:
    """``50k,100k,1M`` -> (50000, 100000, 1000000): datagrams per second, each above 0."""
    rates = []
    for word in text.split(","):
        word = word.strip().lower()
        scale = {"k": 1_000, "m": 1_000_000}.get(word[-1:], 1)
        try:
            rate = int(float(word.rstrip("km")) * scale)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{word!r} is not a rate like 50k or 1M") from None
        if rate <= 0:
            raise argparse.ArgumentTypeError(f"rate {word!r} must be above 0")
        rates.append(rate)
    return tuple(sorted(set(rates)))


def rate_label(rate: int) -> str:
    """50k/s, 1M/s, or "max" for the unpaced point."""
    if rate == 0:
        return "max"
    if rate >= 1_000_000 and rate % 1_000_000 == 0:
        return f"{rate // 1_000_000}M/s"
    return f"{rate / 1000:g}k/s"
