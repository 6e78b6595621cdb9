"""Output of the aiomcast benchmarks: results.json (every raw number), results.md, delivered.png,
summary.png (the README's chart).

run.py calls ``write_all``; ``python benchmarks/report.py DIR`` redraws the table and the plot
from DIR/results.json without measuring again.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

#: Loss below this fraction counts as loss-free (run.py uses the same).
LOSS_FREE = 0.001
#: The rate of the latency target; run.py measures it in several rounds.
LATENCY_TARGET_RATE = 1_000


def write_all(results: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write the JSON, the markdown and the plot into ``out``; return their paths.

    The targets are computed here (``results["targets"]``) from the same run's numbers,
    so ``report.py DIR`` recomputes them too.
    """
    results["targets"] = targets(results)
    paths = {"json": out / "results.json", "markdown": out / "results.md"}
    paths["json"].write_text(json.dumps(results, indent=1) + "\n")
    plot_path = out / "delivered.png"
    plot_note = plot(results, plot_path)
    if plot_note is None:
        paths["plot"] = plot_path
        paths["summary"] = out / "summary.png"
        summary_plot(results, paths["summary"])
    paths["markdown"].write_text(markdown(results, plot_note))
    return paths


# -- targets, each a ratio of two numbers of this run ----------------------------------

#: Receiver and sender names of the rows the targets compare.
PER_DATAGRAM, BATCHES, C_RECEIVER = "aiomcast", "aiomcast-batches", "c-recvmmsg"
GRO = "aiomcast-gro"
#: The "met" of a row shown for comparison only (not a target).
INFO: Final = "info"
#: The most a per-datagram Python consumer can take here: the C batch reader and the same
#: sink in a blocking loop, no event loop (receivers.py's floor_receiver).
FLOOR = "floor"
UVLOOP, STDLIB = "uvloop-protocol", "asyncio-protocol"
GSO_SENDER = "aiomcast-send-many"
NO_GSO_SENDER = "aiomcast-send-many-no-gso"
SEND_SENDER = "aiomcast-send"
UVLOOP_SENDTO, C_SENDMMSG = "uvloop-sendto", "c-sendmmsg"
#: The command line's rows: `aiomcast listen --stats` and `aiomcast send --rate 0`.
CLI_RECEIVER, CLI_SENDER = "aiomcast-cli", "aiomcast-cli-send"
#: The sweep's rate at which the CLI's CPU per datagram is compared with `async for`'s.
CLI_CPU_RATE: Final = 400_000


def _target(
    name: str,
    want: str,
    measured: str,
    value: float | None,
    met: bool | None,
    note: str = "",
) -> dict[str, Any]:
    return {
        "target": name,
        "wanted": want,
        "measured": measured,
        "value": value,
        "met": met,
        "note": note,
    }


def _loss_free_of(results: dict[str, Any], receiver: str) -> tuple[float | None, bool]:
    """(loss-free rate, whether it is only a lower bound: even the unpaced point lost nothing)."""
    best = results.get("summary", {}).get(receiver, {}).get("loss_free_rate")
    unpaced = _by_receiver(results["sweep"]).get(receiver, {}).get(0)
    return best, unpaced is not None and unpaced["loss"] < LOSS_FREE


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom == 0:
        return None
    return top / bottom


#: How the targets name the receivers they compare.
RECEIVER_LABELS: Final = {PER_DATAGRAM: "`async for`", CLI_RECEIVER: "`aiomcast listen --stats`"}


def _loss_free_target(
    results: dict[str, Any], peer: str, factor: float, mine: str = PER_DATAGRAM
) -> dict[str, Any]:
    """``mine``'s loss-free rate against ``peer``'s, as a ratio (``mine``: `async for`)."""
    label = RECEIVER_LABELS.get(mine, mine)
    name = f"loss-free receive rate, {label} vs {RECEIVER_LABELS.get(peer, peer)}"
    summary = results.get("summary", {})
    if mine not in summary or peer not in summary:
        return _target(name, f">= {factor:g}x", "not measured", None, None)
    (rate, bound), (theirs, theirs_bound) = (
        _loss_free_of(results, mine),
        _loss_free_of(results, peer),
    )
    measured = f"{_rate_or_none(rate)} vs {_rate_or_none(theirs)}"
    ratio = _ratio(rate, theirs)
    if rate is None:
        return _target(
            name, f">= {factor:g}x", measured + f" ({mine} lost at every rate)", None, False
        )
    if theirs is None:
        note = f"{peer} lost at every rate, so the ratio is unbounded"
        return _target(name, f">= {factor:g}x", measured, None, True, note)
    mine_lost, theirs_lost = summary[mine], summary[peer]
    note = (
        f"each lost at the next rate tried: {_rate_or_none(mine_lost.get('lost_at'))} and "
        f"{_rate_or_none(theirs_lost.get('lost_at'))}"
    )
    if mine_lost.get("lost_at") is None:
        note += f" ({mine} lost at no rate offered: its rate and the ratio are lower bounds)"
    if bound:
        note = f"{mine} lost nothing even unpaced: the ratio is a lower bound (sender-bound)"
    if theirs_bound:
        note = f"{peer} lost nothing even unpaced: the run cannot tell them apart"
    floor, _ = _loss_free_of(results, FLOOR)
    floor_ratio = _ratio(floor, theirs)
    if mine == PER_DATAGRAM and floor is not None and floor_ratio is not None:
        floor_capped = summary.get(FLOOR, {}).get("lost_at") is None
        if floor_capped:
            why = " (it lost at no rate offered: a lower bound)"
        elif floor_ratio < factor:
            why = " (so no per-datagram Python receiver could show the ratio)"
        else:
            why = ""
        note += (
            f"; the Python floor (C reader and the same sink, no event loop) reached "
            f"{_rate_or_none(floor)} = {floor_ratio:.2f}x {peer}{why}"
            f", aiomcast {100 * rate / floor:.0f} % of the floor"
        )
    met = ratio is not None and ratio >= factor
    return _target(name, f">= {factor:g}x", measured + f" = {ratio:.2f}x", ratio, met, note)


