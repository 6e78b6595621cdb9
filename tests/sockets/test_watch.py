"""Joining on every interface, and memberships that follow the host's interfaces.

The pure parts (which interfaces to join, what changed between two listings) are tested from
tables; the kernel's behaviour and the watcher run in namespaces the tests build (root).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import ipaddress
import os
import socket
import struct

import pytest

import aiomcast
from aiomcast._interfaces import plan_joins
from aiomcast._watch import ChangeKind, diff_interfaces
from aiomcast.testing import lab
from tests.helpers import collect, member

V4 = aiomcast.Family.IPV4
V6 = aiomcast.Family.IPV6
GROUPS = {"ipv4": "239.1.2.3", "ipv6": "ff12::1:2:3"}


def _iface(
    name: str, index: int, *, v4: str = "", v6: str = "", up: bool = True, mc: bool = True
) -> aiomcast.Interface:
    return aiomcast.Interface(
        name=name,
        index=index,
        ipv4=(ipaddress.IPv4Address(v4),) if v4 else (),
        ipv6=(ipaddress.IPv6Address(v6),) if v6 else (),
        up=up,
        multicast=mc and name != "lo",
        loopback=name == "lo",
    )


HOST = [
    _iface("lo", 1, v4="127.0.0.1", v6="::1"),
    _iface("eth0", 2, v4="10.0.0.1", v6="fe80::1"),
    _iface("eth1", 3, v4="10.0.1.1", v6="fe80::2", up=False),
    _iface("eth2", 4, v6="fe80::3"),
    _iface("tun0", 5, v4="10.0.2.1", mc=False),
]


def _plan(family: aiomcast.Family, spec: object) -> list[tuple[str, str]]:
    return [
        (name, "join" if error is None else str(error))
        for name, _iface, error in plan_joins(HOST, family, spec)  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize(
    ("family", "spec", "expected"),
    [
        (
            V4,
            None,
            [
                ("lo", "join"),
                ("eth0", "join"),
                ("eth1", "interface 'eth1' is down"),
                ("eth2", "interface 'eth2' has no IPv4 address"),
            ],
        ),
        (
            V6,
            None,
            [
                ("eth0", "join"),
                ("eth1", "interface 'eth1' is down"),
                ("eth2", "join"),
            ],
        ),
        (V4, lambda i: i.name.startswith("eth0"), [("eth0", "join")]),
        (
            V4,
            ["eth0", 2, "10.0.0.1", "tun0", "nope0"],
            [
                ("eth0", "join"),
                ("tun0", "interface 'tun0' cannot carry IPv4 multicast (no IFF_MULTICAST)"),
                (
                    "nope0",
                    "interface 'nope0' does not exist (interfaces: lo (#1), eth0 (#2), "
                    "eth1 (#3), eth2 (#4), tun0 (#5))",
                ),
            ],
        ),
        (
            V6,
            "lo",
            [
                (
                    "lo",
                    "interface 'lo' cannot carry IPv6 multicast "
                    "(IPv6 multicast does not loop back on it)",
                )
            ],
        ),
        (V4, 3, [("eth1", "interface 'eth1' is down")]),
    ],
)
def test_plan_joins_table(family: aiomcast.Family, spec: object, expected: list[object]) -> None:
    assert _plan(family, spec) == expected


def test_plan_joins_refuses_other_shapes() -> None:
    with pytest.raises(aiomcast.InterfaceError, match="must be None, a predicate"):
        plan_joins(HOST, V4, 1.5)  # type: ignore[arg-type]


def test_diff_interfaces_table() -> None:
    old = {i.index: i for i in HOST}
    eth0 = HOST[1]
    new = {
        1: HOST[0],
        2: dataclasses.replace(eth0, up=False),
        4: dataclasses.replace(HOST[3], ipv4=(ipaddress.IPv4Address("10.0.3.1"),)),
        5: dataclasses.replace(HOST[4], name="tun9"),
        9: _iface("eth1", 9, v4="10.0.1.1"),
    }
    got = [
        (i.name, i.index, kinds, add, rem) for i, kinds, add, rem in diff_interfaces(old, new, V4)
    ]
    assert got == [
        ("eth1", 3, (ChangeKind.REMOVED,), (), ()),
        ("eth0", 2, (ChangeKind.DOWN,), (), ()),
        ("eth2", 4, (ChangeKind.ADDRESS_ADDED,), ("10.0.3.1",), ()),
        ("tun9", 5, (ChangeKind.RENAMED,), (), ()),
        ("eth1", 9, (ChangeKind.ADDED, ChangeKind.UP, ChangeKind.ADDRESS_ADDED), ("10.0.1.1",), ()),
    ]
    carrier = {2: dataclasses.replace(eth0, running=False)}
    assert [k for _i, k, _a, _r in diff_interfaces({2: eth0}, carrier, V6)] == [
        (ChangeKind.CARRIER_OFF,)
    ]
    assert diff_interfaces(old, old, V4) == []


# -- what the kernel does with memberships when interfaces change (pinned) --------------------


def _mreq(family: str, group: str, index: int) -> tuple[int, int, bytes]:
    if family == "ipv4":
        option = socket.IP_ADD_MEMBERSHIP
        value = socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack("@i", index)
        return socket.IPPROTO_IP, option, value
    value = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", index)
    return socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, value


def _leave_option(family: str) -> int:
    return socket.IP_DROP_MEMBERSHIP if family == "ipv4" else socket.IPV6_LEAVE_GROUP


def test_kernel_keeps_memberships_until_the_interface_is_deleted(
    netlab: lab.Lab, family: str
) -> None:
    # Pinned (Linux 6.18): a membership survives its link going down and up, losing carrier,
    # and losing and regaining every address; it dies with the interface, and an interface
    # recreated under the same name has a new index and no membership. The socket keeps a
    # stale entry that leaving by the old index removes once (then EADDRNOTAVAIL).
    host, peer = netlab.host("k"), netlab.host("peer")
    ends = netlab.link(host, peer, a_name="m0", b_name="m0")
    group = GROUPS[family]
    fam = socket.AF_INET if family == "ipv4" else socket.AF_INET6
    with host.entered():
        index = socket.if_nametoindex("m0")
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        level, option, value = _mreq(family, group, index)
        sock.setsockopt(level, option, value)
        steps = [
            ("link", "set", "m0", "down"),
            ("link", "set", "m0", "up"),
            ("addr", "flush", "dev", "m0"),
            ("addr", "add", f"{ends.a_ipv4}/24", "dev", "m0"),
            ("addr", "add", f"{ends.a_ipv6}/64", "dev", "m0", "nodad"),
        ]
        for step in steps:
            host.ip(*step)
            assert member(family, "m0", group), step
        peer.ip("link", "set", "m0", "down")  # no carrier on m0
        assert member(family, "m0", group)
        host.ip("link", "del", "m0")
        netlab.link(host, peer, a_name="m0", b_name="m0", subnet=1)
        assert not member(family, "m0", group)  # whether or not the index is the same again
        sock.setsockopt(level, _leave_option(family), value)  # the stale entry, once
        with pytest.raises(OSError, match="assign") as info:
            sock.setsockopt(level, _leave_option(family), value)
        assert info.value.errno == errno.EADDRNOTAVAIL
        sock.close()


def test_kernel_accepts_joins_on_unusable_interfaces(netlab: lab.Lab, family: str) -> None:
    # Pinned (Linux 6.18): joins on a down interface, on one without carrier and (IPv4 by
    # index; IPv6) on one without an address of the family all succeed, and the membership is
    # there at once. join_all_interfaces reports down and address-less interfaces instead of
    # joining them; following interfaces joins them once they are usable.
    host, peer = netlab.host("k"), netlab.host("peer")
    netlab.link(host, peer, a_name="d0", b_name="d0")
    netlab.link(host, peer, a_name="c0", b_name="c0")
    netlab.link(host, peer, a_name="n0", b_name="n0", ipv4=False, ipv6=False)
    host.ip("link", "set", "d0", "down")
    peer.ip("link", "set", "c0", "down")
    host.ip("link", "set", "n0", "up")
    group = GROUPS[family]
    fam = socket.AF_INET if family == "ipv4" else socket.AF_INET6
    with host.entered():
        for name in ("d0", "c0", "n0"):
            with socket.socket(fam, socket.SOCK_DGRAM) as sock:
                sock.setsockopt(*_mreq(family, group, socket.if_nametoindex(name)))
                assert member(family, name, group), name


# -- join_all_interfaces ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_join_all_interfaces_reports_each_interface(netlab: lab.Lab, family: str) -> None:
    # One join per interface; a down interface and one without an address of the family are
    # reported with the reason and do not stop the others.
    host, peer = netlab.host("h"), netlab.host("peer")
    netlab.link(host, peer, a_name="up0", b_name="up0")
    netlab.link(host, peer, a_name="down0", b_name="down0")
    netlab.link(host, peer, a_name="bare0", b_name="bare0", ipv4=False, ipv6=False)
    host.ip("link", "set", "down0", "down")
    host.run("sysctl", "-qw", "net.ipv6.conf.bare0.disable_ipv6=1")
    group = GROUPS[family]
    label = "IPv4" if family == "ipv4" else "IPv6"
    with host.entered():
        rx = await aiomcast.open_receiver(None, 0, family=family)
    async with rx:
        results = rx.join_all_interfaces(group)
        by_name = {r.interface: r for r in results}
        expected = {"up0", "down0", "bare0"} | ({"lo"} if family == "ipv4" else set())
        assert set(by_name) == expected
        assert by_name["up0"].joined
        assert by_name["up0"].membership in rx.memberships
        assert not by_name["down0"].joined
        assert isinstance(by_name["down0"].error, aiomcast.InterfaceError)
        assert str(by_name["down0"].error) == "interface 'down0' is down"
        assert str(by_name["bare0"].error) == f"interface 'bare0' has no {label} address"
        assert {m.interface.name for m in rx.memberships if m.interface} == {
            r.interface for r in results if r.joined
        }
        with host.entered():
            assert member(family, "up0", group)
            assert not member(family, "down0", group)
        again = rx.join_all_interfaces(group, ["up0", "nope0"])
        assert again[0].joined  # already a member: its membership, no error
        assert again[0].error is None
        assert isinstance(again[1].error, aiomcast.InterfaceError)
        assert "'nope0' does not exist" in str(again[1].error)
        left = rx.leave_all_interfaces(group)
        assert {m.interface.name for m in left if m.interface} == {
            r.interface for r in results if r.joined
        }
        assert rx.memberships == frozenset()


@pytest.mark.asyncio
async def test_kernel_refusals_are_per_interface(netlab: lab.Lab) -> None:
    # ENOBUFS at the 21st IPv4 membership: the first interface is joined, the others say why
    # (naming the sysctl), and the memberships held stay. An interface that vanishes while the
    # loop runs is reported too.
    host, peer = netlab.host("h"), netlab.host("peer")
    names = ["e0", "e1", "e2", "e3"]
    for name in names:
        netlab.link(host, peer, a_name=name, b_name=name)
    with host.entered():
        rx = await aiomcast.open_receiver(None, 0, family="ipv4")
    async with rx:
        for n in range(19):
            rx.join(f"239.3.0.{n + 1}", "e0")
        results = rx.join_all_interfaces("239.3.1.1", ["e1", "e2", "e3"])
        assert [r.joined for r in results] == [True, False, False]
        for result in results[1:]:
            assert isinstance(result.error, aiomcast.KernelError)
            assert result.error.errno == errno.ENOBUFS
            assert "net.ipv4.igmp_max_memberships" in str(result.error)
        assert len(rx.memberships) == 20
        rx.leave_all_interfaces("239.3.1.1")

        def vanishing(interface: aiomcast.Interface) -> bool:
            if interface.name == "e1":
                host.ip("link", "del", "e2")  # gone before its turn comes
            return interface.name in ("e1", "e2", "e3")

        results = rx.join_all_interfaces("239.3.1.2", vanishing)
        outcome = {r.interface: r for r in results}
        assert outcome["e1"].joined
        assert not outcome["e2"].joined
        assert isinstance(outcome["e2"].error, aiomcast.InterfaceError | aiomcast.KernelError)
        assert "e2" in str(outcome["e2"].error)
        assert not outcome["e3"].joined  # the limit again: 19 + e1 = 20
        assert isinstance(outcome["e3"].error, aiomcast.KernelError)


# -- following interfaces ---------------------------------------------------------------------


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _next_change(
    watcher: aiomcast.InterfaceWatcher, want: ChangeKind, name: str, timeout: float = 5.0
) -> aiomcast.InterfaceChange:
    async with asyncio.timeout(timeout):
        async for change in watcher:
            if change.interface == name and want in change.kinds:
                return change
    raise AssertionError(f"the watcher ended before {want} on {name}")


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["netlink", "polling"])
async def test_watcher_leaves_nothing_behind(netlab: lab.Lab, mode: str) -> None:
    host = netlab.host("h")
    with host.entered():
        before_fds, before_tasks = _fds(), len(asyncio.all_tasks())
        rx = await aiomcast.open_receiver(None, 0, family="ipv4")
        watcher = rx.follow_interfaces(poll_interval=0.05 if mode == "polling" else None)
        assert watcher.mode == mode
        assert rx.follow_interfaces() is watcher
        assert _fds() == before_fds + (2 if mode == "netlink" else 1)
        await rx.aclose()
        assert watcher.closed
        assert _fds() == before_fds
        assert len(asyncio.all_tasks()) == before_tasks
        assert [c async for c in watcher] == []  # iteration ends with the endpoint


@pytest.mark.asyncio
async def test_watcher_rejoins_a_recreated_interface(netlab: lab.Lab, family: str) -> None:
    # Interface deleted: its memberships are forgotten (and left, so the socket's limit is
    # not used up by stale entries); recreated under the same name: rejoined.
    host, peer = netlab.host("h"), netlab.host("peer")
    netlab.link(host, peer, a_name="r0", b_name="r0", subnet=1)
    group = GROUPS[family]
    with host.entered():
        rx = await aiomcast.open_receiver(group, 0, interface="r0", follow_interfaces=True)
    async with rx:
        watcher = rx.interface_watcher
        assert watcher is not None
        assert watcher.mode == "netlink"
        old = next(iter(rx.memberships))
        host.ip("link", "del", "r0")
        removed = await _next_change(watcher, ChangeKind.REMOVED, "r0")
        assert removed.forgotten == (old,)
        assert rx.memberships == frozenset()
        assert watcher.waiting == frozenset({(aiomcast.Group(group), "r0")})
        netlab.link(host, peer, a_name="r0", b_name="r0", subnet=1)
        async with asyncio.timeout(5):
            while not rx.memberships:
                await _next_change(watcher, ChangeKind.ADDRESS_ADDED, "r0")
        (new,) = rx.memberships
        assert new.interface is not None
        assert old.interface is not None
        assert (new.group, new.interface.name) == (old.group, "r0")
        assert new.interface.index != old.interface.index
        assert watcher.waiting == frozenset()
        with host.entered():
            assert member(family, "r0", group)
        stats = watcher.stats
        assert (stats.forgotten, stats.joined, stats.failed) == (1, 1, 0)
        assert stats.notifications > 0
        assert any("joined" in str(c) for c in watcher.changes)


@pytest.mark.asyncio
async def test_watcher_joins_interfaces_that_become_usable(netlab: lab.Lab, family: str) -> None:
    host, peer = netlab.host("h"), netlab.host("peer")
    netlab.link(host, peer, a_name="u0", b_name="u0")
    netlab.link(host, peer, a_name="late0", b_name="late0")
    host.ip("link", "set", "late0", "down")
    group = GROUPS[family]
    with host.entered():
        rx = await aiomcast.open_receiver(None, 0, family=family, follow_interfaces=True)
    async with rx:
        watcher = rx.interface_watcher
        assert watcher is not None
        first = {r.interface: r.joined for r in rx.join_all_interfaces(group)}
        assert first["u0"]
        assert not first["late0"]
        host.ip("link", "set", "late0", "up")
        change = await _next_change(watcher, ChangeKind.UP, "late0")
        assert [m.group for m in change.joined] == [aiomcast.Group(group)]
        host.ip("link", "set", "u0", "down")
        down = await _next_change(watcher, ChangeKind.DOWN, "u0")
        assert [m.interface.name for m in down.kept if m.interface] == ["u0"]
        assert "kept" in str(down)
        netlab.link(host, peer, a_name="new0", b_name="new0")
        async with asyncio.timeout(5):
            while not any(m.interface and m.interface.name == "new0" for m in rx.memberships):
                await _next_change(watcher, ChangeKind.UP, "new0")
        with host.entered():
            for name in ("u0", "late0", "new0"):
                assert member(family, name, group), name


# -- traffic keeps flowing: the lab proof -----------------------------------------------------


@pytest.mark.asyncio
async def test_reception_resumes_after_link_flap_and_recreation(
    netlab: lab.Lab, family: str
) -> None:
    # With a sender on host a sending every 20 ms, the receiver on host b follows its
    # interface: after its link goes down and up, and after the interface is deleted and
    # recreated (a new index), datagrams arrive again without any call by the user.
    a, b = netlab.host("a"), netlab.host("b")
    netlab.link(a, b, a_name="w0", b_name="w0", subnet=1)
    group = GROUPS[family]
    with b.entered():
        rx = await aiomcast.open_receiver(group, 0, interface="w0", follow_interfaces=True)
    with a.entered():
        tx = await aiomcast.open_sender(group, rx.port, interface="w0")
    sent = 0

    async def keep_sending() -> None:
        nonlocal sent
        while True:
            try:
                await tx.send(sent.to_bytes(4, "big"))
                sent += 1
            except aiomcast.KernelError:
                # a's end went away with the pair: point the sender at the new one
                with a.entered(), _suppress_missing():
                    tx.interface = "w0"
            await asyncio.sleep(0.02)

    async with rx, tx:
        watcher = rx.interface_watcher
        assert watcher is not None
        task = asyncio.create_task(keep_sending())
        try:
            assert len(await collect(rx, 3, 3.0)) == 3
            b.ip("link", "set", "w0", "down")
            await _next_change(watcher, ChangeKind.DOWN, "w0")
            b.ip("link", "set", "w0", "up")
            await _drain(rx)
            assert len(await collect(rx, 3, 5.0)) == 3, "no datagrams after down / up"
            b.ip("link", "del", "w0")
            await _next_change(watcher, ChangeKind.REMOVED, "w0")
            netlab.link(a, b, a_name="w0", b_name="w0", subnet=1)
            await _drain(rx)
            got = await collect(rx, 3, 5.0)
            assert len(got) == 3, f"no datagrams after recreation: {watcher.changes}"
            assert watcher.stats.joined == 1
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class _suppress_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return isinstance(exc[1], aiomcast.InterfaceError)


async def _drain(rx: aiomcast.Receiver) -> None:
    await asyncio.sleep(0)
    while rx.stats.queued:
        await rx.receive()
