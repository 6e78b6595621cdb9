"""The fast path: batched receive (recvmmsg), send_many (UDP GSO, sendmmsg), GRO, buffers."""

from __future__ import annotations

import asyncio
import errno
import pathlib
import socket
import subprocess
from typing import Any

import pytest

import aiomcast
from aiomcast._fastio import FastDatagramTransport
from aiomcast._native import batch_receiver_available
from aiomcast._socket import SO_RCVBUFFORCE
from aiomcast._transport import LoopTransport, Transport
from aiomcast.testing import lab
from aiomcast.testing.lab import LinkEnds
from tests.helpers import (
    IN_CI,
    Link,
    LinkPair,
    collect,
    has_capability,
    require_capability,
    transport_for,
)

pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True, params=["native", "python"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every test here with the C extension (_speedups.c) and with the pure-Python code."""
    if request.param == "native" and aiomcast._native.BatchReader is None:
        message = "the C extension aiomcast._speedups is not built (it needs gcc, libc6-dev)"
        if IN_CI:
            pytest.fail(f"CI is set, so this must run: {message}")
        pytest.skip(message)
    if request.param == "python":
        monkeypatch.setattr(aiomcast._native, "BatchReader", None)
        monkeypatch.setattr(aiomcast._native, "QueueIterator", None)
        monkeypatch.setattr(aiomcast._native, "c_sendto", None)
        monkeypatch.setattr(aiomcast._native, "c_sendmmsg", None)
    return str(request.param)


async def test_fast_transport_is_the_default_where_supported(link: Link) -> None:
    assert batch_receiver_available()
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        assert isinstance(rx._transport, FastDatagramTransport)
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, transport="loop"
    ) as rx:
        assert not isinstance(rx._transport, FastDatagramTransport)


@pytest.mark.parametrize("sizes", ["equal", "mixed"])
async def test_send_many_and_batches_carry_every_datagram_in_order(link: Link, sizes: str) -> None:
    # Equal sizes go out as UDP_SEGMENT (GSO) sends, mixed ones with sendmmsg; the receiver
    # sees separate datagrams either way, in order, and the batch iterator yields them all.
    count = 2000
    payloads = [
        n.to_bytes(4, "big") + bytes(60 if sizes == "equal" else n % 700) for n in range(count)
    ]
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, receive_buffer=8 << 20
    ) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            assert await tx.send_many(payloads[: count // 2]) == count // 2
            assert await tx.send_many(payloads[count // 2 :]) == count // 2
            assert tx.stats.sent == count
            got: list[bytes] = []
            async with asyncio.timeout(5):
                async for batch in rx.batches():
                    assert 1 <= len(batch) <= 1024
                    got.extend(d.payload for d in batch)
                    if len(got) >= count:
                        break
    assert got == payloads
    stats = rx.stats
    assert (stats.received, stats.delivered, stats.dropped, stats.kernel_dropped) == (
        count,
        count,
        0,
        0,
    )


async def test_gro_receiver_splits_coalesced_datagrams(link: Link) -> None:
    count = 640
    payloads = [n.to_bytes(2, "big") * 32 for n in range(count)]
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, gro=True, receive_buffer=8 << 20
    ) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send_many(payloads)
            got = await collect(rx, count, timeout=5)
    assert [d.payload for d in got] == payloads


@pytest.mark.parametrize("metadata", [False, True], ids=["plain", "metadata"])
async def test_gro_receiver_cuts_each_datagram_at_max_size(link: Link, metadata: bool) -> None:
    # A coalesced buffer is read whole (64 KiB) and split; max_size then cuts each datagram
    # split from it, flags it and counts it: none of the buffer's datagrams goes missing.
    count, limit = 256, 40
    payloads = [n.to_bytes(2, "big") * 32 for n in range(count)]
    async with aiomcast.open_receiver(
        link.group,
        0,
        interface=link.interface,
        gro=True,
        max_size=limit,
        metadata=metadata,
        receive_buffer=8 << 20,
    ) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send_many(payloads)
            got = await collect(rx, count, timeout=5)
            stats = rx.stats
    assert [d.payload for d in got] == [p[:limit] for p in payloads]
    assert all(d.truncated for d in got)
    assert (stats.received, stats.truncated) == (count, count)


async def test_kernel_drops_are_counted_exactly(link: Link) -> None:
    # A small receive buffer overflows: every datagram is either received or counted as a
    # kernel drop (SO_MEMINFO), none is lost uncounted.
    sent = 3000
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, receive_buffer=4096
    ) as rx:
        assert rx.receive_buffer < 64 * 1024
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send_many([bytes(200)] * sent)
            await asyncio.sleep(0.3)
            stats = rx.stats
    assert stats.kernel_dropped > 0
    assert stats.received + stats.kernel_dropped == sent


@pytest.mark.parametrize("gro", [False, True], ids=["plain", "gro"])
async def test_kernel_counts_a_dropped_coalesced_buffer_once(wire_link: Link, gro: bool) -> None:
    # Pinned kernel behaviour (Linux 6.18): a UDP_GRO socket whose buffer is full drops a
    # coalesced buffer whole and adds one to its drop count (SO_MEMINFO, SO_RXQ_OVFL),
    # however many datagrams it carried. Without GRO every datagram is counted; with it
    # kernel_dropped is a lower bound (what the gro= docstring and docs/fast-path.md say).
    link, segments, sends = wire_link, 64, 100
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, receive_buffer=4096, gro=gro
    ) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            for n in range(sends):  # no await that yields: the receiver reads nothing meanwhile
                await tx.send_many([n.to_bytes(2, "big") * 32] * segments)
            assert tx.stats.sent == sends * segments
            await asyncio.sleep(0.3)
            stats = rx.stats
    sent = sends * segments
    assert stats.kernel_dropped > 0
    if gro:
        assert stats.received + segments * stats.kernel_dropped == sent
    else:
        assert stats.received + stats.kernel_dropped == sent


@pytest.mark.parametrize("times_rmem_max", [2, 4])
async def test_large_receive_buffer_is_granted(link: Link, times_rmem_max: int) -> None:
    # Past rmem_max receive_buffer= falls back to SO_RCVBUFFORCE, which CAP_NET_ADMIN allows
    # (root here; under CI the capability is required). Linux reports twice what it grants,
    # so a request of twice rmem_max, capped to rmem_max, reads back as the request itself:
    # only twice the request means it was granted whole. Without the capability the
    # receiver still opens, with the capped buffer: twice rmem_max.
    if IN_CI:
        require_capability("CAP_NET_ADMIN", "a receive buffer past net.core.rmem_max")
    forced = has_capability("CAP_NET_ADMIN")
    limit = int(await asyncio.to_thread(pathlib.Path("/proc/sys/net/core/rmem_max").read_text))
    want = min(limit * times_rmem_max, 1 << 28)
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, receive_buffer=want
    ) as rx:
        assert rx.receive_buffer == 2 * (want if forced else min(want, limit))


async def test_a_namespace_sees_the_hosts_rmem_max_read_only(netlab: lab.Lab) -> None:
    # Pinned kernel behaviour (Linux 6.18): net.core.rmem_max shows up in every network
    # namespace, but a namespace other than the host's sees the host's value, live and read
    # only; not even root can raise it there. So in a container a plain SO_RCVBUF stays
    # capped at the host's limit, and only SO_RCVBUFFORCE (CAP_NET_ADMIN) gets past it:
    # which is what receive_buffer= falls back to (test_large_receive_buffer_is_granted).
    host = netlab.host("h")
    path = "/proc/sys/net/core/rmem_max"
    limit = int(host.run("cat", path).stdout)
    ours = await asyncio.to_thread(pathlib.Path(path).read_text)  # the suite's namespace
    assert int(ours) == limit
    refused = host.run("sh", "-c", f"echo {limit * 2} > {path}", check=False)
    assert refused.returncode != 0
    assert int(host.run("cat", path).stdout) == limit
    # Above the limit, and small enough that the kernel's doubling stays below INT_MAX.
    assert limit < 1 << 28, f"rmem_max {limit} leaves no room to ask above it"
    want = limit + (1 << 20)
    with host.entered():
        plain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        forced = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with plain, forced:
        plain.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, want)
        assert plain.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * limit
        forced.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, want)
        assert forced.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * want


def _high_water(transport: Transport) -> int:
    """The transport's high-water mark: aiomcast's own, or the loop transport's limits."""
    if isinstance(transport, FastDatagramTransport):
        return transport._high_water
    assert isinstance(transport, LoopTransport)
    return transport.get_write_buffer_limits()[1]


@pytest.mark.parametrize("api", ["send_many", "send"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "loop-transport"])
async def test_send_many_waits_when_the_socket_is_full(
    throttled: LinkEnds, fast: bool, api: str, one_cpu: int
) -> None:
    # Backpressure, on a link whose qdisc (tbf, 40 Mbit/s) holds datagrams, so a 4 KiB
    # SO_SNDBUF really fills (over lo or a plain veth it never does: test_anyio.py). The
    # transport holds what the socket does not take; past its high-water mark send_many and
    # send wait until it drained. What it holds stays bounded by that mark plus one call's
    # datagrams, nothing is dropped on the sending host, and the receiver gets every datagram
    # in order.
    size, per_call = 1400, 64 if api == "send_many" else 1
    async with (
        aiomcast.open_receiver(
            "239.1.2.3", 0, interface=throttled.b_name, receive_buffer=16 << 20
        ) as rx,
        aiomcast.open_sender(
            "239.1.2.3",
            rx.port,
            interface=throttled.a_name,
            loopback=False,
            transport=transport_for(fast),
        ) as tx,
        asyncio.TaskGroup() as tasks,
    ):
        tx.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport = tx._transport
        high_water = _high_water(transport)
        # Three times the mark (it is passed, drained and passed again), and a little more.
        calls = -(-(high_water * 3 // size + 50) // per_call)
        count, call_bytes = calls * per_call, per_call * size
        arrived = tasks.create_task(collect(rx, count, timeout=10))
        peak = waited = 0
        for call in range(calls):
            first = call * per_call
            batch = [(first + n).to_bytes(4, "big") + bytes(size - 4) for n in range(per_call)]
            before = transport.get_write_buffer_size()
            if api == "send_many":
                assert await tx.send_many(batch) == per_call
            else:
                await tx.send(batch[0])
            after = transport.get_write_buffer_size()
            peak = max(peak, after)
            # Held datagrams left during the call only if it gave the loop a turn: the one
            # await of send and send_many is the wait for the transport to go below its mark.
            if before and after < before + call_bytes:
                waited += 1
        assert waited > 0  # the socket was full past the mark: calls had to wait
        assert 0 < peak <= high_water + call_bytes  # datagrams were held, and bounded
        assert (tx.stats.sent, tx.stats.send_errors) == (count, 0)
        got = await arrived
        assert transport.get_write_buffer_size() == 0
        stats = rx.stats
    assert [int.from_bytes(d.payload[:4], "big") for d in got] == list(range(count))
    assert (stats.dropped, stats.kernel_dropped) == (0, 0)


async def test_bad_fast_path_arguments(link: Link) -> None:
    with pytest.raises(aiomcast.InvalidArgumentError, match="receive_buffer"):
        await aiomcast.open_receiver(link.group, 0, receive_buffer=0)
    with pytest.raises(aiomcast.InvalidArgumentError, match="transport must be 'batch'"):
        await aiomcast.open_receiver(link.group, 0, transport="yes")
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        with pytest.raises(aiomcast.InvalidArgumentError, match="max_size"):
            rx.batches(0)
    async with aiomcast.open_sender(link.group, 9, interface=link.interface) as tx:
        with pytest.raises(aiomcast.PayloadTooLargeError):
            await tx.send_many([b"ok", bytes(70000)])
        assert tx.stats.sent == 0  # nothing sent when one payload is refused


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ({"gro": True}, "gro=True"),
        ({"metadata": True}, "metadata="),
        ({"max_size": 1000}, "max_size=1000"),
    ],
)
async def test_the_loop_transport_refuses_what_only_batch_honours(
    link: Link, option: dict[str, Any], named: str
) -> None:
    # An explicit transport is never overridden: "loop" with an option that only the batch
    # transport honours is refused at the call, naming both, and nothing is opened; with
    # transport None (or "batch") the same option opens on the batch transport.
    for opener in (aiomcast.open_receiver, aiomcast.open_endpoint):
        with pytest.raises(aiomcast.TransportOptionError, match=f"transport='loop'.*{named}"):
            opener(link.group, 0, interface=link.interface, transport="loop", **option)
        for transport in (None, "batch"):
            async with opener(
                link.group, 0, interface=link.interface, transport=transport, **option
            ) as ep:
                assert isinstance(ep._transport, FastDatagramTransport)
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, transport="loop"
    ) as rx:
        assert not isinstance(rx._transport, FastDatagramTransport)