def _rate_or_none(rate: float | None) -> str:
    return "none" if rate is None else f"{rate / 1e3:,.0f}k/s"


def batch_vs_c(results: dict[str, Any]) -> list[dict[str, Any]]:
    """aiomcast's batch iterator against the C recvmmsg receiver at each offered rate."""
    table = _by_receiver(results["sweep"])
    mine, ref = table.get(BATCHES, {}), table.get(C_RECEIVER, {})
    rows = []
    for rate in results["meta"]["rates"]:
        if rate not in mine or rate not in ref:
            continue
        c_free = ref[rate]["loss"] < LOSS_FREE
        rows.append(
            {
                "rate_target": rate,
                "reached": ref[rate]["sender_rate"],
                "c_delivered_pct": ref[rate]["delivered_pct"],
                "batches_delivered_pct": mine[rate]["delivered_pct"],
                "c_loss_free": c_free,
                "batches_loss_free": mine[rate]["loss"] < LOSS_FREE,
                "ok": (not c_free) or mine[rate]["loss"] < LOSS_FREE,
            }
        )
    return rows


def _batches_target(results: dict[str, Any]) -> dict[str, Any]:
    rows = batch_vs_c(results)
    name = "`batches()`: no loss wherever the C recvmmsg receiver has none"
    if not rows:
        return _target(name, "every such rate", "not measured", None, None)
    checked = [r for r in rows if r["c_loss_free"]]
    failed = [rate_label(r["rate_target"]) for r in checked if not r["batches_loss_free"]]
    top = max((r["reached"] for r in checked), default=None)
    measured = (
        f"loss-free at {len(checked) - len(failed)} of the {len(checked)} rates where C is"
        + (f" (up to {top / 1e3:,.0f}k/s)" if top else "")
        + (f"; lost at {', '.join(failed)}" if failed else "")
    )
    # The same rates for the floor (no event loop: what any Python consumer could do) and
    # for the batch iterator with UDP_GRO (the kernel coalesces; aiomcast splits).
    table = _by_receiver(results["sweep"])
    notes = []
    for receiver, label in ((FLOOR, "the floor"), (GRO, "`gro=True` batches")):
        points = table.get(receiver, {})
        rates = [r["rate_target"] for r in checked if r["rate_target"] in points]
        if rates:
            lost = [rate_label(r) for r in rates if points[r]["loss"] >= LOSS_FREE]
            notes.append(f"{label} lost at {', '.join(lost) if lost else 'none of them'}")
    return _target(
        name, "every such rate", measured, None, bool(checked) and not failed, "; ".join(notes)
    )


def _sender_rate(results: dict[str, Any], sender: str, *, own: bool = True) -> float | None:
    """The datagrams/s ``sender`` reached: on its own path where measured (``own``), else
    into the lab."""
    for row in results["senders"]:
        if row["sender"] == sender:
            if own and row.get("own"):
                return float(row["own"]["rate"])
            return float(row["rate"])
    return None


def _own_measured(results: dict[str, Any]) -> bool:
    return any(row.get("own") for row in results["senders"])


def _round_rates(row: dict[str, Any]) -> list[float]:
    """The datagrams/s of each of a sender row's rounds on its own path, in the order run."""
    return [float(own["rate"]) for own in row.get("own_rounds") or []]


def _own_rounds(results: dict[str, Any], sender: str) -> list[float]:
    """``_round_rates`` of ``sender``'s row ([] when it did not run)."""
    for row in results["senders"]:
        if row["sender"] == sender:
            return _round_rates(row)
    return []


def _own_spread(results: dict[str, Any], sender: str) -> str:
    """ "own path: median of N rounds (low-high)" when it ran more than once, else ""."""
    rates = _own_rounds(results, sender)
    if len(rates) < 2:
        return ""
    return (
        f"own path: median of {len(rates)} rounds "
        f"({_rate_or_none(min(rates))}-{_rate_or_none(max(rates))})"
    )


def _round_ratios(results: dict[str, Any], sender: str, other: str) -> str:
    """ "medians of N rounds; per round: 1.52x, ..." when both ran more than once, else ""."""
    mine, theirs = _own_rounds(results, sender), _own_rounds(results, other)
    if len(mine) < 2 or len(mine) != len(theirs):
        return ""
    ratios = ", ".join(f"{a / b:.2f}x" for a, b in zip(mine, theirs, strict=True) if b)
    return f"own path: medians of {len(mine)} rounds; round by round {ratios}"


def _sender_ratio_target(
    results: dict[str, Any], sender: str, label: str, factor: float
) -> dict[str, Any]:
    mine, theirs = _sender_rate(results, sender), _sender_rate(results, UVLOOP_SENDTO)
    ratio = _ratio(mine, theirs)
    measured = f"{_rate_or_none(mine)} vs {_rate_or_none(theirs)}" + (
        f" = {ratio:.2f}x" if ratio is not None else ""
    )
    notes = [_round_ratios(results, sender, UVLOOP_SENDTO)]
    c_ratio = _ratio(_sender_rate(results, C_SENDMMSG), theirs)
    if c_ratio is not None:
        notes.append(f"C sendmmsg: {c_ratio:.2f}x")
    if _own_measured(results):
        lab_mine = _sender_rate(results, sender, own=False)
        lab_theirs = _sender_rate(results, UVLOOP_SENDTO, own=False)
        lab_ratio = _ratio(lab_mine, lab_theirs)
        notes.append(
            f"into the lab's receiver: {_rate_or_none(lab_mine)} vs {_rate_or_none(lab_theirs)}"
            + (f" = {lab_ratio:.2f}x" if lab_ratio is not None else "")
        )
    met = None if ratio is None else ratio >= factor
    return _target(
        f"{label} vs uvloop `transport.sendto`",
        f">= {factor:g}x",
        measured,
        ratio,
        met,
        "; ".join(filter(None, notes)),
    )


