"""The long forms of the reliability tests: a minute of overload (tests/lab/test_reliability.py),
10,000 cycles (tests/sockets/test_local_reliability.py).

Run as root from the repository (it builds two network namespaces with aiomcast.testing.lab, as the
tests do, inside a private namespace of its own, so nothing reaches the machine's
interfaces)::

    python benchmarks/reliability.py            # 60 s overload per family, 10,000 cycles
    python benchmarks/reliability.py --quick    # 10 s, 1,000 cycles
    python benchmarks/reliability.py --json out.json

It prints a markdown report and, with --json, writes the numbers. Every check the tests
make is made here too; the exit status is 1 when one fails (something lost uncounted, a
descriptor, membership, task or memory left behind).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiomcast
from aiomcast.testing import lab
from tests import test_reliability as rel
from tests.helpers import Link


def overload_rows(pair: rel.Pair, seconds: float, rate: int, loop: str) -> list[dict[str, Any]]:
    rows = []
    for family in ("ipv4", "ipv6"):
        for fast in (True, False):
            started = time.monotonic()
            result = aiomcast.run(
                rel.overload(pair, family, fast=fast, rate=rate, seconds=seconds),
                use_uvloop=loop == "uvloop",
            )
            row = dataclasses.asdict(result)
            row.update(
                family=family,
                transport="fast" if fast else "protocol",
                loop=loop,
                seconds=round(time.monotonic() - started, 1),
                lost=result.lost,
                ok=result.lost == 0
                and result.duplicates == 0
                and result.link_dropped == 0
                and result.missing == result.queue_dropped + result.kernel_dropped
                and result.max_queued <= 512,
            )
            rows.append(row)
            print(f"overload {family} {row['transport']}: {json.dumps(row)}", file=sys.stderr)
    return rows


def cycle_rows(link: Link, where: str, count: int, loop: str) -> list[dict[str, Any]]:
    rows = []
    for cancel in (False, True):

        async def measure(cancel: bool = cancel) -> dict[str, Any]:
            await rel.cycles(link, 50, cancel=cancel, seed=0)
            with rel.traced():
                before = rel.Footprint.now()
                started = time.monotonic()
                done, cancelled = await rel.cycles(link, count, cancel=cancel)
                elapsed = time.monotonic() - started
                after = rel.Footprint.now()
            return {
                "where": where,
                "loop": loop,
                "cancelled_at_random": cancel,
                "cycles": count,
                "completed": done,
                "cancelled": cancelled,
                "seconds": round(elapsed, 1),
                "fd_growth": after.fds - before.fds,
                "membership_growth": len(after.memberships ^ before.memberships),
                "task_growth": after.tasks - before.tasks,
                "traced_growth_bytes": after.traced - before.traced,
                "peak_rss_kib": rel.peak_rss_kib(),
                "ok": after.fds == before.fds
                and after.memberships == before.memberships
                and after.tasks == before.tasks
                and after.traced - before.traced < 64 * 1024,
            }

        row = aiomcast.run(measure(), use_uvloop=loop == "uvloop")
        rows.append(row)
        print(f"cycles {where} {loop}: {json.dumps(row)}", file=sys.stderr)
    return rows


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"## Reliability run ({report['date']}, {report['machine']})",
        "",
        f"Overload: {report['rate']} datagrams/s offered for {report['seconds']} s to a "
        "consumer 10x slower (queue 512, receive buffer 64 KiB).",
        "",
        "| family | transport | sent | delivered | queue drops | kernel drops | lost "
        "| max queued | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["overload"]:
        lines.append(
            f"| {r['family']} | {r['transport']} | {r['sent']:,} | {r['delivered']:,} "
            f"| {r['queue_dropped']:,} | {r['kernel_dropped']:,} | {r['lost']} "
            f"| {r['max_queued']} | {r['peak_rss_kib'] / 1024:.1f} |"
        )
    lines += [
        "",
        "Open / join / send / receive / leave / close cycles:",
        "",
        "| where | loop | cancelled at random | cycles | fd growth | membership growth "
        "| task growth | traced memory growth | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["cycles"]:
        cancelled = f"{r['cancelled']:,}" if r["cancelled_at_random"] else "no"
        lines.append(
            f"| {r['where']} | {r['loop']} | {cancelled} | {r['cycles']:,} | {r['fd_growth']} "
            f"| {r['membership_growth']} | {r['task_growth']} "
            f"| {r['traced_growth_bytes']:,} B | {r['seconds']} |"
        )
    lines.append("")
    lines.append("All checks passed." if report["ok"] else "SOME CHECKS FAILED (see the JSON).")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10 s overload, 1,000 cycles")
    parser.add_argument("--seconds", type=float, help="overload duration per point")
    parser.add_argument("--rate", type=int, default=20_000, help="offered datagrams/s")
    parser.add_argument("--cycles", type=int, help="open/join/close cycles per point")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    count = args.cycles or (1_000 if args.quick else 10_000)
    ok, why = lab.lab_available()
    if not ok:
        print(f"needs network namespaces: {why}", file=sys.stderr)
        return 2
    lab.enter_private_network()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, Linux {platform.release()}, "
        f"Python {platform.python_version()}",
        "rate": args.rate,
        "seconds": seconds,
        "overload": [],
        "cycles": [],
    }
    with lab.Lab(prefix="amcbench") as net:
        tx, rx = net.host("tx"), net.host("rx")
        ends = net.link(tx, rx, subnet=77)
        tx.ip("addr", "add", "10.201.77.11/24", "dev", ends.a_name)
        pair = rel.Pair(net, tx, rx, ends, 77)
        report["overload"] = overload_rows(pair, seconds, args.rate, "uvloop")
        local = net.link(net.local, net.local, subnet=78)
        links = {
            "ipv4-lo": Link("ipv4", "lo", "127.0.0.1", "239.1.2.3"),
            "ipv6-veth": Link("ipv6", local.a_name, local.a_ipv6, "ff12::1:2:3"),
        }
        for where, link in links.items():
            for loop in ("asyncio", "uvloop"):
                report["cycles"] += cycle_rows(link, where, count, loop)
    report["ok"] = all(r["ok"] for r in report["overload"] + report["cycles"])
    print(markdown(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
