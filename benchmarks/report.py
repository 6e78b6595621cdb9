"""Output of the aiomcast benchmarks: results.json (every raw number), results.md, delivered.png.

run.py calls ``write_all``; ``python benchmarks/report.py DIR`` redraws the table and the plot
from DIR/results.json without measuring again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Loss below this fraction counts as loss-free (run.py uses the same).
LOSS_FREE = 0.001


def write_all(results: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write the JSON, the markdown and the plot into ``out``; return their paths."""
    paths = {"json": out / "results.json", "markdown": out / "results.md"}
    paths["json"].write_text(json.dumps(results, indent=1) + "\n")
    plot_path = out / "delivered.png"
    plot_note = plot(results, plot_path)
    if plot_note is None:
        paths["plot"] = plot_path
    paths["markdown"].write_text(markdown(results, plot_note))
    return paths


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
            row.append(_loss_free(summary.get(receiver, {}).get("loss_free_rate"), by_rate))
        rows.append(row)
    return _table(header, rows)


def _loss_free(best: float | None, by_rate: dict[int, dict[str, Any]]) -> str:
    if best is None:
        return "none"
    unpaced = by_rate.get(0)
    if unpaced is not None and unpaced["loss"] < LOSS_FREE:
        return f">= {best / 1e3:,.0f}k/s (sender-bound)"
    return f"{best / 1e3:,.0f}k/s"


def _latency_table(points: list[dict[str, Any]]) -> list[str]:
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
            latency = (by_rate.get(rate) or {}).get("receiver_result", {}).get("latency_us")
            if latency is None:
                row += ["-", "-"]
            elif "p50" in latency:
                row += [_num(latency["p50"], 1), _num(latency["p99"], 1)]
            else:  # iperf2 reports a mean and a maximum, no percentiles
                row += [f"mean {_num(latency['mean'], 1)}", f"max {_num(latency['max'], 1)}"]
        last = by_rate.get(rates[-1]) if rates else None
        row.append(f"{last['delivered_pct']:.2f}" if last else "-")
        rows.append(row)
    return _table(header, rows)


def _sender_table(rows: list[dict[str, Any]]) -> list[str]:
    return _table(
        [
            "sender",
            "sent",
            "datagrams/s",
            "CPU µs per datagram",
            "delivered % (C receiver)",
            "lost at socket / backlog",
        ],
        (
            [
                row["sender"],
                f"{row['sent']:,}",
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
    base = memory.get("loss_free_rate")
    extra = memory["receiver_result"]
    return [
        f"Offered {rate_label(memory['rate_target'])} (3 x "
        + ("its loss-free rate" if base else "the lowest offered rate: it had none")
        + f"), reached {memory['sender_rate'] / 1e3:,.1f}k/s for {memory['seconds']:g} s; "
        f"{memory['delivered_pct']:.2f} % delivered "
        f"(queue dropped {_count(extra.get('queue_dropped'))}, "
        f"socket dropped {_count(extra.get('kernel_dropped'))}, "
        f"input backlog dropped {_count(extra.get('backlog_dropped'))})."
        + (
            " The receiver kept up, so this load did not overload it."
            if memory["delivered_pct"] >= 100 * (1 - LOSS_FREE)
            else ""
        ),
        "",
        *_table(
            ["VmRSS", "first", "peak", "last", "samples"],
            [
                [
                    "MiB",
                    *(_num(None if v is None else v / 1024, 1) for v in rss.values()),
                    str(len(memory["samples"])),
                ]
            ],
        ),
    ]


def markdown(results: dict[str, Any], plot_note: str | None = None) -> str:
    """The human-readable report: one table per measurement, then what was skipped."""
    meta = results["meta"]
    minutes, seconds = divmod(int(meta.get("wall_s", 0)), 60)
    where = (
        "two network namespaces joined by a veth pair (aiomcast.lab)"
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
        "## Receivers: delivered % (receiver CPU seconds per million datagrams)",
        "",
        "Load: mcsend.c (sendmmsg, paced). " + _offered_line(results["sweep"], meta["rates"]),
        "",
        *_rate_table(results["sweep"], meta["rates"], results.get("summary", {})),
        "Loss-free: the highest offered rate with less than "
        f"{meta['loss_free_threshold'] * 100:g} % loss ('max' counts at the rate reached).",
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
            "mcsend.c stamps CLOCK_MONOTONIC into each payload just before sendmmsg; the "
            "receiver subtracts it from its own clock when the datagram reaches its code. "
            "iperf2 reports only a mean and a maximum, measured against the kernel's receive "
            "timestamp (SO_TIMESTAMP): it leaves out the wake-up of the receiver, so it is not "
            "comparable with the other rows.",
            "",
            *_latency_table(results["latency"]),
        ]
    lines += [
        "## Memory: aiomcast per-datagram receiver under overload",
        "",
        *_memory_lines(results.get("memory")),
        "## Senders (unpaced, 64-byte datagrams)",
        "",
        *_sender_table(results["senders"]),
        "CPU per datagram: the sender's own send loop (getrusage); iperf2's whole process. "
        "The sender's CPU also carries part of the kernel's delivery (all of it on lo or with "
        "--no-rps). Delivered % is what the C receiver kept up with, not a property of the "
        "sender.",
        "",
    ]
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
    """Draw delivered % against the offered rate reached; None, or why there is no plot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "not drawn: matplotlib is missing (pip install -r benchmarks/requirements.txt)"
    panels = [("mcsend.c (sendmmsg)", results["sweep"])]
    if results["iperf2_load"]:
        panels.append(("iperf2", results["iperf2_load"]))
    figure, axes = plt.subplots(
        1, len(panels), figsize=(6 * len(panels) + 2, 5), squeeze=False, sharex=True, sharey=True
    )
    for axis, (title, points) in zip(axes[0], panels, strict=True):
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
        axis.set_xlim(left=0)
        axis.set_ylim(bottom=0, top=102)
    axes[0][0].set_ylabel("delivered %")
    axes[0][-1].legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.suptitle(f"aiomcast benchmarks: 64-byte multicast datagrams ({results['meta']['mode']})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None


def _style(receiver: str) -> str:
    return "-" if receiver.startswith("aiomcast") else "--"


def _main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent / "results"
    results = json.loads((out / "results.json").read_text())
    paths = write_all(results, out)
    print(paths["markdown"].read_text())
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