def latency_summary(points: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """(receiver, rate) -> the median p50 and p99 over that point's rounds, and their range.

    A point measured once is its own median. iperf2's points (a mean and a maximum, no
    percentiles) keep its mean and maximum of the last round.
    """
    rounds: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for point in points:
        latency = point["receiver_result"].get("latency_us")
        if latency:
            rounds.setdefault((point["receiver"], point["rate_target"]), []).append(latency)
    summary: dict[tuple[str, int], dict[str, Any]] = {}
    for key, measured in rounds.items():
        p50s = [m["p50"] for m in measured if "p50" in m]
        if not p50s:
            summary[key] = {"mean": measured[-1].get("mean"), "max": measured[-1].get("max")}
            continue
        summary[key] = {
            "p50": statistics.median(p50s),
            "p99": statistics.median(m["p99"] for m in measured if "p99" in m),
            "p50_low": min(p50s),
            "p50_high": max(p50s),
            "rounds": len(p50s),
        }
    return summary


def _latency_target(results: dict[str, Any]) -> dict[str, Any]:
    summary = latency_summary(results["latency"])
    mine = summary.get((PER_DATAGRAM, LATENCY_TARGET_RATE), {}).get("p50")
    theirs = summary.get((UVLOOP, LATENCY_TARGET_RATE), {}).get("p50")
    ratio = _ratio(mine, theirs)
    rounds = summary.get((PER_DATAGRAM, LATENCY_TARGET_RATE), {}).get("rounds", 0)
    measured = f"{_num(mine, 1)} µs vs {_num(theirs, 1)} µs" + (
        f" = {ratio:.2f}x" if ratio is not None else ""
    )
    if rounds > 1:
        measured += f" (medians of {rounds} runs)"
    met = None if ratio is None else ratio <= 1.2
    return _target(
        "latency p50 at 1k/s, `async for` vs uvloop-protocol", "<= 1.2x", measured, ratio, met
    )


def _memory_target(results: dict[str, Any]) -> dict[str, Any]:
    memory = results.get("memory")
    name = "memory under overload flat; every drop counted (queue + kernel)"
    if memory is None:
        return _target(name, "flat, all counted", "not measured", None, None)
    rss, extra = memory["rss_kib"], memory["receiver_result"]
    first, peak = rss.get("first"), rss.get("peak")
    drops = sum(
        int(extra.get(k) or 0) for k in ("queue_dropped", "kernel_dropped", "backlog_dropped")
    )
    unaccounted = int(memory["sent"]) - int(memory["received"]) - drops
    growth = None if first is None or peak is None else (peak - first) / 1024
    flat = growth is not None and growth <= max(2.0, 0.05 * first / 1024)
    overloaded = memory["delivered_pct"] < 100 * (1 - LOSS_FREE)
    measured = (
        f"RSS {_num(None if first is None else first / 1024, 1)} → peak "
        f"{_num(None if peak is None else peak / 1024, 1)} MiB; sent - received - drops = "
        f"{unaccounted:,}"
    )
    overload = memory.get("overload")
    note = f"{overload:.1f} x overload" if overload else ""
    if not overloaded:
        note = "the load did not overload the receiver"
    return _target(
        name, "growth <= 2 MiB, 0 unaccounted", measured, growth, flat and unaccounted == 0, note
    )


def _cpu_at(results: dict[str, Any], receiver: str, rate: int) -> float | None:
    point = _by_receiver(results["sweep"]).get(receiver, {}).get(rate)
    return None if point is None else point.get("cpu_s_per_million")


def _cli_cpu_target(results: dict[str, Any]) -> dict[str, Any]:
    name = f"CPU per datagram at {rate_label(CLI_CPU_RATE)}, `listen --stats` vs `async for`"
    mine, theirs = (_cpu_at(results, r, CLI_CPU_RATE) for r in (CLI_RECEIVER, PER_DATAGRAM))
    ratio = _ratio(mine, theirs)
    if ratio is None:
        return _target(name, "<= 1.2x", "not measured", None, None)
    measured = f"{mine:.2f} vs {theirs:.2f} µs per datagram = {ratio:.2f}x"
    return _target(name, "<= 1.2x", measured, ratio, ratio <= 1.2)


def _cli_sender_target(results: dict[str, Any]) -> dict[str, Any]:
    name = "`aiomcast send --rate 0 --size 64` vs `send_many` with GSO"
    mine, theirs = _sender_rate(results, CLI_SENDER), _sender_rate(results, GSO_SENDER)
    ratio = _ratio(mine, theirs)
    if ratio is None:
        return _target(name, ">= 0.9x", "not measured", None, None)
    measured = f"{_rate_or_none(mine)} vs {_rate_or_none(theirs)} = {ratio:.2f}x"
    return _target(
        name,
        ">= 0.9x",
        measured,
        ratio,
        ratio >= 0.9,
        _round_ratios(results, CLI_SENDER, GSO_SENDER),
    )


def _paced_ok(row: dict[str, Any]) -> bool:
    """Whether a pacing point reached its rate to within 1 %.

    The sender's view decides; the arrivals' is the cross-check where the C receiver kept up
    (delivered 99.9 % or more: past that, the receiver's losses are in the arrival rate).
    """
    if abs(row["sender_error_pct"]) > 1.0:
        return False
    if row["delivered_pct"] < 100 * (1 - LOSS_FREE):
        return True
    arrival = row.get("arrival_error_pct")
    return arrival is not None and abs(arrival) <= 1.0


def _held_up_to(rows: list[dict[str, Any]], ok: Any) -> int | None:
    """The highest rate up to which every point (from the lowest) is ``ok``."""
    top = None
    for row in rows:
        if not ok(row):
            break
        top = row["rate_target"]
    return top


def _own_ok(row: dict[str, Any]) -> bool:
    error = row.get("own_error_pct")
    return error is not None and abs(error) <= 1.0


def _pacing_target(results: dict[str, Any]) -> dict[str, Any]:
    """`aiomcast send --rate R` within 1 %: on its own path at every rate below 90 % of
    its unpaced own-path rate; into the lab, up to where it holds (reported, not judged).
    """
    name = "`aiomcast send --rate R` achieves R to within 1 %"
    rows = sorted(results.get("pacing") or [], key=lambda r: r["rate_target"])
    if not rows:
        return _target(name, "from 1k/s to the limit", "not measured", None, None)
    unpaced = _sender_rate(results, CLI_SENDER)  # own path
    below = [r for r in rows if unpaced is None or r["rate_target"] <= 0.9 * unpaced]
    own_top, lab_top = _held_up_to(rows, _own_ok), _held_up_to(rows, _paced_ok)
    measured = (
        f"own path: within 1 % up to {_rate_or_none(own_top)}; into the lab's receiver: up "
        f"to {_rate_or_none(lab_top)}"
    )
    beyond = next((r for r in rows if not _paced_ok(r)), None)
    note = f"unpaced, its own path reaches {_rate_or_none(unpaced)}"
    if beyond is not None:
        note += (
            f"; into the lab at {rate_label(beyond['rate_target'])} it reached "
            f"{beyond['sender_pps'] / 1e3:,.0f}k/s (the receiving kernel's work, moved by RPS, "
            "interrupts the sender's CPU)"
        )
    met = bool(below) and all(_own_ok(r) for r in below) and lab_top is not None
    return _target(name, "from 1k/s to the limit", measured, own_top, met, note)


def _pacing_lines(rows: list[dict[str, Any]]) -> list[str]:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:+.3f}"

    table = _table(
        [
            *("asked", "into the lab: sender's rate", "error %", "arrivals' rate", "error %"),
            *("delivered %", "CPU s", "own path: rate", "error %", "CPU s"),
        ],
        (
            [
                rate_label(r["rate_target"]),
                f"{r['sender_pps']:,.1f}",
                pct(r["sender_error_pct"]),
                "-" if r["arrival_pps"] is None else f"{r['arrival_pps']:,.1f}",
                pct(r["arrival_error_pct"]),
                f"{r['delivered_pct']:.2f}",
                f"{r['cpu_s']:.2f}",
                "-" if r.get("own_pps") is None else f"{r['own_pps']:,.1f}",
                pct(r.get("own_error_pct")),
                "-" if r.get("own_cpu_s") is None else f"{r['own_cpu_s']:.2f}",
            ]
            for r in sorted(rows, key=lambda r: r["rate_target"])
        ),
    )
    return [
        "`aiomcast send --size 64 --rate R --count 2R` (2 s), into the C receiver with RPS on "
        "the receiving veth, then on its own path (the receiving end down). The sender's "
        "rate is its datagrams over its elapsed time (which ends when the last datagram's "
        "slot does); the arrivals' is n - 1 over the time from the first arrival to the "
        "last, a cross-check where the receiver kept up (delivered 99.9 % or more). CPU s is "
        "the command's over the run: it sleeps a millisecond at the least between sends (the "
        "event loop's timers), and what fell due meanwhile goes out at once, in `send_many` "
        "calls of up to 64.",
        "",
        *table,
    ]


