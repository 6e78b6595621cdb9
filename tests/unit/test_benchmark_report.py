"""The benchmark report's targets for the command line's rows (benchmarks/report.py)."""

from __future__ import annotations

import importlib
import pathlib
from types import ModuleType
from typing import Any

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """benchmarks/report.py, imported as the harness imports it."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("report")


def foreign(payload: str, sent: int, received: int, cpu: float, rss: tuple[int, int]) -> Any:
    return {
        "payload": payload,
        "sent": sent,
        "received": received,
        "unnumbered": received if payload != "marked" else 0,
        "gaps": 0,
        "cpu_s_per_million": cpu,
        "rss_kib": {"first": rss[0], "peak": rss[1], "last": rss[1]},
    }


def test_foreign_rows_are_judged_against_the_well_formed(report: ModuleType) -> None:
    rows = [
        foreign("marked", 500_000, 500_000, 2.0, (30_000, 30_100)),
        foreign("random", 500_000, 500_000, 2.2, (30_000, 30_200)),
        foreign("high32", 500_000, 500_000, 2.4, (30_000, 30_000)),
        foreign("marked", 500_000, 500_000, 1.0, (30_000, 30_100)),
        foreign("random", 500_000, 499_000, 2.6, (30_000, 30_000)),
        foreign("high32", 500_000, 500_000, 4.0, (30_000, 40_000)),
    ]
    summary = report.foreign_summary(rows)
    assert summary["marked"]["cpu_us"] == 1.0  # the lower middle of two runs
    assert summary["random"]["cpu_range"] == (2.2, 2.6)
    assert summary["random"]["all_received"] is False
    assert summary["high32"]["growth_mib"] == pytest.approx(10_000 / 1024)
    random_target, high32_target = report._foreign_targets({"foreign": rows})
    assert random_target["met"] is False  # one run lost datagrams, and 2.2x the CPU
    assert high32_target["met"] is False  # memory grew by 9.8 MiB
    good = rows[:3]
    random_ok, high32_ok = report._foreign_targets({"foreign": good})
    assert (random_ok["met"], high32_ok["met"]) == (True, True)
    assert random_ok["value"] == pytest.approx(1.1)


def test_foreign_rows_not_measured(report: ModuleType) -> None:
    found = report._foreign_targets({"foreign": []})
    assert [t["met"] for t in found] == [None, None]
    assert all(t["measured"] == "not measured" for t in found)


def sweep_point(receiver: str, rate: int, loss: float, cpu: float) -> dict[str, Any]:
    return {"receiver": receiver, "rate_target": rate, "loss": loss, "cpu_s_per_million": cpu}


def test_the_cli_receive_targets(report: ModuleType) -> None:
    results: dict[str, Any] = {
        "sweep": [
            sweep_point("aiomcast", 400_000, 0.0, 1.0),
            sweep_point("aiomcast-cli", 400_000, 0.0, 1.15),
            sweep_point("uvloop-protocol", 400_000, 0.2, 2.0),
        ],
        "summary": {
            "aiomcast": {"loss_free_rate": 800_000.0, "lost_at": 1_000_000},
            "aiomcast-cli": {"loss_free_rate": 760_000.0, "lost_at": 800_000},
            "uvloop-protocol": {"loss_free_rate": 400_000.0, "lost_at": 600_000},
        },
    }
    vs_async_for = report._loss_free_target(results, "aiomcast", 0.9, mine="aiomcast-cli")
    vs_uvloop = report._loss_free_target(results, "uvloop-protocol", 1.5, mine="aiomcast-cli")
    assert vs_async_for["value"] == pytest.approx(0.95)
    assert vs_async_for["met"] is True
    assert vs_uvloop["value"] == pytest.approx(1.9)
    assert vs_uvloop["met"] is True
    cpu = report._cli_cpu_target(results)
    assert cpu["value"] == pytest.approx(1.15)
    assert cpu["met"] is True
    assert "1.15 vs 1.00 µs per datagram" in cpu["measured"]
    results["summary"]["aiomcast-cli"]["loss_free_rate"] = 600_000.0
    assert report._loss_free_target(results, "aiomcast", 0.9, mine="aiomcast-cli")["met"] is False
    assert report._cli_cpu_target({"sweep": []})["met"] is None


def pacing_point(rate: int, sender_err: float, own_err: float | None) -> dict[str, Any]:
    return {
        "rate_target": rate,
        "sender_pps": rate * (1 + sender_err / 100),
        "sender_error_pct": sender_err,
        "arrival_error_pct": sender_err,
        "delivered_pct": 100.0,
        "own_error_pct": own_err,
    }


def test_the_pacing_target(report: ModuleType) -> None:
    # Unpaced on its own path the CLI reached 4M/s: up to 3.6M/s it must hold 1 % there.
    senders = [{"sender": "aiomcast-cli-send", "rate": 2e6, "own": {"rate": 4e6}}]
    rows = [
        pacing_point(1_000, 0.01, -0.02),
        pacing_point(100_000, -0.3, 0.5),
        pacing_point(1_000_000, -9.0, 0.2),  # into the lab it fell behind: the lab's limit
        pacing_point(3_000_000, -60.0, -0.4),
    ]
    target = report._pacing_target({"pacing": rows, "senders": senders})
    assert target["met"] is True
    assert target["value"] == 3_000_000
    assert (
        "own path: within 1 % up to 3,000k/s; into the lab's receiver: up to 100k/s"
        in (target["measured"])
    )
    assert "into the lab at 1M/s it reached 910k/s" in target["note"]
    rows[1]["own_error_pct"] = 1.5
    assert report._pacing_target({"pacing": rows, "senders": senders})["met"] is False
    rows[1]["own_error_pct"] = None  # not measured on its own path
    assert report._pacing_target({"pacing": rows, "senders": senders})["met"] is False
    rows[1]["own_error_pct"] = 0.1
    rows[0]["arrival_error_pct"] = 2.0  # the receiver kept up, and saw another rate
    assert report._pacing_target({"pacing": rows, "senders": senders})["met"] is False
    rows[0]["delivered_pct"] = 80.0  # it did not keep up: no cross-check
    assert report._pacing_target({"pacing": rows, "senders": senders})["met"] is True
    assert report._pacing_target({"pacing": [], "senders": senders})["met"] is None
