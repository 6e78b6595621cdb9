"""aiomcast.anyio: the endpoint tests on anyio's backends, asyncio, asyncio+uvloop and trio.

Every test runs on the three backends (anyio's pytest plugin, ``anyio_backend`` below) and on
the ``link`` fixture's IPv4 over lo, IPv4 over a veth pair and IPv6 over a veth pair. On trio
the core runs with the anyio driver: readers and writers are tasks in the endpoint's task
group. Seed facts are named as ``seed Sn``.
"""

from __future__ import annotations

import inspect
import os
import socket
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
import sniffio
from anyio.abc import SocketAttribute

import aiomcast
import aiomcast.anyio
from aiomcast.anyio import MulticastAttribute
from aiomcast.testing import lab
from aiomcast.testing.lab import LinkEnds
from tests.helpers import Link, member, received_ttl, ttl_probe

pytestmark = pytest.mark.anyio

AnyEndpoint = aiomcast.Receiver | aiomcast.Endpoint


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    backend: tuple[str, dict[str, Any]] = request.param
    return backend


def on_trio() -> bool:
    return sniffio.current_async_library() == "trio"


async def collect(rx: AnyEndpoint, count: int, timeout: float = 2.0) -> list[aiomcast.Datagram]:
    """Receive up to ``count`` datagrams, stopping early after ``timeout`` seconds."""
    got: list[aiomcast.Datagram] = []
    with anyio.move_on_after(timeout):
        async for datagram in rx:
            got.append(datagram)
            if len(got) >= count:
                break
    return got


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_runs_on_the_backend_asked_for(anyio_backend: tuple[str, dict[str, Any]]) -> None:
    # The parametrization is real: trio runs trio, uvloop runs uvloop's loop.
    name, options = anyio_backend
    assert sniffio.current_async_library() == name
    if options.get("use_uvloop"):
        import asyncio

        import uvloop

        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


async def test_datagram_reaches_receiver_through_async_for(link: Link) -> None:
    # seed S1, S6: a datagram sent to the group reaches the member.
    async with aiomcast.anyio.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with aiomcast.anyio.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"hello")
            await tx.send(b"")  # zero-length datagrams are datagrams too
            got = await collect(rx, 2)
    assert [d.payload for d in got] == [b"hello", b""]
    assert got[0].source_port == tx.port != 0
    assert isinstance(rx, aiomcast.Receiver)  # the core's classes on every backend


async def test_send_many_and_batches_carry_every_datagram_in_order(link: Link) -> None:
    # Equal sizes go out with UDP GSO, mixed sizes with sendmmsg; batches() hands over lists.
    equal = [n.to_bytes(2, "big") * 50 for n in range(64)]
    mixed = [bytes([n]) * (n + 1) for n in range(64)]
    async with aiomcast.anyio.open_endpoint(link.group, 0, interface=link.interface) as ep:
        assert await ep.send_many(equal) == 64
        assert await ep.send_many(mixed) == 64
        got: list[bytes] = []
        with anyio.move_on_after(3):
            async for batch in ep.batches(max_size=50):
                assert 1 <= len(batch) <= 50
                got.extend(d.payload for d in batch)
                if len(got) >= 128:
                    break
        stats = ep.stats
    assert got == equal + mixed
    assert (stats.sent, stats.received, stats.delivered) == (128, 128, 128)


async def test_join_and_leave_at_any_time(link: Link) -> None:
    # seed S1, S4, S5: hosts join and leave at any time; the kernel's membership list follows.
    other = link.other_group()
    async with (
        aiomcast.anyio.open_receiver(None, 0, family=link.family, interface=link.interface) as rx,
        aiomcast.anyio.open_sender(link.group, rx.port, interface=link.interface) as tx,
    ):
        rx.join(link.group)
        rx.join(other)
        assert member(link.family, link.interface, other)
        await tx.send(b"one")
        await tx.send(b"two", other)
        assert sorted(d.payload for d in await collect(rx, 2)) == [b"one", b"two"]
        rx.leave(other)
        assert not member(link.family, link.interface, other)
        await tx.send(b"left", other)
        await tx.send(b"still")
        assert [d.payload for d in await collect(rx, 2, timeout=0.5)] == [b"still"]
        with pytest.raises(aiomcast.AlreadyJoinedError):
            rx.join(link.group)
        with pytest.raises(aiomcast.NotJoinedError):
            rx.leave(other)
    assert not member(link.family, link.interface, link.group)  # close left it