def foreign_summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per payload of the foreign-payload runs: the median CPU per datagram and the worst rest.

    Worst: the fewest received of sent, the largest RSS growth over a run.
    """
    out: dict[str, dict[str, Any]] = {}
    for payload in dict.fromkeys(r["payload"] for r in rows):
        mine = [r for r in rows if r["payload"] == payload]
        cpus = sorted(r["cpu_s_per_million"] for r in mine if r["cpu_s_per_million"] is not None)
        growth = [
            (r["rss_kib"]["peak"] - r["rss_kib"]["first"]) / 1024
            for r in mine
            if r["rss_kib"]["peak"] is not None and r["rss_kib"]["first"] is not None
        ]
        out[payload] = {
            "runs": len(mine),
            # cpu_s_per_million: CPU seconds per million datagrams, i.e. µs per datagram.
            "cpu_us": cpus[(len(cpus) - 1) // 2] if cpus else None,
            "cpu_range": (cpus[0], cpus[-1]) if cpus else None,
            "all_received": all(r["received"] == r["sent"] for r in mine),
            "received": [(r["received"], r["sent"]) for r in mine],
            "unnumbered": [r["unnumbered"] for r in mine],
            "gaps": [r["gaps"] for r in mine],
            "growth_mib": max(growth) if growth else None,
            "rss_first_mib": mine[0]["rss_kib"]["first"] / 1024
            if mine[0]["rss_kib"]["first"]
            else None,
        }
    return out


def _foreign_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    summary = foreign_summary(results.get("foreign") or [])
    reference = summary.get("marked")
    found = []
    for payload, what in (("random", "random bytes"), ("high32", "a counter in the high 32 bits")):
        name = f"`listen --stats` under foreign payloads ({what}), 100k/s for 5 s"
        row = summary.get(payload)
        if row is None or reference is None:
            found.append(
                _target(name, "all received, CPU <= 1.5x, flat", "not measured", None, None)
            )
            continue
        ratio = _ratio(row["cpu_us"], reference["cpu_us"])
        flat = row["growth_mib"] is not None and row["growth_mib"] <= 2.0
        counts = ", ".join(f"{got:,}/{sent:,}" for got, sent in row["received"])
        measured = (
            f"received/sent {counts}; CPU {_num(row['cpu_us'])} vs {_num(reference['cpu_us'])} "
            f"µs (well-formed) = {_num(ratio)}x; RSS growth {_num(row['growth_mib'], 1)} MiB"
        )
        met = row["all_received"] and ratio is not None and ratio <= 1.5 and flat
        note = f"unnumbered {row['unnumbered']}, gaps {row['gaps']}; medians of {row['runs']} runs"
        found.append(_target(name, "all received, CPU <= 1.5x, flat", measured, ratio, met, note))
    return found


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets, each measured as a ratio of two numbers of this run."""
    found = [
        _loss_free_target(results, UVLOOP, 2.0),
        _loss_free_target(results, STDLIB, 20.0),
        _batches_target(results),
    ]
    gso = _sender_rate(results, GSO_SENDER)
    lab_gso = _sender_rate(results, GSO_SENDER, own=False)
    found.append(
        _target(
            "`send_many` with GSO, 64-byte datagrams",
            ">= 1M/s",
            _rate_or_none(gso),
            gso,
            None if gso is None else gso >= 1e6,
            "; ".join(
                filter(
                    None,
                    [
                        _own_spread(results, GSO_SENDER),
                        f"into the lab's receiver: {_rate_or_none(lab_gso)}"
                        if _own_measured(results)
                        else "",
                    ],
                )
            ),
        )
    )
    found.append(_sender_ratio_target(results, NO_GSO_SENDER, "`send_many` without GSO", 1.5))
    # Not a target (the "without GSO" target is send_many's): shown for comparison,
    # since send() makes one sendto a datagram, as uvloop's transport does.
    send = _sender_ratio_target(results, SEND_SENDER, "`send` (no GSO)", 1.5)
    send["note"] = "; ".join(filter(None, ["one sendto a datagram, as uvloop's", send["note"]]))
    send["wanted"], send["met"] = "no target", INFO
    found.append(send)
    found += [_latency_target(results), _memory_target(results)]
    found += [
        _loss_free_target(results, PER_DATAGRAM, 0.9, mine=CLI_RECEIVER),
        _loss_free_target(results, UVLOOP, 1.5, mine=CLI_RECEIVER),
        _cli_cpu_target(results),
        _cli_sender_target(results),
        _pacing_target(results),
        *_foreign_targets(results),
    ]
    return found