async def test_send_many_larger_than_the_mtu_falls_back_to_single_sends(link: Link) -> None:
    # UDP GSO never fragments: segments that do not fit the MTU (1400 + headers on a 1500
    # veth is fine, 1480 over IPv6 is not) go out one by one, and fragmented, instead.
    payloads = [bytes([n]) * 1480 for n in range(10)]
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            assert await tx.send_many(payloads) == 10
            got = await collect(rx, 10)
    assert [d.payload for d in got] == payloads


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


@pytest.mark.root("a veth pair in the private namespace")
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "loop-transport"])
async def test_a_refused_send_after_good_ones_is_a_kernel_error_and_counted(fast: bool) -> None:
    # The hot path of send() (default destination, bytes, nothing queued) reports a kernel
    # refusal exactly like the general path: KernelError naming the group, send_errors + 1.
    _ip("link", "add", "amcq0", "type", "veth", "peer", "name", "amcq1")
    try:
        _ip("link", "set", "amcq0", "up", "multicast", "on")
        _ip("addr", "add", "10.222.0.1/24", "dev", "amcq0")
        async with aiomcast.open_sender(
            "239.1.2.9", 5009, interface="amcq0", transport=transport_for(fast)
        ) as tx:
            await tx.send(b"one")
            await tx.send(b"two")
            _ip("link", "set", "amcq0", "down")
            with pytest.raises(aiomcast.KernelError) as caught:
                await tx.send(b"three")
            assert "239.1.2.9" in str(caught.value)
            stats = tx.stats
        assert (stats.sent, stats.send_errors) == (2, 1)
    finally:
        _ip("link", "del", "amcq0", check=False)


