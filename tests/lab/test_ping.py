"""``aiomcast ping`` between lab hosts: two on one net, a third behind a router.

Each host runs the command as its users would (a process in the host's namespace). The
answers come back by unicast and through the group; one router hop takes one from the TTL
each way. The routed tests run once per forwarding engine the kernel has.
"""

from __future__ import annotations

import json
import signal
import subprocess
from typing import Any

import pytest

from aiomcast.testing import lab
from tests.processes import AIOMCAST, background, run

GROUPS = {"ipv4": "239.8.8.8", "ipv6": "ff15::8:8:8"}
TOPOLOGY = "routers r1\nhosts a b c\nnet 1 a b r1\nnet 2 r1 c\n"
#: The unicast TTL (IP_TTL) and hop limit a Linux host sends with, and ping's group answers'.
TTL = 64


def ping(host: lab.Host, *args: str) -> list[str]:
    return host.command(*AIOMCAST, "ping", *args)


def answered_once_each_way(report: dict[str, Any], count: int, *, ttl: int) -> None:
    for way in ("unicast", "multicast"):
        got = report[way]
        assert (got["sent"], got["received"], got["duplicates"]) == (count, count, 0), report
        assert got["loss_pct"] == 0.0
        rtt = got["rtt_ms"]
        assert 0 < rtt["min"] <= rtt["avg"] <= rtt["max"], rtt
        assert rtt["stddev"] >= 0
        assert got["ttl"] == ttl, report
    assert report["errors"] == 0


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_a_querier_reaches_a_neighbour_and_a_host_behind_a_router(
    routed: lab.Lab, engine: str, family: str
) -> None:
    net = routed
    net.build(TOPOLOGY)
    group, port = GROUPS[family], "7401"
    b, c = net["b"].address(1, family), net["c"].address(2, family)
    count = 4
    with (
        background(
            ping(net["b"], group, port, "-i", "n1", "--duration", "30"), ready="joined"
        ) as rb,
        background(
            ping(net["c"], group, port, "-i", "n2", "--duration", "30"), ready="joined"
        ) as rc,
    ):
        asked = run(
            ping(
                net["a"],
                group,
                port,
                b,
                c,
                "-i",
                "n1",
                "--count",
                str(count),
                "--interval",
                "0.2",
                "--wait",
                "1",
                "--json",
            ),
            timeout=30,
        )
        rb.send_signal(signal.SIGTERM)
        rc.send_signal(signal.SIGTERM)
        done_b, done_c = rb.finish(), rc.finish()
    assert asked.returncode == 0, asked
    summary = json.loads(asked.stdout)
    assert (summary["group"], summary["port"]) == (group, 7401)
    assert set(summary["peers"]) == {b, c}
    answered_once_each_way(summary["peers"][b], count, ttl=TTL)  # same net: no hop
    behind = summary["peers"][c]
    if engine == "ipmr":
        # smcrouted installs the route on the first datagram of a flow, which it may lose.
        behind["multicast"]["received"] = count * (behind["multicast"]["received"] >= count - 1)
        behind["multicast"]["loss_pct"] = 0.0
    answered_once_each_way(behind, count, ttl=TTL - 1)  # one router hop each way
    for done in (done_b, done_c):
        assert done.returncode == 0, done
        assert f"answered {count} queries from 1 querier" in done.stderr, done.stderr


def test_every_host_queries_the_others(routed: lab.Lab, engine: str) -> None:
    # As omping is run: the same command on every host, each naming the others.
    net = routed
    net.build(TOPOLOGY)
    group, port = GROUPS["ipv4"], "7402"
    where = {"a": ("n1", 1), "b": ("n1", 1), "c": ("n2", 2)}
    addresses = {name: net[name].address(n) for name, (_, n) in where.items()}
    procs = {}
    for name, (iface, _) in where.items():
        others = [addresses[o] for o in where if o != name]
        argv = ping(
            net[name],
            group,
            port,
            *others,
            "-i",
            iface,
            "--count",
            "5",
            "--interval",
            "0.2",
            "--wait",
            "1.5",
            "--json",
        )
        procs[name] = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, (name, out, err)
        results[name] = json.loads(out)["peers"]
    for name, peers in results.items():
        assert set(peers) == {addresses[o] for o in where if o != name}
        for peer, report in peers.items():
            assert report["unicast"]["received"] == 5, (name, peer, report)
            # Counting starts once every peer has answered a probe (--wait-for-peers).
            assert report["multicast"]["received"] == 5, (name, peer, report)
            across = (name == "c") != (peer == addresses["c"])
            assert report["unicast"]["ttl"] == TTL - across


def test_a_silent_peer_is_all_loss(routed: lab.Lab, engine: str) -> None:
    net = routed
    net.build(TOPOLOGY)
    silent = "10.201.1.9"  # on net 1, but no host has it
    asked = run(
        ping(
            net["a"],
            GROUPS["ipv4"],
            "7403",
            silent,
            "-i",
            "n1",
            "--count",
            "2",
            "--interval",
            "0.2",
            "--wait",
            "0.5",
            "--wait-for-peers",
            "0.3",
        ),
        timeout=20,
    )
    assert asked.returncode == 1, asked
    assert asked.err_lines[-1] == f"{silent} : no answer within 0.3 s; querying anyway"
    assert asked.out_lines == [
        f"{silent} :   unicast, xmt/rcv/%loss = 2/0/100%, min/avg/max/std-dev = -, "
        "duplicates 0, ttl -",
        f"{silent} : multicast, xmt/rcv/%loss = 2/0/100%, min/avg/max/std-dev = -, "
        "duplicates 0, ttl -",
    ]