async def test_options_ttl_loopback_and_interface(link: Link) -> None:
    # seed S7: the TTL set applies to later datagrams; S13: the outgoing interface; S14: the
    # loopback option is read back from the kernel.
    async with aiomcast.anyio.open_receiver(link.group, 0, interface=link.interface) as rx:
        probe = ttl_probe(link, link.group, rx.port)
        with probe:
            async with aiomcast.anyio.open_sender(link.group, rx.port, ttl="site") as tx:
                assert (tx.ttl, tx.loopback, tx.interface) == (32, True, None)
                tx.interface = link.interface
                tx.ttl = 7
                await tx.send(b"ttl 7")
                assert await anyio.to_thread.run_sync(received_ttl, probe) == (b"ttl 7", 7)
                tx.loopback = False
                assert tx.loopback is False
    assert [d.payload for d in await collect(rx, 1)] == [b"ttl 7"]  # queued before the close


async def test_counters_account_for_every_datagram(link: Link) -> None:
    for overflow, kept in (("drop-newest", [0, 1, 2]), ("drop-oldest", [7, 8, 9])):
        async with (
            aiomcast.anyio.open_receiver(
                link.group, 0, interface=link.interface, queue_size=3, overflow=overflow
            ) as rx,
            aiomcast.anyio.open_sender(link.group, rx.port, interface=link.interface) as tx,
        ):
            for n in range(10):
                await tx.send(bytes([n]) * 10)
            with anyio.fail_after(2):
                while rx.stats.received < 10:  # noqa: ASYNC110 - no event for "counted"
                    await anyio.sleep(0.01)
            stats = rx.stats
            assert (stats.received, stats.received_bytes, stats.queued) == (10, 100, 3)
            assert stats.dropped == 7
            assert [d.payload[0] for d in await collect(rx, 3)] == kept
            stats = rx.stats
            assert stats.received == stats.delivered + stats.dropped + stats.queued
            assert (tx.stats.sent, tx.stats.sent_bytes) == (10, 100)


async def test_errors_are_anyio_resource_errors(link: Link) -> None:
    # anyio's conventions: busy and closed resources (subclasses of anyio's errors); bad
    # input is still refused with aiomcast's own typed errors.
    async with aiomcast.anyio.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with anyio.create_task_group() as tg:
            tg.start_soon(rx.receive)
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(anyio.BusyResourceError, match="already receiving"):
                await rx.receive()
            tg.cancel_scope.cancel()
        async with aiomcast.anyio.open_sender(link.group, rx.port) as tx:
            with pytest.raises(aiomcast.PayloadTooLargeError):
                await tx.send(bytes(aiomcast.max_payload(link.fam) + 1))
        with pytest.raises(anyio.ClosedResourceError):
            await tx.send(b"late")
        with pytest.raises(aiomcast.EndpointClosedError):
            tx.ttl = 3
    with pytest.raises(anyio.ClosedResourceError):
        await rx.receive()


async def test_cancel_scopes_leave_the_endpoint_usable(link: Link) -> None:
    # A receive cancelled by a cancel scope (move_on_after) loses nothing, and the endpoint
    # keeps working; so does an async for cut short by a deadline.
    async with (
        aiomcast.anyio.open_receiver(link.group, 0, interface=link.interface) as rx,
        aiomcast.anyio.open_sender(link.group, rx.port, interface=link.interface) as tx,
    ):
        with anyio.move_on_after(0.05) as scope:
            await rx.receive()
        assert scope.cancelled_caught
        with anyio.CancelScope() as scope:
            scope.cancel()
            await rx.receive()
        assert scope.cancelled_caught
        await tx.send(b"after cancel")
        with anyio.fail_after(2):
            assert (await rx.receive()).payload == b"after cancel"
        with anyio.move_on_after(0.05):
            async for _ in rx:
                raise AssertionError("nothing was sent")
        await tx.send(b"still here")
        assert [d.payload for d in await collect(rx, 1)] == [b"still here"]
        assert rx.stats.delivered == rx.stats.received == 2


