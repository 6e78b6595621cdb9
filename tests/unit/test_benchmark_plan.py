"""The benchmark harness's pure planning (benchmarks/plan.py), from tables.

These functions decide what a run measures and how a sweep is read: which rate counts as
loss-free, where a receiver's loss-free rate is refined, in which order the latency pair
runs. They use no process or socket, so they are checked here without running a benchmark.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def plan(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """benchmarks/plan.py, imported as the harness imports it (beside report.py)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("plan")


def point(rate: int, loss: float, sender_rate: float = 0.0) -> dict[str, Any]:
    return {"rate_target": rate, "loss": loss, "sender_rate": sender_rate or rate}


CLEAN, LOST = 0.0, 0.05
# (points, loss_free_rate, clean_prefix)
SWEEPS: list[tuple[list[dict[str, Any]], float | None, tuple[int | None, int | None]]] = [
    ([point(100_000, CLEAN), point(200_000, CLEAN)], 200_000.0, (200_000, None)),
    # A lucky point above a rate that lost does not count.
    (
        [point(100_000, CLEAN), point(200_000, LOST), point(300_000, CLEAN)],
        100_000.0,
        (100_000, 200_000),
    ),
    ([point(100_000, LOST), point(200_000, CLEAN)], None, (None, 100_000)),
    # Just under the threshold (0.1 %) is loss-free; at it, it is not.
    ([point(100_000, 0.00099), point(200_000, 0.001)], 100_000.0, (100_000, 200_000)),
    # No paced point lost: the unpaced point counts at the rate it reached, if it lost nothing.
    ([point(100_000, CLEAN), point(0, CLEAN, 1_450_000)], 1_450_000.0, (100_000, None)),
    ([point(100_000, CLEAN), point(0, LOST, 1_450_000)], 100_000.0, (100_000, None)),
    # A paced loss: the unpaced point does not count at all.
    ([point(100_000, LOST), point(0, CLEAN, 1_450_000)], None, (None, 100_000)),
    ([point(0, CLEAN, 900_000)], 900_000.0, (None, None)),
    ([], None, (None, None)),
]


@pytest.mark.parametrize(("points", "rate", "prefix"), SWEEPS)
def test_reading_a_sweep(
    plan: ModuleType,
    points: list[dict[str, Any]],
    rate: float | None,
    prefix: tuple[int | None, int | None],
) -> None:
    shuffled = list(reversed(points))  # the order the points were measured in does not matter
    assert plan.clean_prefix(shuffled) == prefix
    assert plan.loss_free_rate(shuffled) == rate


@pytest.mark.parametrize(
    ("points", "bracket", "refined"),
    [
        ([point(100_000, CLEAN), point(200_000, CLEAN)], None, None),  # nothing lost
        ([point(100_000, CLEAN), point(200_000, LOST)], (100_000, 200_000), 150_000),
        ([point(100_000, CLEAN), point(105_000, LOST)], None, None),  # one grain apart
        ([point(100_000, CLEAN), point(115_000, LOST)], (100_000, 115_000), 110_000),
        ([point(50_000, LOST)], (0, 50_000), 25_000),  # lost from the first rate on
        ([point(100_000, CLEAN), point(0, LOST)], None, None),  # unpaced points do not count
    ],
)
def test_refining_between_the_last_clean_and_the_first_lost_rate(
    plan: ModuleType,
    points: list[dict[str, Any]],
    bracket: tuple[int, int] | None,
    refined: int | None,
) -> None:
    assert plan.bracket(points) == bracket
    assert plan.refine_rate(points) == refined
    if refined is not None:
        assert refined % plan.REFINE_GRAIN == 0


def test_refining_converges(plan: ModuleType) -> None:
    # A receiver that loses above 437k/s: each refine step halves the bracket until it is one
    # grain wide, and never offers a rate twice.
    points = [point(r, CLEAN if r <= 437_000 else LOST) for r in (400_000, 600_000)]
    offered = []
    while (rate := plan.refine_rate(points)) is not None:
        assert rate not in offered
        offered.append(rate)
        points.append(point(rate, CLEAN if rate <= 437_000 else LOST))
    low, lost = plan.clean_prefix(points)
    assert low <= 437_000 < lost
    assert lost - low <= plan.REFINE_GRAIN
    assert len(offered) <= 6


