"""Bad input and kernel refusals: typed errors that name the value; the endpoint stays usable."""

from __future__ import annotations

import errno
import socket

import pytest

import aiomcast
from aiomcast.testing import lab
from tests.helpers import Link, collect, member, nothing_arrives

pytestmark = pytest.mark.asyncio

BAD_GROUPS = ["10.0.0.1", "224.0.0.0", "240.0.0.1", "ff02::1:zz", "not-an-ip"]
BAD_PORTS_FOR_SENDER: list[object] = [0, -1, 70000, "x"]
BAD_TTLS: list[object] = [-1, 256, "x", 1.5, True]


async def _still_works(link: Link, rx: aiomcast.Receiver | aiomcast.Endpoint) -> None:
    async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
        await tx.send(b"still works")
        assert [d.payload for d in await collect(rx, 1)] == [b"still works"]


@pytest.mark.parametrize("group", BAD_GROUPS)
async def test_bad_group_is_refused_and_the_endpoint_stays_usable(link: Link, group: str) -> None:
    with pytest.raises(aiomcast.InvalidGroupError) as info:
        await aiomcast.open_receiver(group, 0, interface=link.interface)
    assert repr(group) in str(info.value)
    with pytest.raises(aiomcast.InvalidGroupError):
        await aiomcast.open_sender(group, 5000)
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        with pytest.raises(aiomcast.InvalidGroupError, match="group"):
            rx.join(group)
        with pytest.raises(aiomcast.InvalidGroupError):
            rx.leave(group)
        await _still_works(link, rx)


@pytest.mark.parametrize("port", BAD_PORTS_FOR_SENDER)
async def test_bad_sender_port_is_refused(link: Link, port: object) -> None:
    with pytest.raises(aiomcast.InvalidPortError) as info:
        await aiomcast.open_sender(link.group, port)  # type: ignore[arg-type]
    assert str(port) in str(info.value)
    async with aiomcast.open_sender(link.group, 5000, interface=link.interface) as tx:
        with pytest.raises(aiomcast.InvalidPortError, match=str(port)):
            await tx.send(b"x", link.group, port)  # type: ignore[arg-type]
        assert tx.stats.sent == 0


@pytest.mark.parametrize("port", [-1, 70000])
async def test_bad_receiver_port_is_refused(link: Link, port: int) -> None:
    with pytest.raises(aiomcast.InvalidPortError, match=str(port)):
        await aiomcast.open_receiver(link.group, port, interface=link.interface)


@pytest.mark.parametrize("ttl", BAD_TTLS)
async def test_bad_ttl_is_refused_and_the_ttl_is_unchanged(link: Link, ttl: object) -> None:
    # seed S7: any TTL 0-255, nothing else.
    with pytest.raises(aiomcast.InvalidTTLError) as info:
        await aiomcast.open_sender(link.group, 5000, ttl=ttl)
    assert str(ttl) in str(info.value)
    async with aiomcast.open_sender(link.group, 5000, interface=link.interface, ttl=5) as tx:
        with pytest.raises(aiomcast.InvalidTTLError):
            tx.ttl = ttl
        assert tx.ttl == 5


async def test_unknown_interface_is_refused(link: Link) -> None:
    with pytest.raises(aiomcast.InterfaceError, match="'nope0' does not exist"):
        await aiomcast.open_receiver(link.group, 0, interface="nope0")
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        with pytest.raises(aiomcast.InterfaceError, match="nope0"):
            rx.join(link.other_group(), "nope0")
        assert len(rx.memberships) == 1
        await _still_works(link, rx)
    async with aiomcast.open_sender(link.group, 5000, interface=link.interface) as tx:
        with pytest.raises(aiomcast.InterfaceError, match="nope0"):
            tx.interface = "nope0"
        assert tx.interface is not None
        assert tx.interface.name == link.interface


async def test_bad_queue_and_overflow_are_refused(link: Link) -> None:
    for size in (0, -1, True, "10"):
        with pytest.raises(aiomcast.InvalidArgumentError, match="queue_size"):
            await aiomcast.open_receiver(link.group, 0, queue_size=size)  # type: ignore[arg-type]
    with pytest.raises(aiomcast.InvalidArgumentError, match="'sideways'"):
        await aiomcast.open_receiver(link.group, 0, overflow="sideways")