@pytest.mark.parametrize("gso", [True, False], ids=["gso", "sendmmsg-only"])
async def test_send_many_without_gso_still_delivers_every_datagram_in_order(
    link: Link, gso: bool
) -> None:
    payloads = [n.to_bytes(4, "big") + bytes(60) for n in range(500)]
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, receive_buffer=4 << 20
    ) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            assert tx.gso is True  # the default on Linux
            tx.gso = gso
            assert tx.gso is gso
            assert await tx.send_many(payloads) == len(payloads)
        got = await collect(rx, len(payloads))
    assert [d.payload for d in got] == payloads


async def test_gso_setting_is_checked(link: Link) -> None:
    async with aiomcast.open_sender(
        link.group, 5000, interface=link.interface, transport="loop"
    ) as tx:
        assert tx.gso is False
        tx.gso = False
        with pytest.raises(aiomcast.InvalidArgumentError, match="transport='batch'"):
            tx.gso = True
        with pytest.raises(aiomcast.InvalidArgumentError, match="'yes'"):
            tx.gso = "yes"  # type: ignore[assignment]


@pytest.mark.root("a veth end in the private namespace")
async def test_this_kernel_takes_128_gso_segments_per_send_and_refuses_129(
    local_veth: LinkPair | None,
) -> None:
    # Pinned: Linux 6.18's UDP_MAX_SEGMENTS is 128 (older kernels: 64), and one more is
    # EINVAL. send_many uses 128 and drops to 64 when a kernel refuses that (next test).
    assert local_veth is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        address = socket.inet_aton(local_veth.ipv4.address)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, address)
        segment = [(socket.SOL_UDP, 103, (64).to_bytes(2, "little"))]  # UDP_SEGMENT, 64 bytes
        assert sock.sendmsg([bytes(64 * 128)], segment, 0, ("239.1.2.3", 9)) == 64 * 128
        with pytest.raises(OSError, match="Invalid argument") as refused:
            sock.sendmsg([bytes(64 * 129)], segment, 0, ("239.1.2.3", 9))
        assert refused.value.errno == errno.EINVAL
    finally:
        sock.close()