async def test_close_wakes_a_waiting_iterator_and_iteration_ends_after_draining(
    link: Link,
) -> None:
    async with anyio.create_task_group() as tg:
        rx = await aiomcast.anyio.open_receiver(link.group, 0, interface=link.interface).start(tg)
        got: list[bytes] = []

        async def consume() -> None:
            async for datagram in rx:
                got.append(datagram.payload)
            got.append(b"<end>")

        async with aiomcast.anyio.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"first")
            tg.start_soon(consume)
            with anyio.fail_after(2):
                while not got:  # noqa: ASYNC110 - no event for "consumed"
                    await anyio.sleep(0.01)
            await rx.aclose()  # ends consume()'s loop; the task group then ends
    assert got == [b"first", b"<end>"]
    # Closed with a datagram queued: it is still delivered, then iteration ends.
    async with aiomcast.anyio.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with aiomcast.anyio.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"queued")
            with anyio.fail_after(2):
                while not rx.stats.queued:  # noqa: ASYNC110 - no event for "queued"
                    await anyio.sleep(0.01)
    assert [d.payload async for d in rx] == [b"queued"]


async def test_aclose_releases_the_port_at_once(link: Link) -> None:
    async with aiomcast.anyio.open_receiver(
        link.group, 0, interface=link.interface, reuse_port=False
    ) as rx:
        port = rx.port
    assert rx.socket.fileno() == -1
    again = socket.socket(link.fam, socket.SOCK_DGRAM)
    with again:
        again.bind(("0.0.0.0" if link.family == "ipv4" else "::", port))  # no SO_REUSEADDR


async def test_no_task_or_descriptor_is_left_behind(link: Link) -> None:
    # Structured concurrency: the endpoints' readers and writers live in task groups and end
    # with the endpoints; every descriptor is closed. Both ways of opening, and a failed open.
    await anyio.wait_all_tasks_blocked()
    tasks, fds = len(anyio.get_running_tasks()), open_fds()
    for _ in range(3):
        async with (
            aiomcast.anyio.open_receiver(link.group, 0, interface=link.interface) as rx,
            aiomcast.anyio.open_sender(link.group, rx.port, interface=link.interface) as tx,
        ):
            await tx.send_many([b"x"] * 10)
            assert len(await collect(rx, 10)) == 10
        async with anyio.create_task_group() as tg:
            ep = await aiomcast.anyio.open_endpoint(link.group, 0, interface=link.interface).start(
                tg
            )
            await ep.send(b"y")
            assert len(await collect(ep, 1)) == 1
            await ep.aclose()
        async with aiomcast.anyio.open_receiver(
            link.group, 0, interface=link.interface, reuse_port=False
        ) as holder:
            taken = aiomcast.anyio.open_receiver(
                link.group, holder.port, interface=link.interface, reuse_port=False
            )
            with pytest.raises(aiomcast.KernelError):  # the port is taken: the open fails
                await taken.__aenter__()
    await anyio.wait_all_tasks_blocked()
    assert len(anyio.get_running_tasks()) == tasks
    assert open_fds() == fds


async def test_a_cancelled_task_group_breaks_its_endpoint(link: Link) -> None:
    # The endpoint's background work lives in the task group given to start(); cancelling
    # that group stops it, and the endpoint says so (BrokenEndpointError) until closed.
    async with anyio.create_task_group() as tg:
        rx = await aiomcast.anyio.open_receiver(link.group, 0, interface=link.interface).start(tg)
        tg.cancel_scope.cancel()
    with pytest.raises(anyio.BrokenResourceError, match="cancelled"):
        await rx.receive()
    with pytest.raises(aiomcast.BrokenEndpointError):
        rx.join(link.other_group())
    await rx.aclose()
    with pytest.raises(aiomcast.EndpointClosedError):
        await rx.receive()
    assert not member(link.family, link.interface, link.group)


async def test_socket_lost_underneath_is_a_broken_endpoint(link: Link) -> None:
    async with aiomcast.anyio.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with anyio.create_task_group() as tg:

            async def wait() -> None:
                with pytest.raises(aiomcast.BrokenEndpointError):
                    await rx.receive()

            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            rx._transport.abort()
        with pytest.raises(anyio.BrokenResourceError):
            await rx.receive()


async def test_exception_in_the_block_propagates_as_it_is(link: Link) -> None:
    # The endpoint's task group does not wrap the block's exception in an exception group.
    with pytest.raises(LookupError, match="mine"):
        async with aiomcast.anyio.open_receiver(link.group, 0, interface=link.interface):
            raise LookupError("mine")