async def test_no_group_and_no_family_is_refused() -> None:
    with pytest.raises(aiomcast.InvalidArgumentError, match="family"):
        await aiomcast.open_receiver(None, 0)
    with pytest.raises(aiomcast.InvalidArgumentError, match="'ipv5'"):
        await aiomcast.open_receiver(None, 0, family="ipv5")


async def test_ipv6_on_loopback_is_refused() -> None:
    # IPv6 multicast does not loop back on lo (measured here): refuse it up front.
    with pytest.raises(aiomcast.InterfaceError, match="loop back"):
        await aiomcast.open_receiver("ff12::1", 0, interface="lo")


async def test_sender_without_destination_and_sender_errors(link: Link) -> None:
    async with aiomcast.open_endpoint(None, 0, family=link.family, interface=link.interface) as ep:
        with pytest.raises(aiomcast.InvalidArgumentError, match="no default destination"):
            await ep.send(b"where to?")
        assert ep.destination is None


# -- kernel refusals, in namespaces the tests build (root) ------------------------------------


async def test_join_without_interface_or_route_is_enodev(netlab: lab.Lab) -> None:
    # Pinned: with no interface given, the kernel picks one by routing the group; in a host
    # with no route for it, IP_ADD_MEMBERSHIP fails with ENODEV. The error says so and how to
    # fix it, and nothing is left open.
    host = netlab.host("noroute")
    with host.entered():
        with pytest.raises(aiomcast.KernelError) as info:
            await aiomcast.open_receiver("239.1.2.3", 0)
        err = info.value
        assert err.errno == errno.ENODEV
        assert err.group == "239.1.2.3"
        assert err.interface == "default"
        assert "interface=" in err.hint
        assert isinstance(err, OSError)
        assert isinstance(err.__cause__, OSError)
        assert "ENODEV" in str(err)


async def test_sender_without_route_is_enetunreach(netlab: lab.Lab) -> None:
    host = netlab.host("noroute")
    with host.entered():
        async with aiomcast.open_sender("239.1.2.3", 5000) as tx:
            with pytest.raises(aiomcast.KernelError) as info:
                await tx.send(b"nowhere")
            assert info.value.errno == errno.ENETUNREACH
            assert "route" in info.value.hint
            assert tx.stats.send_errors == 1
            assert tx.stats.sent == 0
            # still usable once an interface is set
            tx.interface = "lo"
            await tx.send(b"somewhere")
            assert tx.stats.sent == 1


async def test_twenty_first_join_is_enobufs_naming_the_sysctl(netlab: lab.Lab) -> None:
    # net.ipv4.igmp_max_memberships defaults to 20 memberships per socket.
    host = netlab.host("limit")
    peer = netlab.host("peer")
    ends = netlab.link(host, peer)
    with host.entered():
        limit = int(host.run("sysctl", "-n", "net.ipv4.igmp_max_memberships").stdout)
        assert limit == 20
        async with aiomcast.open_receiver(None, 0, family="ipv4", interface=ends.a_name) as rx:
            for n in range(limit):
                rx.join(f"239.2.0.{n + 1}")
            with pytest.raises(aiomcast.KernelError) as info:
                rx.join("239.2.0.99")
            assert info.value.errno == errno.ENOBUFS
            assert "igmp_max_memberships" in str(info.value)
            assert "sysctl -w net.ipv4.igmp_max_memberships=N" in info.value.hint
            assert len(rx.memberships) == limit
            assert member("ipv4", ends.a_name, "239.2.0.20")
            assert not member("ipv4", ends.a_name, "239.2.0.99")
            rx.leave("239.2.0.1")
            rx.join("239.2.0.99")  # room again


def _join_until_refused(
    rx: aiomcast.Receiver, pattern: str, most: int
) -> tuple[int, aiomcast.KernelError]:
    for joined in range(most):
        try:
            rx.join(pattern.format(joined + 1))
        except aiomcast.KernelError as exc:
            return joined, exc
    raise AssertionError(f"{most} joins and no refusal")