async def test_send_many_falls_back_to_64_segments_when_the_kernel_refuses_more(
    wire_link: Link,
) -> None:
    # 128 equal datagrams go out in one UDP_SEGMENT send here. A kernel that refuses a
    # GSO send for having too many segments (made real by asking this one for 256) gets
    # 64 per send from then on; nothing is lost, nothing reordered, nothing counted twice.
    link = wire_link
    payloads = [n.to_bytes(4, "big") + bytes(60) for n in range(300)]
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, receive_buffer=4 << 20
    ) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            transport = tx._transport
            assert isinstance(transport, FastDatagramTransport)
            assert transport._sender.gso_segments == 128
            assert await tx.send_many(payloads[:128]) == 128
            assert transport._sender.gso_segments == 128  # taken as it is
            transport._sender.gso_segments = 256
            assert await tx.send_many(payloads[128:]) == 172
            assert transport._sender.gso_segments == 64
            assert (tx.stats.sent, tx.stats.send_errors) == (300, 0)
        got = await collect(rx, len(payloads))
    assert [d.payload for d in got] == payloads


async def test_sendmmsg_state_follows_sizes_and_destinations(wire_link: Link) -> None:
    # Without GSO send_many reuses one set of sendmmsg headers: sizes that change (and grow
    # past the buffer) and destinations that alternate must still arrive byte for byte.
    link = wire_link
    rounds = [
        [bytes([n]) * 10 for n in range(64)],
        [bytes([n]) * (1 + n * 20) for n in range(70)],  # mixed, more than one batch
        [bytes([n]) * 1400 for n in range(64)],  # a larger buffer
        [bytes([n]) * 100 for n in range(3)],
    ]
    async with (
        aiomcast.open_receiver(
            link.group, 0, interface=link.interface, receive_buffer=4 << 20
        ) as rx_a,
        aiomcast.open_receiver(
            link.other_group(), rx_a.port, interface=link.interface, receive_buffer=4 << 20
        ) as rx_b,
    ):
        async with aiomcast.open_sender(link.group, rx_a.port, interface=link.interface) as tx:
            tx.gso = False
            for payloads in rounds:
                assert await tx.send_many(payloads) == len(payloads)
                assert await tx.send_many(tuple(payloads), link.other_group(), rx_a.port) == len(
                    payloads
                )
        expected = [p for payloads in rounds for p in payloads]
        # Both share the port; each socket is joined to one group and sees only its own.
        got_a = await collect(rx_a, len(expected))
        got_b = await collect(rx_b, len(expected))
    assert [d.payload for d in got_a] == expected
    assert [d.payload for d in got_b] == expected
    assert rx_a.stats.received == rx_b.stats.received == len(expected)