def _targets_lines(results: dict[str, Any]) -> list[str]:
    found = results.get("targets") or targets(results)
    verdict = {True: "met", False: "**not met**", None: "not measured", INFO: "for comparison"}
    lines = _table(
        ["target", "wanted", "measured (this run)", "", "note"],
        ([t["target"], t["wanted"], t["measured"], verdict[t["met"]], t["note"]] for t in found),
    )
    rows = batch_vs_c(results)
    if rows:
        lines += [
            "`batches()` against the C reference at each offered rate (delivered %):",
            "",
            *_table(
                ["offered", "reached", "C recvmmsg", "aiomcast batches()", "ok"],
                (
                    [
                        rate_label(r["rate_target"]),
                        f"{r['reached'] / 1e3:,.0f}k/s",
                        f"{r['c_delivered_pct']:.2f}",
                        f"{r['batches_delivered_pct']:.2f}",
                        "yes" if r["ok"] else "**no**",
                    ]
                    for r in rows
                ),
            ),
        ]
    return lines


# -- markdown -------------------------------------------------------------------------------------


def rate_label(rate: float) -> str:
    """50k/s, 1M/s, or "max" for the unpaced point (rate 0)."""
    if rate == 0:
        return "max"
    if rate >= 1_000_000:
        return f"{rate / 1e6:.3g}M/s"
    return f"{rate / 1e3:.3g}k/s"


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def load_label(meta: dict[str, Any]) -> str:
    """What the sweep's load was: mcsend.c with sendmmsg, or with UDP_SEGMENT."""
    gso = meta.get("load_gso", 0)
    if not gso:
        return "mcsend.c (sendmmsg, paced)"
    quantum = meta.get("load_quantum_us", 0)
    return (
        f"mcsend.c (UDP_SEGMENT, up to {gso} datagrams per send, paced"
        + (f", what is due gathers for up to {quantum:g} µs" if quantum else "")
        + "; receivers without UDP_GRO get each datagram on its own)"
    )