async def test_ipv6_membership_limit_is_optmem_max_enomem(netlab: lab.Lab) -> None:
    # Pinned (Linux 6.18): IPv6 has no per-socket membership count (no mld sysctl like
    # igmp_max_memberships); each membership takes 56 bytes of the socket's option memory,
    # bounded by net.core.optmem_max (per namespace, default 131072: 2340 joins on a plain
    # socket), and the join past it fails with ENOMEM, not ENOBUFS. IPv4 memberships take 48
    # bytes of it (2730 with igmp_max_memberships raised). The error names the sysctl.
    host = netlab.host("limit6")
    peer = netlab.host("peer")
    ends = netlab.link(host, peer)
    assert int(host.run("sysctl", "-n", "net.core.optmem_max").stdout) == 131072
    assert not host.run("sysctl", "-n", "net.ipv6.mld_max_memberships", check=False).stdout
    host.run("sysctl", "-qw", "net.core.optmem_max=4096")
    with host.entered():
        async with aiomcast.open_receiver(None, 0, family="ipv6", interface=ends.a_name) as rx:
            joined, err = _join_until_refused(rx, "ff12::7:{:x}", 4096 // 56 + 1)
            assert err.errno == errno.ENOMEM
            assert "net.core.optmem_max" in str(err)
            assert "sysctl -w net.core.optmem_max=N" in err.hint
            # the host-scope guard's socket filter uses a little of the same memory
            assert 4096 // 56 - 8 <= joined <= 4096 // 56
            assert len(rx.memberships) == joined
            assert member("ipv6", ends.a_name, f"ff12::7:{joined:x}")
            host.run("sysctl", "-qw", f"net.core.optmem_max={4096 + 56}")
            rx.join(f"ff12::7:{joined + 1:x}")  # room for one more


async def test_interface_without_multicast_flag_is_refused(netlab: lab.Lab) -> None:
    host = netlab.host("nomc")
    ends = netlab.link(netlab.local, host, multicast=False)
    for group in ("239.1.2.3", "ff12::1"):
        with pytest.raises(aiomcast.InterfaceError, match="IFF_MULTICAST"):
            await aiomcast.open_receiver(group, 0, interface=ends.a_name)


async def test_ipv4_group_on_interface_without_ipv4_is_refused(netlab: lab.Lab) -> None:
    host = netlab.host("v6only")
    ends = netlab.link(netlab.local, host, ipv4=False)
    with pytest.raises(aiomcast.InterfaceError, match="no IPv4 address"):
        await aiomcast.open_receiver("239.1.2.3", 0, interface=ends.a_name)
    with pytest.raises(aiomcast.InterfaceError, match="no IPv4 address"):
        await aiomcast.open_sender("239.1.2.3", 5000, interface=ends.a_name)
    # the same interface carries IPv6 multicast
    async with aiomcast.open_receiver("ff12::1", 0, interface=ends.a_name) as rx:
        assert member("ipv6", ends.a_name, "ff12::1")
        assert rx.memberships


async def test_leave_after_interface_vanished_is_not_an_error(netlab: lab.Lab) -> None:
    host = netlab.host("gone")
    ends = netlab.link(netlab.local, host)
    rx = await aiomcast.open_receiver("239.1.2.3", 0, interface=ends.a_name)
    netlab.local.ip("link", "del", ends.a_name)
    await rx.aclose()  # leaving a membership whose interface is gone does not fail the close
    assert rx.memberships == frozenset()


# -- findings of the review, pinned -----------------------------------------------------------


async def test_adopted_bound_socket_receives_only_its_groups(link: Link) -> None:
    # An already-bound socket given with sock= still gets IP_MULTICAST_ALL off.
    raw = socket.socket(link.fam, socket.SOCK_DGRAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    raw.bind(("0.0.0.0" if link.family == "ipv4" else "::", 0))
    port = raw.getsockname()[1]
    async with (
        aiomcast.open_receiver(link.group, port, interface=link.interface, sock=raw) as mine,
        aiomcast.open_receiver(link.other_group(), port, interface=link.interface) as theirs,
        aiomcast.open_sender(link.other_group(), port, interface=link.interface) as tx,
    ):
        await tx.send(b"not yours")
        assert [d.payload for d in await collect(theirs, 1)] == [b"not yours"]
        assert await nothing_arrives(mine)


async def test_adopted_socket_on_another_port_is_refused(link: Link) -> None:
    raw = socket.socket(link.fam, socket.SOCK_DGRAM)
    raw.bind(("0.0.0.0" if link.family == "ipv4" else "::", 0))
    bound = raw.getsockname()[1]
    with pytest.raises(aiomcast.InvalidSocketError, match=f"bound to port {bound}"):
        await aiomcast.open_receiver(link.group, bound + 1 if bound < 65535 else 1, sock=raw)
    assert raw.fileno() == -1  # the endpoint owned it from the call on; a failed open closes it


async def test_same_membership_spelled_twice_is_already_joined(link: Link) -> None:
    async with aiomcast.open_receiver(None, 0, family=link.family) as rx:
        rx.join(link.group, link.interface)
        index = socket.if_nametoindex(link.interface)
        with pytest.raises(aiomcast.AlreadyJoinedError):
            rx.join(link.group, index)
        if link.family == "ipv6":
            zoned = f"{link.group}%{link.interface}"
            with pytest.raises(aiomcast.AlreadyJoinedError):
                rx.join(zoned)
            rx.leave(zoned)  # the same membership, spelled with a zone
            assert rx.memberships == frozenset()


async def test_join_without_interface_where_the_route_picks_a_joined_one(netlab: lab.Lab) -> None:
    host = netlab.host("routed")
    ends = netlab.link(host, netlab.host("peer"))
    host.ip("route", "add", "224.0.0.0/4", "dev", ends.a_name)
    with host.entered():
        async with aiomcast.open_receiver(None, 0, family="ipv4") as rx:
            rx.join("239.1.2.3", ends.a_name)
            with pytest.raises(aiomcast.AlreadyJoinedError, match="kernel says so"):
                rx.join("239.1.2.3")  # the route picks the same interface
            assert len(rx.memberships) == 1


@pytest.mark.parametrize("address", [123, "nope", "::1", "10.0.0.1.5"])
async def test_bad_bind_address_is_refused(link: Link, address: object) -> None:
    if link.family == "ipv6" and address == "::1":
        address = "127.0.0.1"
    with pytest.raises(aiomcast.InvalidArgumentError, match="bind address"):
        await aiomcast.open_receiver(link.group, 0, bind_address=address)  # type: ignore[arg-type]


async def test_failed_open_closes_an_adopted_socket_on_every_loop(netlab: lab.Lab) -> None:
    host = netlab.host("noroute")
    with host.entered():
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with pytest.raises(aiomcast.KernelError):
            await aiomcast.open_receiver("239.1.2.3", 0, sock=raw)  # ENODEV: no route
    assert raw.fileno() == -1


async def test_released_memoryview_is_refused(link: Link) -> None:
    view = memoryview(b"gone")
    view.release()
    async with aiomcast.open_sender(link.group, 5000, interface=link.interface) as tx:
        with pytest.raises(aiomcast.InvalidArgumentError, match="released"):
            await tx.send(view)


async def test_ring_search_bad_arguments_are_typed(link: Link) -> None:
    async with aiomcast.open_endpoint(link.group, 0, interface=link.interface) as ep:
        for wait in ("x", None, float("nan"), float("inf"), -1, True):
            with pytest.raises(aiomcast.InvalidArgumentError, match="wait"):
                await aiomcast.expanding_ring_search(ep, b"q", wait=wait)  # type: ignore[arg-type]
        with pytest.raises(aiomcast.InvalidArgumentError, match="iterable"):
            await aiomcast.expanding_ring_search(ep, b"q", ttls=5)  # type: ignore[arg-type]
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        with pytest.raises(aiomcast.InvalidArgumentError, match="Endpoint"):
            await aiomcast.expanding_ring_search(rx, b"q")  # type: ignore[arg-type]


async def test_sequence_helpers_refuse_bad_input() -> None:
    for sequence in (-1, 2**64, 1.5, "1"):
        with pytest.raises(aiomcast.InvalidArgumentError, match="sequence"):
            aiomcast.pack_sequence(sequence, 8)  # type: ignore[arg-type]
    with pytest.raises(aiomcast.InvalidArgumentError, match="bytes-like"):
        aiomcast.unpack_sequence("abcdefgh")  # type: ignore[arg-type]


async def test_lab_link_with_a_bad_name_strands_nothing(netlab: lab.Lab) -> None:
    other = netlab.host("other")
    before = netlab.local.ip("-o", "link").stdout.count("amctmp")
    with pytest.raises(lab.LabError):
        netlab.link(netlab.local, other, a_name="this-name-is-far-too-long")
    assert netlab.local.ip("-o", "link").stdout.count("amctmp") == before
    assert "amctmp" not in other.ip("-o", "link").stdout