async def test_send_many_fast_check_names_what_is_wrong(link: Link) -> None:
    # The list-of-bytes fast path refuses an oversized payload like the general path: one
    # typed error naming the size, nothing sent; mixed bytes-like lists still work.
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            with pytest.raises(aiomcast.PayloadTooLargeError, match="70000"):
                await tx.send_many([bytes(70000)] * 3)
            with pytest.raises(aiomcast.PayloadTooLargeError, match="70000"):
                await tx.send_many((b"ok", bytes(70000)))
            assert tx.stats.sent == 0
            mixed: list[bytes | bytearray | memoryview] = [
                b"one",
                bytearray(b"two"),
                memoryview(b"three"),
            ]
            assert await tx.send_many(mixed) == 3
            assert await tx.send_many([]) == 0
            got = await collect(rx, 3)
    assert [d.payload for d in got] == [b"one", b"two", b"three"]


def _has_recvmmsg_state(transport: FastDatagramTransport) -> bool:
    # The C reader holds its buffers from the start; the ctypes one makes them when busy.
    reader = transport._reader
    return reader is not None and getattr(reader, "batch", True) is not None


async def test_recvmmsg_buffers_are_made_on_the_first_busy_read(link: Link) -> None:
    # The recvmmsg state (64 slots of 64 KiB) is made by the first readiness event that
    # follows another closely; a Sender never has one, so it never carries those 4 MiB.
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, receive_buffer=4 << 20
    ) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            assert isinstance(rx._transport, FastDatagramTransport)
            assert isinstance(tx._transport, FastDatagramTransport)
            assert not _has_recvmmsg_state(rx._transport)
            payloads = [n.to_bytes(4, "big") for n in range(500)]
            assert await tx.send_many(payloads) == 500
            got = await collect(rx, 500)
            assert not _has_recvmmsg_state(tx._transport)
        assert _has_recvmmsg_state(rx._transport)
    assert [d.payload for d in got] == payloads


