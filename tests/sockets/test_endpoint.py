"""Endpoints on real sockets: send, receive, join, leave, options, queue, close.

Each test runs on asyncio and uvloop, IPv4 (loopback interface) and IPv6 (veth pair in the
private namespace). Seed facts are named as ``seed Sn``.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import AsyncIterable

import pytest

import aiomcast
from tests.conftest import LOOPBACK_V4
from tests.helpers import (
    Link,
    LinkPair,
    collect,
    member,
    nothing_arrives,
    received_ttl,
    ttl_probe,
)

# Every test on aiomcast's transport (C and pure Python) and on the loop's (conftest).
pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("transport_path")]


async def test_datagram_reaches_receiver_through_async_for(link: Link) -> None:
    # seed S1, S6: one datagram sent to the group (sendto with the group as destination)
    # reaches the member.
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"hello")
            got = await collect(rx, 1)
    assert [d.payload for d in got] == [b"hello"]
    assert got[0].source_port == tx.port != 0
    assert got[0].group is None  # filled in only by the metadata receive path


async def test_every_member_receives_one_datagram(link: Link) -> None:
    # seed S1: one datagram reaches every member; receivers share the port (SO_REUSEADDR).
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx1:
        async with (
            aiomcast.open_receiver(link.group, rx1.port, interface=link.interface) as rx2,
            aiomcast.open_receiver(link.group, rx1.port, interface=link.interface) as rx3,
            aiomcast.open_sender(link.group, rx1.port, interface=link.interface) as tx,
        ):
            await tx.send(b"to all")
            results = [await collect(rx, 1) for rx in (rx1, rx2, rx3)]
    assert [[d.payload for d in r] for r in results] == [[b"to all"]] * 3


async def test_defaults_are_ttl_1_and_loopback_on(link: Link) -> None:
    # seed S7 (default TTL 1), S14 (loopback on by default), read back from the kernel.
    async with aiomcast.open_sender(link.group, 9, interface=link.interface) as tx:
        assert tx.ttl == aiomcast.DEFAULT_TTL == 1
        assert tx.loopback is aiomcast.DEFAULT_LOOPBACK is True
    raw = socket.socket(link.fam, socket.SOCK_DGRAM)
    with raw:
        # The library's defaults are the kernel's own defaults.
        async with aiomcast.open_sender(link.group, 9, sock=raw) as tx:
            assert (tx.ttl, tx.loopback) == (1, True)


@pytest.mark.parametrize("ttl", [1, 2, 32, 64, 128, 255])
async def test_ttl_applies_to_later_sends(link: Link, ttl: int) -> None:
    # seed S7: IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS 0-255 sets the TTL of later datagrams;
    # the received copy carries exactly that TTL.
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        probe = ttl_probe(link, link.group, rx.port)
        with probe:
            async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
                await tx.send(b"before")
                tx.ttl = ttl
                assert tx.ttl == ttl
                await tx.send(b"after")
                first = await asyncio.to_thread(received_ttl, probe)
                second = await asyncio.to_thread(received_ttl, probe)
    assert first == (b"before", 1)
    assert second == (b"after", ttl)


async def test_ttl_scope_names_are_accepted(link: Link) -> None:
    # seed S9: the conventional scopes are named values.
    async with aiomcast.open_sender(link.group, 9, interface=link.interface, ttl="site") as tx:
        assert tx.ttl == 32
        tx.ttl = aiomcast.TTLScope.CONTINENT
        assert tx.ttl == 128


async def test_ttl_zero_is_delivered_locally_with_loopback(link: Link) -> None:
    # seed S8: TTL 0 is sent on no subnet but delivered locally when the host is a member and
    # loopback is on. aiomcast keeps it on the host: IPv4 TTL 0 goes out of the loopback
    # interface (members joined on 127.0.0.1 get it, members on the link do not); IPv6 hop
    # limit 0 is for interface-local groups, which the kernel never transmits.
    if link.family == "ipv4":
        async with (
            aiomcast.open_receiver(link.group, 0, interface="lo") as on_lo,
            aiomcast.open_receiver(link.group, on_lo.port, interface=link.interface) as on_link,
            aiomcast.open_sender(link.group, on_lo.port, interface=link.interface, ttl=0) as tx,
        ):
            assert tx.host_scope is True
            assert tx.interface is not None
            assert tx.interface.name == link.interface  # what applies again after TTL 0
            await tx.send(b"ttl0")
            assert [d.payload for d in await collect(on_lo, 1)] == [b"ttl0"]
            on_lo_only = link.interface != "lo"  # on lo, both receivers are on lo
            if on_lo_only:
                assert await nothing_arrives(on_link)
            tx.ttl = 1  # back on the chosen interface
            assert (tx.host_scope, tx.ttl) == (False, 1)
            await tx.send(b"ttl1")
            expected = [b"ttl1"] if on_lo_only else [b"ttl0", b"ttl1"]
            assert [d.payload for d in await collect(on_link, len(expected))] == expected
        return
    local = "ff11::1:2:3"  # interface-local scope
    async with (
        aiomcast.open_receiver(local, 0, interface=link.interface) as rx,
        aiomcast.open_sender(local, rx.port, interface=link.interface, ttl=0) as tx,
    ):
        await tx.send(b"hop limit 0")
        assert [d.payload for d in await collect(rx, 1)] == [b"hop limit 0"]
        with pytest.raises(aiomcast.InvalidTTLError, match="interface-local"):
            await tx.send(b"would leave the host", link.group)
        assert tx.stats.sent == 1


async def test_loopback_off_stops_local_copies(wire_link: Link) -> None:
    # seed S14: IP_MULTICAST_LOOP 0 stops delivery to members on the sending host, for later
    # datagrams; 1 turns it back on.
    link = wire_link
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"on")
            assert [d.payload for d in await collect(rx, 1)] == [b"on"]
            tx.loopback = False
            assert tx.loopback is False
            await tx.send(b"off")
            assert await nothing_arrives(rx)
            tx.loopback = True
            await tx.send(b"on again")
            assert [d.payload for d in await collect(rx, 1)] == [b"on again"]


async def test_loopback_off_on_one_socket_keeps_other_instances_receiving(
    wire_link: Link,
) -> None:
    # seed S14: with several instances on a host, an instance that turns loopback off
    # starves the others of its datagrams; so such applications must leave it on.
    link = wire_link
    async with aiomcast.open_endpoint(link.group, 0, interface=link.interface) as one:
        async with aiomcast.open_endpoint(link.group, one.port, interface=link.interface) as two:
            one.loopback = False
            await one.send(b"from one")
            assert await nothing_arrives(two)
            one.loopback = True
            await one.send(b"from one again")
            got_two = await collect(two, 1)
            got_one = await collect(one, 1)
    assert [d.payload for d in got_two] == [b"from one again"]
    assert [d.payload for d in got_one] == [b"from one again"]


async def test_loopback_interface_ignores_loopback_off() -> None:
    # Pinned kernel behaviour (Linux): on the loopback interface IP_MULTICAST_LOOP=0 does not
    # stop local delivery, because the datagram sent out of lo comes straight back in through
    # lo like any received packet. S14's option only governs the extra local copy.
    link = LOOPBACK_V4
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with aiomcast.open_sender(
            link.group, rx.port, interface=link.interface, loopback=False
        ) as tx:
            await tx.send(b"back through lo")
            got = await collect(rx, 1)
    assert [d.payload for d in got] == [b"back through lo"]


async def test_receiver_gets_only_the_groups_it_joined(link: Link) -> None:
    # seed S4, S5: delivery follows the socket's own memberships. Linux's default
    # IP_MULTICAST_ALL=1 would hand a wildcard-bound socket every group joined by any socket
    # on the host; aiomcast turns it off.
    other = link.other_group()
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as mine:
        async with (
            aiomcast.open_receiver(other, mine.port, interface=link.interface) as theirs,
            aiomcast.open_sender(other, mine.port, interface=link.interface) as tx,
        ):
            leaky = socket.socket(link.fam, socket.SOCK_DGRAM)
            with leaky:
                leaky.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                leaky.bind(("0.0.0.0" if link.family == "ipv4" else "::", mine.port))
                leaky.settimeout(2.0)
                await tx.send(b"for the other group")
                assert [d.payload for d in await collect(theirs, 1)] == [b"for the other group"]
                assert await nothing_arrives(mine)
                # The kernel behaviour aiomcast guards against: a plain wildcard socket that
                # joined nothing receives the other socket's group.
                data = await asyncio.to_thread(leaky.recv, 100)
                assert data == b"for the other group"


async def test_join_and_leave_at_any_time_with_many_groups(link: Link) -> None:
    # seed S1 (hosts join and leave at any time), S4/S5 (ADD/DROP, JOIN/LEAVE).
    groups = [link.group, *(link.other_group(n) for n in range(1, 6))]
    async with aiomcast.open_receiver(None, 0, family=link.family, interface=link.interface) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            for group in groups:
                rx.join(group)
                assert member(link.family, link.interface, group)
            assert {m.group for m in rx.memberships} == {aiomcast.Group(g) for g in groups}
            for group in groups:
                await tx.send(group.encode(), group)
            got = await collect(rx, len(groups))
            assert sorted(d.payload.decode() for d in got) == sorted(groups)
            rx.leave(groups[0])
            assert not member(link.family, link.interface, groups[0])
            await tx.send(b"left", groups[0])
            await tx.send(b"still", groups[1])
            got = await collect(rx, 2, timeout=0.5)
            assert [d.payload for d in got] == [b"still"]
            rx.join(groups[0])  # and back again
            await tx.send(b"rejoined", groups[0])
            assert [d.payload for d in await collect(rx, 1)] == [b"rejoined"]


async def test_close_leaves_every_group(link: Link) -> None:
    groups = [link.group, link.other_group()]
    rx = await aiomcast.open_receiver(groups, 0, interface=link.interface)
    assert all(member(link.family, link.interface, g) for g in groups)
    await rx.aclose()
    assert not any(member(link.family, link.interface, g) for g in groups)
    assert rx.memberships == frozenset()
    await rx.aclose()  # idempotent


async def test_join_twice_and_leave_unjoined_are_clear_errors(link: Link) -> None:
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        with pytest.raises(aiomcast.AlreadyJoinedError, match=link.group):
            rx.join(link.group)
        with pytest.raises(aiomcast.NotJoinedError, match="not a member"):
            rx.leave(link.other_group())
        # still usable
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"usable")
            assert [d.payload for d in await collect(rx, 1)] == [b"usable"]


@pytest.mark.root("a second multicast interface (the veth pair)")
async def test_membership_is_per_group_and_interface(link: Link, local_veth: object) -> None:
    # seed S4, S5: a membership is a (group, interface) pair; one group on two interfaces is two
    # memberships, left one at a time.
    assert isinstance(local_veth, LinkPair)
    second = local_veth.peer_name
    first = link.interface
    async with aiomcast.open_receiver(None, 0, family=link.family) as rx:
        rx.join(link.group, first)
        rx.join(link.group, second)
        assert len(rx.memberships) == 2
        assert member(link.family, first, link.group)
        assert member(link.family, second, link.group)
        rx.leave(link.group, second)
        assert member(link.family, first, link.group)
        assert not member(link.family, second, link.group)


async def test_endpoint_sends_to_its_own_group_and_receives(link: Link) -> None:
    async with aiomcast.open_endpoint(link.group, 0, interface=link.interface) as ep:
        assert ep.destination == (aiomcast.Group(link.group), ep.port)
        await ep.send(b"echo")
        got = await collect(ep, 1)
        assert [d.payload for d in got] == [b"echo"]
        assert ep.stats.sent == 1
        assert ep.stats.received == 1


async def test_counters_account_for_every_datagram(link: Link) -> None:
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface, queue_size=3) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            for n in range(10):
                await tx.send(bytes([n]) * 10)
            await asyncio.sleep(0.2)
            stats = rx.stats
            assert stats.received == 10
            assert stats.received_bytes == 100
            assert stats.queued == 3
            assert stats.dropped == 7
            got = await collect(rx, 3)
            assert [d.payload[0] for d in got] == [0, 1, 2]  # drop-newest keeps the first
            stats = rx.stats
            assert stats.delivered == 3
            assert stats.received == stats.delivered + stats.dropped + stats.queued
            assert tx.stats.sent == 10
            assert tx.stats.sent_bytes == 100


async def test_drop_oldest_keeps_the_freshest(link: Link) -> None:
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, queue_size=3, overflow="drop-oldest"
    ) as rx:
        assert rx.overflow is aiomcast.Overflow.DROP_OLDEST
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            for n in range(10):
                await tx.send(bytes([n]))
            await asyncio.sleep(0.2)
            got = await collect(rx, 3)
    assert [d.payload[0] for d in got] == [7, 8, 9]
    assert rx.stats.dropped == 7


async def test_iteration_ends_on_close_after_draining(link: Link) -> None:
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"queued")
            await asyncio.sleep(0.1)
    # closed with one datagram queued: it is still delivered, then iteration ends
    got = [d.payload async for d in rx]
    assert got == [b"queued"]
    with pytest.raises(aiomcast.EndpointClosedError):
        await rx.receive()


async def test_close_wakes_a_waiting_iterator(link: Link) -> None:
    rx = await aiomcast.open_receiver(link.group, 0, interface=link.interface)

    async def consume() -> list[bytes]:
        return [d.payload async for d in rx]

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await rx.aclose()
    assert await asyncio.wait_for(task, 2) == []


async def test_cancelled_receive_loses_nothing(link: Link) -> None:
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(rx.receive(), 0.05)
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"after cancel")
            assert (await asyncio.wait_for(rx.receive(), 2)).payload == b"after cancel"


async def test_two_readers_is_an_error_not_a_race(link: Link) -> None:
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        first = asyncio.create_task(rx.receive())
        await asyncio.sleep(0.05)
        with pytest.raises(aiomcast.BusyError):
            await rx.receive()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first


async def test_two_async_for_loops_is_an_error_not_a_race(link: Link) -> None:
    # The C iterator hands queued datagrams over itself; an empty queue still goes through
    # the endpoint's wait, which refuses a second reader.
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:

        async def first_of(iterator: AsyncIterable[aiomcast.Datagram]) -> aiomcast.Datagram:
            async for datagram in iterator:
                return datagram
            raise AssertionError("the iteration ended")

        waiting = asyncio.create_task(first_of(rx))
        await asyncio.sleep(0.05)
        with pytest.raises(aiomcast.BusyError):
            await first_of(rx)
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"to the first")
            got = await asyncio.wait_for(waiting, 2)
    assert got.payload == b"to the first"


async def test_anext_and_receive_share_one_queue_in_order(link: Link) -> None:
    # anext() of the iterator, receive() and a batch all take from the same queue, in order.
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            for n in range(6):
                await tx.send(bytes([n]))
            iterator = aiter(rx)
            first = await asyncio.wait_for(anext(iterator), 2)
            await asyncio.sleep(0.05)  # the other five are queued by now
            second = await rx.receive()
            third = await anext(iterator)
            rest = await anext(aiter(rx.batches()))
    assert [d.payload for d in (first, second, third, *rest)] == [bytes([n]) for n in range(6)]


async def test_aclose_releases_the_port_at_once(link: Link) -> None:
    rx = await aiomcast.open_receiver(link.group, 0, interface=link.interface, reuse_port=False)
    port = rx.port
    await rx.aclose()
    assert rx.socket.fileno() == -1
    again = socket.socket(link.fam, socket.SOCK_DGRAM)
    with again:
        again.bind(("0.0.0.0" if link.family == "ipv4" else "::", port))  # no SO_REUSEADDR


async def test_port_in_use_is_a_kernel_error_with_hint(link: Link) -> None:
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, reuse_port=False
    ) as rx:
        with pytest.raises(aiomcast.KernelError) as info:
            await aiomcast.open_receiver(
                link.group, rx.port, interface=link.interface, reuse_port=False
            )
    assert info.value.errno == errno.EADDRINUSE
    assert "address in use" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


async def test_existing_datagram_socket_is_adopted(link: Link) -> None:
    # seed S3: multicast uses connectionless SOCK_DGRAM sockets.
    raw = socket.socket(link.fam, socket.SOCK_DGRAM)
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface, sock=raw) as rx:
        assert rx.socket is raw
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"adopted")
            assert [d.payload for d in await collect(rx, 1)] == [b"adopted"]
    assert raw.fileno() == -1


async def test_stream_socket_is_refused(link: Link) -> None:
    # seed S3: SOCK_STREAM sockets cannot be used for multicast.
    stream = socket.socket(link.fam, socket.SOCK_STREAM)
    with stream:
        with pytest.raises(aiomcast.InvalidSocketError, match="SOCK_DGRAM"):
            await aiomcast.open_receiver(link.group, 0, sock=stream)
        with pytest.raises(aiomcast.InvalidSocketError, match="SOCK_DGRAM"):
            await aiomcast.open_sender(link.group, 5000, sock=stream)
        assert stream.fileno() != -1  # not closed behind the caller's back


async def test_send_after_close_is_refused(link: Link) -> None:
    tx = await aiomcast.open_sender(link.group, 5000, interface=link.interface)
    await tx.aclose()
    with pytest.raises(aiomcast.EndpointClosedError):
        await tx.send(b"late")
    with pytest.raises(aiomcast.EndpointClosedError):
        tx.ttl = 3


async def test_payload_limits(link: Link) -> None:
    limit = aiomcast.max_payload(link.fam)
    assert limit == (65507 if link.family == "ipv4" else 65527)
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        rx.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            with pytest.raises(aiomcast.PayloadTooLargeError, match=str(limit + 1)):
                await tx.send(bytes(limit + 1))
            with pytest.raises(aiomcast.InvalidArgumentError, match="str"):
                await tx.send("text")  # type: ignore[arg-type]
            await tx.send(bytes(limit))
            await tx.send(b"")
            got = await collect(rx, 2)
    assert [len(d.payload) for d in got] == [limit, 0]


async def test_outgoing_interface_set_and_reset(link: Link) -> None:
    # seed S13: IP_MULTICAST_IF / IPV6_MULTICAST_IF choose the interface of later sends;
    # INADDR_ANY / index 0 restores the default.
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with aiomcast.open_sender(link.group, rx.port) as tx:
            assert tx.interface is None
            tx.interface = link.interface
            assert tx.interface is not None
            assert tx.interface.name == link.interface
            if link.family == "ipv6":
                assert aiomcast._socket.interface_index(tx.socket, tx.family) == tx.interface.index
            await tx.send(b"via interface")
            assert [d.payload for d in await collect(rx, 1)] == [b"via interface"]
            tx.interface = None
            assert tx.interface is None
            if link.family == "ipv6":
                assert aiomcast._socket.interface_index(tx.socket, tx.family) == 0
            else:
                raw = tx.socket.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, 4)
                assert raw == bytes(4)  # INADDR_ANY


async def test_interface_by_index_and_address(link: Link) -> None:
    index = socket.if_nametoindex(link.interface)
    for spec in (index, link.address if link.family == "ipv4" else link.interface):
        async with aiomcast.open_receiver(link.group, 0, interface=spec) as rx:
            assert next(iter(rx.memberships)).interface is not None
            assert next(iter(rx.memberships)).interface.name == link.interface  # type: ignore[union-attr]


async def test_family_mismatch_is_refused(link: Link) -> None:
    other = "ff12::9" if link.family == "ipv4" else "239.9.9.9"
    with pytest.raises(aiomcast.InvalidGroupError, match="endpoint is"):
        await aiomcast.open_receiver([link.group, other], 0)
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        with pytest.raises(aiomcast.InvalidGroupError, match=other):
            rx.join(other)
        assert len(rx.memberships) == 1


async def test_empty_datagrams_are_sent(link: Link) -> None:
    # Python 3.11/3.12 asyncio and uvloop 0.23 DatagramTransport.sendto silently skip an empty
    # payload (measured here); aiomcast sends zero-length datagrams itself, in order.
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"one")
            await tx.send(b"")
            await tx.send(bytearray(b"three"))
            await tx.send(memoryview(b""))
            got = await collect(rx, 4)
            assert tx.stats.sent == 4
    assert [d.payload for d in got] == [b"one", b"", b"three", b""]


async def test_transport_lost_underneath_is_a_broken_endpoint(link: Link) -> None:
    # "Something outside broke it" is not "you closed it": the loop dropping the transport
    # ends iteration with BrokenEndpointError, and aclose() still works.
    rx = await aiomcast.open_receiver(link.group, 0, interface=link.interface)
    waiting = asyncio.create_task(rx.receive())
    await asyncio.sleep(0.05)
    rx._transport.abort()
    with pytest.raises(aiomcast.BrokenEndpointError):
        await asyncio.wait_for(waiting, 2)
    with pytest.raises(aiomcast.BrokenEndpointError):
        await rx.receive()
    with pytest.raises(aiomcast.BrokenEndpointError):
        rx.join(link.other_group())
    await rx.aclose()
    with pytest.raises(aiomcast.EndpointClosedError):
        await rx.receive()


async def test_bind_to_the_group_address(link: Link) -> None:
    # Bound to the group, the socket receives only datagrams sent to that group. A
    # link-scoped IPv6 group is bound with the interface's scope id (Linux refuses it without).
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, bind_address=link.group
    ) as rx:
        assert rx.local_address[0] == link.group
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"bound")
            assert [d.payload for d in await collect(rx, 1)] == [b"bound"]
    if link.family == "ipv6":
        with pytest.raises(aiomcast.InvalidArgumentError, match="link-scoped"):
            await aiomcast.open_receiver(link.group, 0, bind_address=link.group)
