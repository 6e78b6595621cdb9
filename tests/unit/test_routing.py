"""The lab routers' configuration, from tables: what each forwarding engine is told to do.

The functions of aiomcast.testing._routing are pure: ports and routes in, configuration text out.
These tests read that text without root; tests/lab/test_lab.py, tests/lab/test_ssm_lab.py and
tests/lab/test_faults.py prove through real routers, on every engine, that it forwards as
meant, and tests/lab/test_lab_host.py asks the kernel for multicast routing as the lab does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

import pytest

from aiomcast.testing import lab
from aiomcast.testing._routing import (
    NETFILTER_TABLE,
    Port,
    Route,
    default_routes,
    ip6_threshold_rules,
    netfilter_ruleset,
    smcroute_conf,
)

PORTS = [Port("n1", 1), Port("n2", 31), Port("n3", 1)]
SG = Route(
    "n1",
    ipaddress.ip_network("232.1.1.1"),
    ("n2",),
    ipaddress.ip_address("10.201.1.1"),
)
STAR_G = Route("n1", ipaddress.ip_network("239.0.0.0/8"), ("n2", "n3"))


def chain(ruleset: str, name: str) -> list[str]:
    """The rules of chain ``name`` in an nftables ruleset text."""
    match = re.search(rf"^    chain {name} {{\n(.*?)^    }}", ruleset, re.M | re.S)
    assert match, f"no chain {name}"
    return [line.strip() for line in match.group(1).splitlines()]


def test_default_routes_join_every_port_to_all_others() -> None:
    routes = default_routes(PORTS)
    assert [(r.inbound, str(r.group), r.outbound) for r in routes] == [
        ("n1", "224.0.0.0/4", ("n2", "n3")),
        ("n1", "ff00::/8", ("n2", "n3")),
        ("n2", "224.0.0.0/4", ("n1", "n3")),
        ("n2", "ff00::/8", ("n1", "n3")),
        ("n3", "224.0.0.0/4", ("n1", "n2")),
        ("n3", "ff00::/8", ("n1", "n2")),
    ]
    assert default_routes([Port("n1", 1)]) == []


def test_smcroute_conf() -> None:
    # Most specific first, whatever the order given (as the netfilter engine matches them).
    assert smcroute_conf(PORTS, [STAR_G, SG]) == (
        "phyint n1 enable ttl-threshold 1\n"
        "phyint n2 enable ttl-threshold 31\n"
        "phyint n3 enable ttl-threshold 1\n"
        "mroute from n1 source 10.201.1.1 group 232.1.1.1 to n2\n"
        "mroute from n1 group 239.0.0.0/8 to n2 n3\n"
    )


def test_ip6_thresholds_of_the_ipmr_engine() -> None:
    # Only thresholds above 1 need a rule; the forward hook sees the decremented hop limit.
    rules = ip6_threshold_rules(PORTS)
    assert 'oifname "n2" ip6 daddr ff00::/8 ip6 hoplimit < 31 counter drop' in rules
    assert '"n1"' not in rules
    assert '"n3"' not in rules


def test_netfilter_decrements_once_and_never_forwards_link_local_or_expired() -> None:
    ruleset = netfilter_ruleset(PORTS, default_routes(PORTS))
    assert ruleset.startswith(f"table netdev {NETFILTER_TABLE} {{\n")
    v4 = chain(ruleset, "in4_n1")
    assert v4[0] == 'type filter hook ingress device "n1" priority 0; policy accept;'
    assert v4[1:3] == ["ip daddr 224.0.0.0/24 accept", "ip daddr 224.0.0.0/4 ip ttl 0-1 accept"]
    # One rule per arriving TTL 2-255, each taking exactly one off and ending the chain
    # (goto): no datagram meets a second decrement.
    assert v4[3:] == [
        f"ip daddr 224.0.0.0/4 ip ttl {n} ip ttl set {n - 1} goto v4_n1" for n in range(2, 256)
    ]
    v6 = chain(ruleset, "in6_n1")
    assert v6[1:3] == [
        "ip6 daddr & ff0f:: == { ff00::, ff01::, ff02:: } accept",
        "ip6 daddr ff00::/8 ip6 hoplimit 0-1 accept",
    ]
    assert v6[-1] == "ip6 daddr ff00::/8 ip6 hoplimit 255 ip6 hoplimit set 254 goto v6_n1"


def test_netfilter_routes_copy_out_of_each_port_past_its_threshold() -> None:
    # Arrived with N > T is N - 1 >= T after the decrement; never back out of the inbound
    # port; (S,G) before (*,G) whatever the order given.
    ruleset = netfilter_ruleset(PORTS, [STAR_G, SG])
    assert chain(ruleset, "v4_n1") == [
        "ip saddr 10.201.1.1 ip daddr 232.1.1.1 jump v4_n1_route0",
        "ip daddr 239.0.0.0/8 jump v4_n1_route1",
    ]
    assert chain(ruleset, "v4_n1_route0") == ['ip ttl >= 31 dup to "n2"', "accept"]
    assert chain(ruleset, "v4_n1_route1") == [
        'ip ttl >= 31 dup to "n2"',
        'ip ttl >= 1 dup to "n3"',
        "accept",
    ]
    # Ports and families without routes get no chains: they forward nothing.
    assert "in6_n1" not in ruleset
    assert "in4_n2" not in ruleset
    # Chains are defined before the chains that jump to them.
    assert ruleset.index("chain v4_n1_route0") < ruleset.index("chain v4_n1 ")
    assert ruleset.index("chain v4_n1 ") < ruleset.index("chain in4_n1")


def test_netfilter_ipv6_source_routes() -> None:
    route = Route(
        "n2",
        ipaddress.ip_network("ff35::7:7:7"),
        ("n1",),
        ipaddress.ip_address("fd00:a10c:2::1"),
    )
    ruleset = netfilter_ruleset(PORTS, [route])
    assert chain(ruleset, "v6_n2") == [
        "ip6 saddr fd00:a10c:2::1 ip6 daddr ff35::7:7:7 jump v6_n2_route0"
    ]
    assert chain(ruleset, "v6_n2_route0") == ['ip6 hoplimit >= 1 dup to "n1"', "accept"]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: Route("n1", ipaddress.ip_network("10.0.0.0/8"), ("n2",)), "not a multicast"),
        (
            lambda: Route(
                "n1", ipaddress.ip_network("ff15::1"), ("n2",), ipaddress.ip_address("10.0.0.1")
            ),
            "not of the family",
        ),
        (lambda: Route("n1", ipaddress.ip_network("239.1.1.1"), ()), "goes nowhere"),
        (
            lambda: Route("n1", ipaddress.ip_network("239.1.1.1"), ("n1", "n2")),
            "back out of n1",
        ),
    ],
)
def test_routes_refuse_what_cannot_be_forwarded(make: Callable[[], Route], words: str) -> None:
    with pytest.raises(lab.LabError, match=words):
        make()


def test_routes_name_ports_of_the_router() -> None:
    route = Route("n1", ipaddress.ip_network("239.1.1.1"), ("n9",))
    for render in (smcroute_conf, netfilter_ruleset):
        with pytest.raises(lab.LabError, match="n9, not a port of the router"):
            render(PORTS, [route])


BASE = "routers r1\nhosts a b\nnet 1 a r1\nnet 2 r1 b\n"


def test_route_statements_are_read() -> None:
    plan = lab.parse_description(
        BASE + "route r1 from 1 to 2 group 232.1.1.1 source a\n"
        "route r1 from 2 to 1 group ff15::/16 source fd00::9\n"
        "route r1 from 1 to 2 group 239.0.0.0/8\n"
    )
    assert plan.routes == (
        lab.RoutePlan("r1", 1, (2,), "232.1.1.1", "a", 5),
        lab.RoutePlan("r1", 2, (1,), "ff15::/16", "fd00::9", 6),
        lab.RoutePlan("r1", 1, (2,), "239.0.0.0/8", None, 7),
    )


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("route r1 from 1 to 2", "a route reads"),
        ("route r1 from 1 2 group 239.1.1.1", "a route reads"),
        ("route r1 from 1 to 2 group 239.1.1.1 from a", "a route reads"),
        ("route ghost from 1 to 2 group 239.1.1.1", "'ghost' is not declared"),
        ("route a from 1 to 2 group 239.1.1.1", "a is not a router"),
        ("route r1 from 1 to 1 group 239.1.1.1", "never sends back out of net 1"),
        ("route r1 from 1 to 2 2 group 239.1.1.1", "outgoing net twice"),
        ("route r1 from 1 to 3 group 239.1.1.1", "router r1 is not on net 3"),
        ("route r1 from 0 to 2 group 239.1.1.1", "net '0' is not a number 1-255"),
        ("route r1 from 1 to 2 group 10.1.1.1", "'10.1.1.1' is not a multicast"),
        ("route r1 from 1 to 2 group 239.1.1.1/33", "is not a group or group prefix"),
        ("route r1 from 1 to 2 group 239.1.1.1 source r1", "r1 is a router, not a host"),
        ("route r1 from 1 to 2 group 239.1.1.1 source ghost", "neither a host nor an address"),
        ("route r1 from 1 to 2 group 239.1.1.1 source fd00::1", "not a unicast address of"),
        ("route r1 from 1 to 2 group 239.1.1.1 source 239.2.2.2", "not a unicast address of"),
    ],
)
def test_route_statements_refused_name_the_line(line: str, words: str) -> None:
    with pytest.raises(lab.LabError, match=re.escape(words)) as caught:
        lab.parse_description(BASE + line)
    assert str(caught.value).startswith("line 5: "), caught.value