async def test_sources_beyond_the_readers_cache_keep_their_own_address() -> None:
    # The C reader caches the (host, port) of recent sources in 64 places: 150 sources sent
    # round-robin evict each other all the time, and every datagram still names its own.
    socks = []
    for n in range(150):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((f"127.0.{n // 100}.{n % 100 + 1}", 0))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        socks.append(sock)
    try:
        async with aiomcast.open_receiver(
            "239.1.2.3", 0, interface="lo", receive_buffer=8 << 20
        ) as rx:
            for _ in range(3):
                for n, sock in enumerate(socks):
                    sock.sendto(n.to_bytes(2, "big"), ("239.1.2.3", rx.port))
            got = await collect(rx, 450, timeout=5)
        names = [sock.getsockname() for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    for datagram in got:
        assert (datagram.source, datagram.source_port) == names[int.from_bytes(datagram.payload)]


async def test_batches_name_each_datagrams_own_source() -> None:
    # The batch path reads source addresses for a whole batch at once, through a cache:
    # datagrams from two sources, interleaved in the socket's queue, keep their own source.
    plain = []
    for address in ("127.0.0.1", "127.0.0.2"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, 0))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        plain.append(sock)
    names = {s.getsockname()[0]: s.getsockname()[1] for s in plain}
    try:
        async with aiomcast.open_receiver(
            "239.1.2.3", 0, interface="lo", receive_buffer=4 << 20
        ) as rx:
            for n in range(300):
                sock = plain[n % 3 == 0]
                tag = sock.getsockname()[0].encode()
                sock.sendto(n.to_bytes(2, "big") + tag, ("239.1.2.3", rx.port))
            got: list[aiomcast.Datagram] = []
            async with asyncio.timeout(5):
                async for batch in rx.batches():
                    got.extend(batch)
                    if len(got) >= 300:
                        break
    finally:
        for sock in plain:
            sock.close()
    assert [int.from_bytes(d.payload[:2], "big") for d in got] == list(range(300))
    assert all(d.source == d.payload[2:].decode() for d in got)
    assert {d.source: d.source_port for d in got} == names


async def test_send_goes_through_the_c_sendto(
    link: Link, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hot path of send() is the extension's sendto with the destination packed once;
    # without the extension (the "python" run) the socket module's sendto does it.
    calls: list[bytes] = []
    real = aiomcast._native.c_sendto
    if real is not None:

        def counting(fd: int, data: bytes, address: bytes) -> bool:
            calls.append(address)
            return real(fd, data, address)

        monkeypatch.setattr(aiomcast._native, "c_sendto", counting)
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            for n in range(5):
                await tx.send(b"%d" % n)
            got = await collect(rx, 5)
    assert [d.payload for d in got] == [b"0", b"1", b"2", b"3", b"4"]
    if reader == "native":
        assert len(calls) >= 4  # the first send may take the general path
        assert len(set(calls)) == 1
    else:
        assert calls == []