def test_the_plan_of_a_quick_run(plan: ModuleType) -> None:
    profile = plan.QUICK
    receivers = ["aiomcast", "uvloop-protocol", "c-recvmmsg"]
    senders = ["c-gso", "aiomcast-send"]
    steps = plan.plan(profile, receivers, senders, [100_000, 200_000], iperf2=True)
    kinds = [s.kind for s in steps]
    # Every kind in one block, in this order.
    order = ["sweep", "refine", "iperf2-load", "latency", "memory", "sender", "own"]
    assert [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k] == order
    assert kinds.count("sweep") == 2 * len(receivers)
    assert kinds.count("refine") == profile.refine_steps * len(receivers)
    assert kinds.count("iperf2-load") == len(profile.iperf2_rates) * len(receivers)
    assert kinds.count("memory") == 1
    assert kinds.count("sender") == len(senders)
    assert kinds.count("own") == (profile.own_rounds - 1) * len(senders)
    target = [s for s in steps if s.kind == "latency" and s.rate == plan.LATENCY_TARGET_RATE]
    # The target's pair twice a round, everyone else once.
    assert len(target) == profile.latency_rounds * (len(receivers) + 2)
    assert all(s.seconds > 0 and s.weight > s.seconds for s in steps)
    no_memory = plan.plan(profile, ["uvloop-protocol"], [], [100_000], iperf2=False)
    assert {s.kind for s in no_memory} == {"sweep", "refine", "latency"}


def test_latency_rounds_alternate_the_pair(plan: ModuleType) -> None:
    receivers = ["stdlib", "aiomcast", "uvloop-protocol", "c-recvmmsg"]
    first, second = plan.latency_round(receivers, 0), plan.latency_round(receivers, 1)
    pair = list(plan.LATENCY_PAIR)
    assert first == [*pair, "stdlib", "c-recvmmsg", *pair[::-1]]
    assert second == [*pair[::-1], "stdlib", "c-recvmmsg", *pair]
    assert plan.latency_round(["stdlib", "aiomcast"], 0) == ["stdlib", "aiomcast"]


@pytest.mark.parametrize(
    ("text", "rates"),
    [("50k,100k,1M", (50_000, 100_000, 1_000_000)), ("1.5M, 200k,200k", (200_000, 1_500_000))],
)
def test_rates_on_the_command_line(plan: ModuleType, text: str, rates: tuple[int, ...]) -> None:
    assert plan.parse_rates(text) == rates
    assert [plan.rate_label(r) for r in (0, 50_000, 1_000_000, 1_500_000)] == [
        "max",
        "50k/s",
        "1M/s",
        "1500k/s",
    ]


@pytest.mark.parametrize(("text", "words"), [("fast", "'fast' is not a rate"), ("0", "above 0")])
def test_bad_rates_are_refused_by_name(plan: ModuleType, text: str, words: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=words):
        plan.parse_rates(text)


def test_the_command_line_rows(plan: ModuleType) -> None:
    # aiomcast listen --stats sweeps like every receiver, runs no latency point (mcsend's
    # seq payloads carry no header it reads send times from), and adds the foreign-payload
    # rounds after the memory run; aiomcast send is one more sender.
    profile = plan.QUICK
    receivers = ["aiomcast", "uvloop-protocol", plan.CLI_RECEIVER]
    steps = plan.plan(profile, receivers, [plan.CLI_SENDER], [100_000], iperf2=True)
    kinds = [s.kind for s in steps]
    order = ["sweep", "refine", "iperf2-load", "latency", "memory", "foreign", "sender"]
    order += ["pacing", "own"]
    assert [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k] == order
    assert plan.CLI_RECEIVER in {s.name for s in steps if s.kind == "sweep"}
    assert plan.CLI_RECEIVER in {s.name for s in steps if s.kind == "iperf2-load"}
    assert plan.CLI_RECEIVER not in {s.name for s in steps if s.kind == "latency"}
    foreign = [s for s in steps if s.kind == "foreign"]
    assert [s.name for s in foreign] == list(plan.FOREIGN_PAYLOADS) * profile.foreign_rounds
    assert {(s.rate, s.seconds) for s in foreign} == {(100_000, 5.0)}
    assert foreign[0].label == "aiomcast listen, marked payloads @ 100k/s"
    pacing = [s for s in steps if s.kind == "pacing"]
    assert [s.rate for s in pacing] == list(plan.PACING_RATES)
    assert pacing[0].label == "aiomcast send pacing @ 1k/s"
    without = plan.plan(profile, ["aiomcast"], ["aiomcast-send"], [100_000], iperf2=False)
    assert not {"foreign", "pacing"} & {s.kind for s in without}