async def test_typed_attributes(link: Link) -> None:
    # anyio's TypedAttributeProvider pattern: aiomcast's set and anyio's SocketAttribute.
    async with aiomcast.anyio.open_endpoint(link.group, 0, interface=link.interface) as ep:
        assert ep.extra(MulticastAttribute.raw_socket) is ep.socket
        assert ep.extra(SocketAttribute.raw_socket) is ep.socket
        assert ep.extra(MulticastAttribute.local_address) == ep.local_address
        assert ep.extra(SocketAttribute.local_port) == ep.extra(MulticastAttribute.local_port)
        assert ep.extra(MulticastAttribute.local_port) == ep.port != 0
        assert ep.extra(MulticastAttribute.family) is link.fam
        family = socket.AF_INET if link.family == "ipv4" else socket.AF_INET6
        assert ep.extra(SocketAttribute.family) == family
        interface = ep.extra(MulticastAttribute.interface)
        assert interface is not None
        assert interface.name == link.interface
        ep.interface = None
        assert ep.extra(MulticastAttribute.interface) is None  # read when asked
        assert ep.extra(SocketAttribute.remote_address, "none") == "none"
        with pytest.raises(anyio.TypedAttributeLookupError):
            ep.extra(SocketAttribute.remote_port)


def full_sends(address: str) -> int:
    """Send 2000 datagrams of 1400 bytes through a 4 KiB send buffer; count EAGAINs."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
        sock.setblocking(False)
        full = 0
        for _ in range(2000):
            try:
                sock.sendto(bytes(1400), ("239.1.2.3", 9))
            except BlockingIOError:
                full += 1
        return full


def test_only_a_queueing_link_fills_a_udp_send_buffer(throttled: LinkEnds) -> None:
    # Pinned kernel behaviour (Linux 6.18): a UDP datagram leaves the sender's send buffer as
    # soon as the device takes it; over lo (and a plain veth pair) a 4 KiB SO_SNDBUF never
    # fills, however fast one sends. A qdisc that holds datagrams (tbf) makes it full.
    assert full_sends("127.0.0.1") == 0
    assert full_sends(throttled.a_ipv4) > 0


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
async def test_send_waits_when_the_socket_is_full_and_loses_nothing(
    throttled: LinkEnds, family: str, one_cpu: int
) -> None:
    # Backpressure: the full socket makes the transport hold datagrams and wait until the
    # socket is writable (on trio: a writer task on anyio.wait_writable); send_many waits
    # above the high-water mark. Nothing is dropped on the sending host, and everything
    # arrives, in order.
    group = "239.1.2.3" if family == "ipv4" else "ff12::1:2:3"
    async with (
        aiomcast.anyio.open_receiver(
            group, 0, interface=throttled.b_name, receive_buffer=16 << 20
        ) as rx,
        aiomcast.anyio.open_sender(
            group, rx.port, interface=throttled.a_name, loopback=False
        ) as tx,
    ):
        tx.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        held = 0
        for n in range(10):
            assert await tx.send_many([bytes([n]) * 1400] * 100) == 100
            held = max(held, tx._transport.get_write_buffer_size())
        await tx.send(b"last")
        assert held > 0  # the socket was full: datagrams waited in the transport
        assert (tx.stats.sent, tx.stats.send_errors) == (1001, 0)
        got = await collect(rx, 1001, timeout=5)
        assert rx.stats.kernel_dropped == 0
    assert len(got) == 1001
    assert got[-1].payload == b"last"
    firsts = [d.payload[0] for d in got[:-1]]
    assert firsts == sorted(firsts)  # in order


async def test_trio_runs_the_core_with_the_anyio_driver(link: Link) -> None:
    # On trio nothing of asyncio runs: the endpoint's waits are anyio's, its transport is the
    # batching one with task readers, and the loop transports are not asked for.
    async with aiomcast.anyio.open_receiver(link.group, 0, interface=link.interface) as rx:
        if on_trio():
            assert rx._protocol.driver.native_transports is False
            assert isinstance(rx._transport, aiomcast._fastio.FastDatagramTransport)
        else:
            assert rx._protocol.driver is aiomcast._driver.ASYNCIO
        await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize("name", aiomcast.anyio.__all__)
def test_every_public_name_of_aiomcast_anyio_is_documented(name: str) -> None:
    obj = getattr(aiomcast.anyio, name)
    assert inspect.getdoc(obj), name
    if callable(obj) and name.startswith("open_"):
        core = getattr(aiomcast, name)
        # The same arguments as the core opener, and the core's documentation of them.
        ours, theirs = inspect.signature(obj), inspect.signature(core)
        assert ours.parameters == theirs.parameters
        assert ours.return_annotation == f"AnyioOpener[{theirs.return_annotation[7:-1]}]"
        assert (core.__doc__ or "") in (obj.__doc__ or "")


async def test_expanding_ring_search_on_every_backend() -> None:
    # seed S10 through the driver: the search waits with the backend's own clock and
    # timeouts, so it runs on trio as on asyncio. On lo the responder is on this host: TTL 0
    # reaches it, and the searcher's own looped-back queries are not taken for replies.
    group = "239.1.2.9"
    async with (
        aiomcast.anyio.open_endpoint(group, 0, interface="lo") as responder,
        aiomcast.anyio.open_endpoint(group, responder.port, interface="lo") as searcher,
        anyio.create_task_group() as tg,
    ):

        async def answer() -> None:
            async for query in responder:
                if query.payload == b"who is there?":
                    await responder.send(b"here")

        tg.start_soon(answer)
        result = await aiomcast.expanding_ring_search(
            searcher, b"who is there?", max_ttl=3, wait=0.5, accept=lambda d: d.payload == b"here"
        )
        nobody = await aiomcast.expanding_ring_search(
            searcher, b"anyone?", ttls=[0, 1], wait=0.1, accept=lambda d: d.payload == b"no"
        )
        tg.cancel_scope.cancel()
    assert (result.found, result.ttl, result.tried) == (True, 0, (0,))
    assert (nobody.found, nobody.tried) == (False, (0, 1))
    assert nobody.ignored >= 2  # the two queries, looped back


@pytest.mark.parametrize("mode", ["netlink", "polling"])
async def test_follow_interfaces_on_every_backend(netlab: lab.Lab, family: str, mode: str) -> None:
    # The watcher notices through the driver (a reader of the netlink socket, or a timer), so
    # follow_interfaces works on trio as on asyncio: an interface deleted is reported and its
    # membership forgotten; recreated, it is rejoined and datagrams arrive again.
    host, peer = netlab.host("h"), netlab.host("peer")
    netlab.link(host, peer, a_name="r0", b_name="r0", subnet=1)
    group = {"ipv4": "239.1.2.3", "ipv6": "ff12::1:2:3"}[family]
    poll = 0.05 if mode == "polling" else None
    async with anyio.create_task_group() as tg:
        with host.entered():
            rx = await aiomcast.anyio.open_receiver(group, 0, interface="r0").start(tg)
        async with rx:
            watcher = rx.follow_interfaces(poll_interval=poll)
            assert watcher.mode == mode
            old = next(iter(rx.memberships))
            host.ip("link", "del", "r0")
            with anyio.fail_after(5):
                async for change in watcher:
                    if aiomcast.ChangeKind.REMOVED in change.kinds:
                        break
            assert change.forgotten == (old,)
            netlab.link(host, peer, a_name="r0", b_name="r0", subnet=1)
            with anyio.fail_after(5):
                while not rx.memberships:
                    await anext(watcher)
            with peer.entered():
                tx = await aiomcast.anyio.open_sender(group, rx.port, interface="r0").start(tg)
            async with tx:
                await tx.send(b"after the rejoin")
                got = await collect(rx, 1)
            assert [d.payload for d in got] == [b"after the rejoin"]
        assert watcher.closed


async def test_the_loop_transport_is_refused_where_there_is_no_loop(link: Link) -> None:
    # trio has no loop transports: transport="loop" is refused there, naming both, and the
    # default (None) takes the batch transport; on asyncio "loop" is the loop's own.
    if on_trio():
        with pytest.raises(aiomcast.TransportOptionError, match=r"transport=.loop.*trio"):
            async with aiomcast.anyio.open_receiver(
                link.group, 0, interface=link.interface, transport="loop"
            ):
                pass
    else:
        async with aiomcast.anyio.open_receiver(
            link.group, 0, interface=link.interface, transport="loop"
        ) as rx:
            assert not isinstance(rx._transport, aiomcast._fastio.FastDatagramTransport)
    async with aiomcast.anyio.open_receiver(link.group, 0, interface=link.interface) as rx:
        assert isinstance(rx._transport, aiomcast._fastio.FastDatagramTransport)