def _by_receiver(points: list[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for point in points:
        table.setdefault(point["receiver"], {})[point["rate_target"]] = point
    return table


def _cell(point: dict[str, Any] | None) -> str:
    if point is None:
        return "-"
    return f"{point['delivered_pct']:.2f} ({_num(point['cpu_s_per_million'])})"


def _offered_line(points: list[dict[str, Any]], rates: list[int]) -> str:
    achieved = []
    for rate in rates:
        reached = sorted(p["sender_rate"] for p in points if p["rate_target"] == rate)
        if reached:
            median = reached[len(reached) // 2]
            achieved.append(f"{rate_label(rate)} → {median / 1e3:,.1f}k/s")
    return "Offered rate asked → reached (median over receivers): " + ", ".join(achieved) + "."


def _rate_table(
    points: list[dict[str, Any]], rates: list[int], summary: dict[str, Any] | None
) -> list[str]:
    table = _by_receiver(points)
    header = ["receiver", *(rate_label(r) for r in rates)]
    if summary is not None:
        header.append("loss-free up to")
    rows = []
    for receiver, by_rate in table.items():
        row = [receiver, *(_cell(by_rate.get(rate)) for rate in rates)]
        if summary is not None:
            row.append(_loss_free(summary.get(receiver, {}), by_rate))
        rows.append(row)
    return _table(header, rows)


def _loss_free(summary: dict[str, Any], by_rate: dict[int, dict[str, Any]]) -> str:
    best, lost_at = summary.get("loss_free_rate"), summary.get("lost_at")
    lost = f" (lost at {lost_at / 1e3:,.0f}k)" if lost_at is not None else ""
    if best is None:
        return "none" + lost
    unpaced = by_rate.get(0)
    if unpaced is not None and unpaced["loss"] < LOSS_FREE and lost_at is None:
        return f">= {best / 1e3:,.0f}k/s (sender-bound)"
    return f"{best / 1e3:,.0f}k/s{lost}"


def _latency_table(points: list[dict[str, Any]]) -> list[str]:
    summary = latency_summary(points)
    table = _by_receiver(points)
    rates = sorted({p["rate_target"] for p in points})
    header = ["receiver"]
    for rate in rates:
        header += [f"p50 @{rate_label(rate)}", f"p99 @{rate_label(rate)}"]
    header.append(f"delivered % @{rate_label(rates[-1])}" if rates else "delivered %")
    rows = []
    for receiver, by_rate in table.items():
        row = [receiver]
        for rate in rates:
            latency = summary.get((receiver, rate))
            if latency is None:
                row += ["-", "-"]
            elif "p50" in latency:
                p50 = _num(latency["p50"], 1)
                if latency["rounds"] > 1:
                    low, high = _num(latency["p50_low"], 0), _num(latency["p50_high"], 0)
                    p50 += f" ({low}-{high})"
                row += [p50, _num(latency["p99"], 1)]
            else:  # iperf2 reports a mean and a maximum, no percentiles
                row += [f"mean {_num(latency['mean'], 1)}", f"max {_num(latency['max'], 1)}"]
        last = by_rate.get(rates[-1]) if rates else None
        row.append(f"{last['delivered_pct']:.2f}" if last else "-")
        rows.append(row)
    return _table(header, rows)


#: What each sender row is (the rows of the sender table).
SENDER_LABELS = {
    "c-sendmmsg": "mcsend.c, sendmmsg of 64",
    "c-gso": "mcsend.c, UDP_SEGMENT of 64",
    "iperf2": "iperf2 client",
    "blocking-sendto": "blocking `sock.sendto`",
    "asyncio-sendto": "stdlib asyncio `transport.sendto`",
    "uvloop-sendto": "uvloop `transport.sendto`",
    "aiomcast-send": "aiomcast `await send()`",
    "aiomcast-send-many": "aiomcast `send_many` of 64 (GSO)",
    "aiomcast-send-many-no-gso": "aiomcast `send_many` of 64, sendmmsg only",
    "aiomcast-cli-send": "`aiomcast send --rate 0 --size 64` (send_many of 64, GSO)",
    "trio-aiomcast-send": "aiomcast.anyio `await send()` on trio",
    "trio-aiomcast-send-many": "aiomcast.anyio `send_many` of 64 on trio",
    "trio-socket-sendto": "trio socket `await sendto`",
}


#: Said under the receivers' table when trio rows are in it.
TRIO_NOTE = (
    " The `trio-` rows run on anyio's trio backend (trio_rows.py): `trio-aiomcast` and "
    "`trio-aiomcast-batches` are aiomcast.anyio's receiver, `trio-socket` trio's own socket "
    "(`await sock.recv_into`), the baseline on that loop; the other Python rows run on uvloop "
    "or the stdlib loop."
)


def _own_cell(row: dict[str, Any]) -> str:
    """The own-path rate of a sender row: its median round, with the range of its rounds."""
    if not row.get("own"):
        return "-"
    rates = _round_rates(row)
    cell = f"{row['own']['rate']:,.0f}"
    if len(rates) > 1:
        cell += f" ({min(rates) / 1e3:,.0f}k-{max(rates) / 1e3:,.0f}k)"
    return cell


def _sender_table(rows: list[dict[str, Any]]) -> list[str]:
    return _table(
        [
            "sender",
            "what",
            "own path: datagrams/s",
            "CPU µs per datagram (own)",
            "into the lab: datagrams/s",
            "CPU µs per datagram (lab)",
            "delivered % (C receiver)",
            "lost at socket / backlog",
        ],
        (
            [
                row["sender"],
                SENDER_LABELS.get(row["sender"], ""),
                _own_cell(row),
                _num(row["own"]["cpu_us_per_datagram"]) if row.get("own") else "-",
                f"{row['rate']:,.0f}",
                _num(row["cpu_us_per_datagram"]),
                f"{row['delivered_pct']:.2f}",
                f"{_count(row['receiver_result'].get('kernel_dropped'))} / "
                f"{_count(row['receiver_result'].get('backlog_dropped'))}",
            ]
            for row in rows
        ),
    )


def _memory_lines(memory: dict[str, Any] | None) -> list[str]:
    if memory is None:
        return ["Not measured (the aiomcast receiver did not run).", ""]
    rss = memory["rss_kib"]
    extra = memory["receiver_result"]
    work = memory.get("work_us")
    why = (
        f"3 x what a consumer working {work:g} µs per datagram can take"
        if work
        else "3 x the receiver's capacity"
    )
    if memory["rate_target"] == 0:
        why += ": more than the load reaches, so unpaced"
    overload = memory.get("overload")
    return [
        f"Offered {rate_label(memory['rate_target'])} ({why}), "
        f"reached {memory['sender_rate'] / 1e3:,.1f}k/s for {memory['seconds']:g} s; "
        f"{memory['delivered_pct']:.2f} % delivered"
        + (f", so the load was {overload:.1f} x what was consumed" if overload else "")
        + f" (queue dropped {_count(extra.get('queue_dropped'))}, "
        f"socket dropped {_count(extra.get('kernel_dropped'))}, "
        f"input backlog dropped {_count(extra.get('backlog_dropped'))})."
        + (
            " The receiver kept up, so this load did not overload it."
            if memory["delivered_pct"] >= 100 * (1 - LOSS_FREE)
            else ""
        ),
        "",
        "VmRSS at the load's start (before), then from its first sample after 1 s of load "
        "(first: what the receiver makes on first use is in place) to the end; flat means "
        "peak - first <= max(2 MiB, 5 %).",
        "",
        *_table(
            ["VmRSS", "before", "first", "peak", "last", "samples"],
            [
                [
                    "MiB",
                    *(
                        _num(None if rss.get(k) is None else rss[k] / 1024, 1)
                        for k in ("before", "first", "peak", "last")
                    ),
                    str(len(memory["samples"])),
                ]
            ],
        ),
    ]


FOREIGN_LABELS = {
    "marked": "aiomcast's timestamped header (well-formed)",
    "random": "random bytes",
    "high32": "a counter in the high 32 bits of the first 8 bytes",
}


def _foreign_lines(rows: list[dict[str, Any]]) -> list[str]:
    summary = foreign_summary(rows)
    table = _table(
        ["payload", "runs", "received / sent", "unnumbered", "CPU µs per datagram", "RSS MiB"],
        (
            [
                FOREIGN_LABELS.get(payload, payload),
                str(row["runs"]),
                ", ".join(f"{got:,} / {sent:,}" for got, sent in row["received"]),
                ", ".join(f"{n:,}" for n in row["unnumbered"]),
                f"{_num(row['cpu_us'])}"
                + (
                    f" ({row['cpu_range'][0]:.2f}-{row['cpu_range'][1]:.2f})"
                    if row["cpu_range"] and row["runs"] > 1
                    else ""
                ),
                f"{_num(row['rss_first_mib'], 1)}, growth {_num(row['growth_mib'], 1)}",
            ]
            for payload, row in summary.items()
        ),
    )
    return [
        "mcsend.c at 100k/s for 5 s into `aiomcast listen --stats` (its default --format "
        "auto), the payloads in rounds, each once per round; CPU per datagram is the median "
        "run's (the range in brackets), RSS the first sample after 1 s of load and the "
        "largest growth above it over a run.",
        "",
        *table,
    ]


def markdown(results: dict[str, Any], plot_note: str | None = None) -> str:
    """The human-readable report: one table per measurement, then what was skipped."""
    meta = results["meta"]
    minutes, seconds = divmod(int(meta.get("wall_s", 0)), 60)
    where = (
        "two network namespaces joined by a veth pair (aiomcast.testing.lab)"
        if meta["mode"] == "lab"
        else "the loopback interface"
    )
    rcvbuf = meta.get("rcvbuf", 0)
    lines = [
        "# aiomcast benchmarks",
        "",
        f"`{meta.get('command', 'python benchmarks/run.py')}` on {meta['date']}, "
        f"{minutes}:{seconds:02d} in all. Traffic: {where}, group {meta['group']}, "
        f"{meta['payload_bytes']}-byte payloads; sender on CPU {meta['sender_cpu']}, receiver "
        f"on CPU {meta['receiver_cpu']} ({meta['cpus']} x {meta['cpu_model']}), Linux "
        f"{meta['kernel']}, Python {meta['python']}, aiomcast "
        f"{meta['versions'].get('aiomcast_commit', meta['versions'].get('aiomcast', '?'))}. "
        "Every receiver asks for "
        + (f"SO_RCVBUF {rcvbuf / 2**20:g} MiB." if rcvbuf else "the kernel's default SO_RCVBUF.")
        + f" {meta['seconds_per_point']:g} s per point.",
        "",
        *(f"- {note}" for note in meta.get("notes", [])),
        "",
        "## Targets: ratios of this run's numbers",
        "",
        *_targets_lines(results),
        "## Receivers: delivered % (receiver CPU seconds per million datagrams)",
        "",
        f"Load: {load_label(meta)}. " + _offered_line(results["sweep"], meta["rates"]),
        "",
        *_rate_table(results["sweep"], meta["rates"], results.get("summary", {})),
        "Loss-free: the highest offered rate that, like every lower one, lost less than "
        f"{meta['loss_free_threshold'] * 100:g} % ('max' counts at the rate reached), after "
        f"{meta.get('refine_steps', 0)} bisection steps between a receiver's last loss-free "
        "rate of the grid and the first one it lost at (the refined points are in the JSON); "
        "'lost at' is the lowest rate above it that lost."
        + (TRIO_NOTE if any(p["receiver"].startswith("trio-") for p in results["sweep"]) else ""),
        "",
    ]
    if results["iperf2_load"]:
        lines += [
            "## Receivers under iperf2 as the load",
            "",
            "`iperf -c GROUP -u -b RATEpps -l 64 -T 1`; delivered % (CPU s per million). "
            + _offered_line(results["iperf2_load"], meta["iperf2_rates"]),
            "",
            *_rate_table(results["iperf2_load"], meta["iperf2_rates"], None),
        ]
    if results["latency"]:
        lines += [
            "## One-way latency, µs",
            "",
            "Load: mcsend.c with sendmmsg at every rate. It stamps CLOCK_MONOTONIC into each "
            "payload just before sendmmsg; the "
            "receiver subtracts it from its own clock when the datagram reaches its code. "
            "iperf2 reports only a mean and a maximum, measured against the kernel's receive "
            "timestamp (SO_TIMESTAMP): it leaves out the wake-up of the receiver, so it is not "
            "comparable with the other rows. The 1k/s point runs in rounds, every receiver "
            "once per round and the target's pair (aiomcast, uvloop-protocol) twice, back to "
            "back: its cells are the medians over the runs, with the range of the "
            "p50s in brackets (one run's p50 moves by tens of µs here).",
            "",
            *_latency_table(results["latency"]),
        ]
    if results.get("foreign"):
        lines += [
            "## `aiomcast listen --stats` under foreign payloads",
            "",
            *_foreign_lines(results["foreign"]),
        ]
    lines += [
        "## Memory: aiomcast per-datagram receiver under overload",
        "",
        *_memory_lines(results.get("memory")),
        "## Senders (unpaced, 64-byte datagrams)",
        "",
        *_sender_table(results["senders"]),
        "CPU per datagram: the sender's own send loop (getrusage); iperf2's whole process. "
        "Own path: the receiving end of the veth pair is down, so the veth drops each "
        "datagram as it is handed over and the sender's CPU carries the sender's path only, "
        "as when a NIC takes the frame (with GSO it takes the whole buffer of 64, as a NIC "
        "with UDP segmentation offload does); the targets use these. Every sender runs its "
        "own path in rounds, each sender once a round, and its cells are its median round "
        "(the range of its rounds in brackets): one such point moves by 5-10 % from one run "
        "to the next here. Into the lab (once): to the C "
        "receiver, with RPS on the receiving veth (the receiving kernel path on the "
        "receiver's CPU, as when the receivers are other hosts; over lo the sender's CPU "
        "carries all of it). Each datagram that finds the receiving CPU's queue empty then "
        "costs the sender an inter-processor interrupt, which on this VM is about a third of "
        "a sender's CPU (perf: native_write_msr), the same for every sender. Delivered % is "
        "what the C receiver kept up with, not a property of the sender.",
        "",
    ]
    if results.get("pacing"):
        lines += ["## `aiomcast send` pacing", "", *_pacing_lines(results["pacing"])]
    if results["skipped"]:
        lines += ["## Skipped", ""]
        lines += [f"- **{name}**: {why}" for name, why in results["skipped"].items()]
        lines.append("")
    if results["errors"]:
        lines += ["## Errors", ""]
        lines += [f"- {error}" for error in results["errors"]]
        lines.append("")
    if plot_note:
        lines += [f"Plot: {plot_note}", ""]
    return "\n".join(lines)


# -- plot ----------------------------------------------------------------------------------------


def plot(results: dict[str, Any], path: Path) -> str | None:
    """Draw delivered % against the offered rate reached, the senders and the targets.

    Returns None, or why there is no plot.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "not drawn: matplotlib is missing (pip install -r benchmarks/requirements.txt)"
    gso = results["meta"].get("load_gso", 0)
    panels = [(f"mcsend.c ({f'GSO {gso}' if gso else 'sendmmsg'})", results["sweep"])]
    if results["iperf2_load"]:
        panels.append(("iperf2", results["iperf2_load"]))
    figure = plt.figure(figsize=(6 * len(panels) + 3, 10))
    grid = figure.add_gridspec(2, len(panels), height_ratios=(3, 2))
    axes = [figure.add_subplot(grid[0, i]) for i in range(len(panels))]
    for axis, (title, points) in zip(axes, panels, strict=True):
        for receiver, by_rate in _by_receiver(points).items():
            ordered = sorted(by_rate.values(), key=lambda p: p["sender_rate"])
            axis.plot(
                [p["sender_rate"] / 1e3 for p in ordered],
                [p["delivered_pct"] for p in ordered],
                marker="o",
                linestyle=_style(receiver),
                label=receiver,
            )
        axis.set_title(f"load: {title}")
        axis.set_xlabel("offered rate reached (thousand datagrams/s)")
        axis.grid(True, alpha=0.3)
        reached = [p["sender_rate"] / 1e3 for p in points]
        axis.set_xlim(left=0, right=max(reached, default=1.0) * 1.08)
        axis.set_ylim(bottom=0, top=102)
    axes[0].set_ylabel("delivered %")
    axes[-1].legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    _plot_senders(figure.add_subplot(grid[1, 0]), results["senders"])
    text_axis = figure.add_subplot(grid[1, 1:] if len(panels) > 1 else grid[1, 0])
    if len(panels) == 1:  # one column: the senders' axis takes it, the targets go below
        text_axis.remove()
    else:
        _plot_targets(text_axis, results)
    figure.suptitle(f"aiomcast benchmarks: 64-byte multicast datagrams ({results['meta']['mode']})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None


#: The rows of the summary chart (the README's): the peers a user would pick instead, and
#: aiomcast's own, receive and send.
SUMMARY_RECEIVERS = (
    STDLIB,
    UVLOOP,
    "trio-socket",
    C_RECEIVER,
    PER_DATAGRAM,
    BATCHES,
    "trio-aiomcast",
    CLI_RECEIVER,
)
SUMMARY_SENDERS = (
    *("asyncio-sendto", UVLOOP_SENDTO, SEND_SENDER, NO_GSO_SENDER, GSO_SENDER),
    CLI_SENDER,
)


def summary_plot(results: dict[str, Any], path: Path) -> None:
    """One small chart: loss-free receive rates and unpaced send rates, with date and machine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = results.get("summary", {})
    receivers = [name for name in SUMMARY_RECEIVERS if summary.get(name, {}).get("loss_free_rate")]
    received = [summary[name]["loss_free_rate"] / 1e3 for name in receivers]
    senders = [row for row in results["senders"] if row["sender"] in SUMMARY_SENDERS]
    sent = [float((row.get("own") or row)["rate"]) / 1e3 for row in senders]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for axis, names, rates, title in (
        (left, receivers, received, "receive: loss-free rate"),
        (right, [row["sender"] for row in senders], sent, "send: unpaced rate"),
    ):
        colors = ["tab:blue" if _is_aiomcast(name) else "tab:gray" for name in names]
        axis.barh(names, rates, color=colors)
        for y, rate in enumerate(rates):
            axis.text(rate, y, f" {rate:,.0f}k", va="center", fontsize="small")
        axis.invert_yaxis()
        axis.set_xlim(right=max(rates, default=1.0) * 1.25)
        axis.set_title(title)
        axis.set_xlabel("thousand 64-byte datagrams/s")
        axis.grid(True, axis="x", alpha=0.3)
    meta = results["meta"]
    machine = (
        f"{meta['cpus']} x {meta['cpu_model']}, Linux {meta['kernel']}, Python {meta['python']}"
    )
    figure.suptitle(f"aiomcast, {meta['date'][:10]}: {machine}", fontsize="medium")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_senders(axis: Any, rows: list[dict[str, Any]]) -> None:
    """Horizontal bars: datagrams/s each sender reached, unpaced (own path where measured)."""
    names = [row["sender"] for row in rows]
    rates = [float((row.get("own") or row)["rate"]) / 1e3 for row in rows]
    colors = ["tab:blue" if _is_aiomcast(n) else "tab:gray" for n in names]
    axis.barh(names, rates, color=colors)
    for y, rate in enumerate(rates):
        axis.text(rate, y, f" {rate:,.0f}k", va="center", fontsize="small")
    axis.invert_yaxis()
    axis.set_xlabel("thousand datagrams/s (unpaced, 64 bytes)")
    axis.set_title("senders")
    axis.grid(True, axis="x", alpha=0.3)


def _plot_targets(axis: Any, results: dict[str, Any]) -> None:
    """The targets as text: met / not met and the measured ratio."""
    verdict = {True: "met", False: "NOT MET", None: "not measured", INFO: "for comparison"}
    lines = [
        f"[{verdict[t['met']]}] {t['target'].replace('`', '')} ({t['wanted']}): {t['measured']}"
        for t in results.get("targets") or targets(results)
    ]
    axis.axis("off")
    axis.set_title("targets, this run")
    axis.text(0, 1, "\n".join(lines), va="top", ha="left", fontsize="small", wrap=True)


def _is_aiomcast(row: str) -> bool:
    """aiomcast's own rows: ``aiomcast-*`` and, on trio, ``trio-aiomcast*``."""
    return row.startswith(("aiomcast", "trio-aiomcast"))


def _style(receiver: str) -> str:
    return "-" if _is_aiomcast(receiver) else "--"


def _main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent / "results"
    results = json.loads((out / "results.json").read_text())
    paths = write_all(results, out)
    print(paths["markdown"].read_text())
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
