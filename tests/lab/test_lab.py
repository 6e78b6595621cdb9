"""Routed multicast in the lab: real routers between namespaces, on every forwarding engine.

Every routed test runs once per engine this kernel has (the ``engine`` fixture): ipmr (the
kernel's multicast router, driven by smcroute) and netfilter (nftables rules on each router
interface's ingress hook). Pins of ipmr's own behaviour run only where ipmr exists.

The scope chain below makes the TTL table of S9 real: each boundary router's threshold is
the scope's initial TTL minus the hops already taken, so an initial TTL t reaches exactly the
receivers that ``scope_of_ttl(t)`` names.

    src ── h1          h2            h3            h4            h5
      \\   /           |             |             |             |
     net 1 ── r1 ─ net 2 ── r2 ─ net 3 ── r3 ─ net 4 ── r4 ─ net 5
              thr 1         thr 31        thr 62        thr 125
     subnet        site          region        continent     unrestricted
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import aiomcast
from aiomcast.testing import lab
from aiomcast.testing._routing import (
    IP6_THRESHOLD_TABLE,
    NETFILTER_TABLE,
    Ipmr,
    default_routes,
    smcroute_conf,
)
from tests.helpers import collect, nothing_arrives, start_capture, stop_capture

pytestmark = pytest.mark.asyncio

SCOPE_CHAIN = """
routers r1 r2 r3 r4
hosts src h1 h2 h3 h4 h5
net 1 src h1 r1
net 2 r1/1 h2 r2          # leaves the subnet with TTL > 1
net 3 r2/31 h3 r3         # leaves the site: arrived at r2 (one hop on) with TTL > 31
net 4 r3/62 h4 r4         # leaves the region: two hops on, TTL > 62
net 5 r4/125 h5           # leaves the continent: three hops on, TTL > 125
"""

#: Which receivers each scope reaches in SCOPE_CHAIN.
REACH = {
    aiomcast.TTLScope.SUBNET: {"h1"},
    aiomcast.TTLScope.SITE: {"h1", "h2"},
    aiomcast.TTLScope.REGION: {"h1", "h2", "h3"},
    aiomcast.TTLScope.CONTINENT: {"h1", "h2", "h3", "h4"},
    aiomcast.TTLScope.UNRESTRICTED: {"h1", "h2", "h3", "h4", "h5"},
}
GROUPS = {"ipv4": "239.5.5.5", "ipv6": "ff15::5:5:5"}


@pytest.fixture
def net(routed: lab.Lab) -> lab.Lab:
    return routed


async def drain(receivers: dict[str, aiomcast.Receiver], wait: float = 0.3) -> set[str]:
    """Names of the receivers that got at least one datagram within ``wait``; empties them."""
    await asyncio.sleep(wait)
    reached = {name for name, rx in receivers.items() if rx.stats.queued}
    for rx in receivers.values():
        while rx.stats.queued:
            await rx.receive()
    return reached


async def open_members(
    net: lab.Lab, group: str, port: int, members: dict[str, int]
) -> dict[str, aiomcast.Receiver]:
    """A receiver joined to ``group`` in each named host, on its interface on the given net."""
    receivers = {}
    for name, number in members.items():
        host = net[name]
        with host.entered():
            receivers[name] = await aiomcast.open_receiver(
                group, port, interface=host.iface(number)
            )
    return receivers


@pytest_asyncio.fixture
async def scope_chain(
    net: lab.Lab, family: str
) -> AsyncIterator[tuple[aiomcast.Sender, dict[str, aiomcast.Receiver]]]:
    net.build(SCOPE_CHAIN)
    group = GROUPS[family]
    receivers = await open_members(net, group, 7000, {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5})
    with net["src"].entered():
        tx = await aiomcast.open_sender(group, 7000, interface="n1", ttl=255)
    # The first datagram of a (source, group) makes each router install its route.
    await tx.send(b"warm up")
    assert await drain(receivers, 0.5) == REACH[aiomcast.TTLScope.UNRESTRICTED]
    try:
        yield tx, receivers
    finally:
        await tx.aclose()
        for rx in receivers.values():
            await rx.aclose()


#: Initial TTLs on both sides of every threshold of SCOPE_CHAIN.
BOUNDARY_TTLS = [1, 2, 31, 32, 33, 34, 63, 64, 65, 66, 127, 128, 129, 130, 255]


async def test_ttl_reaches_exactly_the_scope_of_the_table(
    scope_chain: tuple[aiomcast.Sender, dict[str, aiomcast.Receiver]],
) -> None:
    # seed S7 (the TTL sets the reach), S9 (the conventional scopes, enforced as router
    # thresholds), S1 (members on several subnets joined by routers): both sides of every
    # threshold. One lab per family and loop; every TTL checked, every mismatch reported.
    tx, receivers = scope_chain
    observed = {}
    for ttl in BOUNDARY_TTLS:
        tx.ttl = ttl
        await tx.send(f"ttl {ttl}".encode())
        observed[ttl] = await drain(receivers)
    expected = {ttl: REACH[aiomcast.scope_of_ttl(ttl)] for ttl in BOUNDARY_TTLS}
    assert observed == expected


async def test_ttl_is_decremented_once_per_router(net: lab.Lab, family: str) -> None:
    # seed S9: each router hop takes one off the TTL (hop limit).
    net.build(SCOPE_CHAIN)
    group = GROUPS[family]
    with net["h5"].entered():
        from tests.helpers import Link, received_ttl, ttl_probe

        probe = ttl_probe(Link(family, "n5", net["h5"].address(5, family), group), group, 7001)
    with probe, net["src"].entered():
        async with aiomcast.open_sender(group, 7001, interface="n1", ttl=200) as tx:
            await tx.send(b"warm up")
            await asyncio.to_thread(received_ttl, probe)
            await tx.send(b"counted")
            data, seen = await asyncio.to_thread(received_ttl, probe)
    assert (data, seen) == (b"counted", 200 - 4)


async def test_link_local_groups_are_never_forwarded(net: lab.Lab, family: str) -> None:
    # seed S11: routers never forward 224.0.0.0/24 (and link-local IPv6 groups), whatever the
    # TTL; the same test with a routable group is forwarded.
    net.build("routers r1\nhosts src h1 h2\nnet 1 src h1 r1\nnet 2 r1 h2\n")
    local, routable = (
        ("224.0.0.100", "239.5.5.6") if family == "ipv4" else ("ff02::100", "ff05::100")
    )
    assert not aiomcast.Group(local).forwarded_by_routers
    assert aiomcast.Group(routable).forwarded_by_routers
    for group in (local, routable):
        receivers = await open_members(net, group, 7002, {"h1": 1, "h2": 2})
        with net["src"].entered():
            tx = await aiomcast.open_sender(group, 7002, interface="n1", ttl=255)
        try:
            for _ in range(3):  # also after the router had time to install routes
                await tx.send(b"how far?")
                reached = await drain(receivers, 0.3)
            expected = {"h1"} if group == local else {"h1", "h2"}
            assert reached == expected, group
        finally:
            await tx.aclose()
            for rx in receivers.values():
                await rx.aclose()


async def test_linux_ip6mr_ignores_the_interface_threshold(ipmr_lab: lab.Lab) -> None:
    # Pinned kernel behaviour (Linux 6.18): the IPv6 multicast router accepts a per-interface
    # threshold (smcroute reports "TTL threshold 5") but forwards any hop limit above 1. The
    # lab therefore enforces IPv6 thresholds with nftables; without that rule, hop limit 2
    # crosses a threshold of 5, while IPv4 (enforced by the kernel) stops at it.
    net = ipmr_lab
    net.build("routers r1\nhosts src h1\nnet 1 src r1\nnet 2 r1/5 h1\n")
    net["r1"].run("nft", "delete", "table", "ip6", IP6_THRESHOLD_TABLE)
    for family, group in GROUPS.items():
        receivers = await open_members(net, group, 7003, {"h1": 2})
        with net["src"].entered():
            tx = await aiomcast.open_sender(group, 7003, interface="n1", ttl=255)
        try:
            await tx.send(b"warm up")
            await drain(receivers, 0.5)
            tx.ttl = 2
            await tx.send(b"hop limit 2")
            crossed = await drain(receivers)
        finally:
            await tx.aclose()
            await receivers["h1"].aclose()
        assert crossed == ({"h1"} if family == "ipv6" else set()), family


RING = """
routers r1 r2 r3
hosts searcher responder
net 1 searcher r1
net 2 r1 r2
net 3 r2 r3
net 4 r3 responder
"""


async def test_expanding_ring_search_across_three_routers(net: lab.Lab, family: str) -> None:
    # seed S10: TTL 0, 1, 2, ... until the responder three router hops away answers; the
    # search reports the smallest TTL that reached it (one per hop, plus one to arrive).
    net.build(RING)
    group = GROUPS[family]
    with net["responder"].entered():
        responder = await aiomcast.open_endpoint(group, 7004, interface="n4", ttl=255)
    with net["searcher"].entered():
        searcher = await aiomcast.open_endpoint(group, 7004, interface="n1")

    async def answer() -> None:
        async for query in responder:
            if query.payload.startswith(b"who"):
                await responder.send(b"here")

    async with responder, searcher:
        task = asyncio.create_task(answer())
        try:
            result = await aiomcast.expanding_ring_search(
                searcher,
                b"who is there?",
                max_ttl=8,
                wait=0.5,
                accept=lambda d: d.payload == b"here",
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert result.found
    assert result.ttl == 4
    # IPv6 starts at hop limit 1: hop limit 0 cannot stay on the host for ff15:: (S8).
    assert result.tried == ((0, 1, 2, 3, 4) if family == "ipv4" else (1, 2, 3, 4))


MULTIHOMED = """
routers r1
hosts m
net 1 m r1
net 2 r1 m
"""


@pytest.mark.parametrize("loopback", [True, False])
async def test_own_datagram_returns_through_the_router(
    net: lab.Lab, family: str, loopback: bool
) -> None:
    # seed S15: a host that is a member on another of its interfaces receives its own TTL > 1
    # datagram through the router, and the loopback option has no effect on that delivery.
    # Pinned kernel behaviour (Linux): IPv4 drops a datagram that arrives with one of the
    # host's own addresses as source ("martian source") unless net.ipv4.conf.IF.accept_local
    # is 1 on the receiving interface; IPv6 delivers it by default.
    net.build(MULTIHOMED)
    group = GROUPS[family]
    m = net["m"]
    with m.entered():
        rx = await aiomcast.open_receiver(group, 7005, interface="n2")
        tx = await aiomcast.open_sender(group, 7005, interface="n1", ttl=2, loopback=loopback)
    async with rx, tx:
        await tx.send(b"warm up")
        if family == "ipv4":
            assert await nothing_arrives(rx, 0.5)  # dropped as a martian source
            m.run("sysctl", "-qw", "net.ipv4.conf.n2.accept_local=1")
            await tx.send(b"warm up")
        await collect(rx, 1, 0.5)
        await tx.send(b"round trip")
        got = await collect(rx, 1)
        assert [d.payload for d in got] == [b"round trip"]
        assert got[0].source in (m.address(1, family),) or got[0].source.startswith("fe80:")
        tx.ttl = 1  # the router does not forward TTL 1: nothing comes back
        await tx.send(b"stays on net 1")
        assert await nothing_arrives(rx)


async def test_description_errors_are_clear(netlab: lab.Lab) -> None:
    net = netlab
    with pytest.raises(lab.LabError, match="'ghost' is not declared"):
        net.build("hosts a\nnet 1 a ghost\n")
    with pytest.raises(lab.LabError, match="forwarding loop"):
        net.build("routers r1 r2\nnet 1 r1 r2\nnet 2 r2 r1\n")
    with pytest.raises(lab.LabError, match="cannot read"):
        net.build("switch s1\n")
    assert net.hosts == {}


async def test_lab_leaves_nothing_behind(engine: str) -> None:
    # Every daemon stopped, every ruleset and namespace gone, also when the body fails.
    for fails in (False, True):
        with contextlib.suppress(ZeroDivisionError), lab.Lab(prefix="amct", engine=engine) as built:
            built.build(SCOPE_CHAIN)
            assert built.engine == engine
            routers = [h for h in built.hosts.values() if isinstance(h, lab.Router)]
            engines = [r.engine for r in routers]
            assert len(engines) == 4
            assert all(e is not None and e.running for e in engines)
            daemons = [e.daemon for e in engines if isinstance(e, Ipmr)]
            assert len(daemons) == (4 if engine == "ipmr" else 0)
            for router in routers:
                tables = router.run("nft", "list", "tables").stdout
                assert (NETFILTER_TABLE in tables) == (engine == "netfilter"), tables
            tag = built.tag
            if fails:
                1 / 0  # noqa: B018
        assert all(e is not None and not e.running for e in engines)
        assert all(d is not None and d.poll() is not None for d in daemons)
        assert not [n for n in lab.leftover_namespaces("amct") if n.startswith(tag)]


async def test_each_datagram_leaves_through_exactly_one_interface(
    netlab: lab.Lab, family: str
) -> None:
    # seed S12: a host with two multicast interfaces sends each datagram through one of them.
    # seed S13: the outgoing interface option moves it; resetting restores the default, which
    # follows the route for the group. Captured on both interfaces of the sending host.
    net = netlab
    net.build("hosts m h1 h2\nnet 1 m h1\nnet 2 m h2\n")
    m = net["m"]
    if family == "ipv4":
        m.ip("route", "add", "224.0.0.0/4", "dev", "n1")
    else:
        m.ip(
            "-6",
            "route",
            "add",
            "multicast",
            "ff00::/8",
            "dev",
            "n1",
            "table",
            "local",
            "metric",
            "10",
        )
    group = GROUPS[family]
    with m.entered():
        tx = await aiomcast.open_sender(group, 7008)

    async def where(payload: bytes) -> list[str]:
        captures = {name: start_capture(m, name, "udp port 7008") for name in ("n1", "n2")}
        await tx.send(payload)
        lines = {name: stop_capture(proc, settle=0.3) for name, proc in captures.items()}
        return [name for name, seen in lines.items() for _ in seen]

    async with tx:
        assert await where(b"default") == ["n1"]
        with m.entered():
            tx.interface = "n2"
        assert await where(b"chosen") == ["n2"]
        tx.interface = None
        assert await where(b"reset") == ["n1"]


FAN_OUT = """
routers r1
hosts src h2 h3 h4
net 1 src r1
net 2 r1 h2
net 3 r1 h3 h4            # a bridge: three members
"""


async def test_router_forwards_once_onto_each_other_interface(net: lab.Lab, family: str) -> None:
    # seed S12: the sender's datagram leaves its host through one interface; the router sends
    # it on once through each of its other interfaces and never back out of the one it came
    # in on. Every member behind the router, also the two on one bridge, gets it once.
    # Captured leaving each of the router's interfaces.
    net.build(FAN_OUT)
    group = GROUPS[family]
    receivers = await open_members(net, group, 7010, {"h2": 2, "h3": 3, "h4": 3})
    with net["src"].entered():
        tx = await aiomcast.open_sender(group, 7010, interface="n1", ttl=8)
    r1 = net["r1"]
    try:
        await tx.send(b"warm up")
        await drain(receivers, 0.5)
        captures = {
            name: start_capture(r1, name, "udp port 7010", direction="out")
            for name in ("n1", "n2", "n3")
        }
        await tx.send(b"fan out")
        left = {name: len(stop_capture(proc, settle=0.3)) for name, proc in captures.items()}
        got = {
            name: [d.payload for d in await collect(rx, 2, 0.3)] for name, rx in receivers.items()
        }
    finally:
        await tx.aclose()
        for rx in receivers.values():
            await rx.aclose()
    assert left == {"n1": 0, "n2": 1, "n3": 1}
    assert got == {"h2": [b"fan out"], "h3": [b"fan out"], "h4": [b"fan out"]}


async def test_engines_can_be_named_and_refuse_where_missing() -> None:
    # Each engine by name: one this kernel runs is used as asked; one it lacks is refused with
    # the missing kernel option, as is an unknown name. Without a name, ipmr wins where both
    # run, and netfilter carries the lab where the kernel has no multicast routing.
    present = lab.engines_present()
    with pytest.raises(lab.LabError, match="'mrouted' is not one of ipmr, netfilter"):
        lab.Lab(engine="mrouted")
    for name, why in present.items():
        with lab.Lab(prefix="amct", engine=name) as built:
            if why:
                with pytest.raises(lab.LabError, match=r"cannot run here: .*CONFIG_"):
                    built.build("routers r1\nhosts a b\nnet 1 a r1\nnet 2 r1 b\n")
            else:
                built.build("routers r1\nhosts a b\nnet 1 a r1\nnet 2 r1 b\n")
                assert built.engine == name
    with lab.Lab(prefix="amct") as built:
        built.build("routers r1\nhosts a b\nnet 1 a r1\nnet 2 r1 b\n")
        assert built.engine == ("ipmr" if not present["ipmr"] else "netfilter")


async def test_ipmr_configuration_is_read_by_smcrouted(netlab: lab.Lab) -> None:
    # On every kernel, ipmr or not: smcrouted's own syntax check (-F) accepts the configuration
    # the ipmr engine writes for default routes and for (S,G) and (*,G) routes of both families,
    # and refuses one that names an interface the router does not have.
    netlab.build(ROUTED_DESCRIPTION)
    r1 = netlab["r1"]
    assert isinstance(r1, lab.Router)
    with_routes = r1.effective_routes()
    assert [route.source is not None for route in with_routes] == [True, True, False, False]
    cases = [
        (smcroute_conf(r1.ports, default_routes(r1.ports)), 0),
        (smcroute_conf(r1.ports, with_routes), 0),
        (smcroute_conf(r1.ports, with_routes) + "mroute from n1 group 239.1.1.1 to n9\n", 78),
    ]
    for text, expected in cases:
        with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
            conf.write(text)
            conf.flush()
            checked = await asyncio.to_thread(r1.run, "smcrouted", "-F", conf.name, check=False)
        assert checked.returncode == expected, (text, checked.stdout, checked.stderr)


ROUTED_DESCRIPTION = """
routers r1
hosts s1 rx
net 1 s1 r1
net 2 r1/5 rx
route r1 from 1 to 2 group 232.7.7.7 source s1
route r1 from 1 to 2 group ff35::7:7:7 source s1
route r1 from 1 to 2 group 239.0.0.0/8
route r1 from 2 to 1 group ff15::/16
"""
