"""The fast path: batched receive (recvmmsg), send_many (UDP GSO, sendmmsg), GRO, buffers."""

from __future__ import annotations

import asyncio
import socket
import subprocess

import pytest

import aiomcast
from aiomcast._endpoint import _buffered
from aiomcast._fastio import FastDatagramTransport, batch_receiver_available
from aiomcast.lab import LinkEnds
from tests.helpers import Link, collect, require_root

pytestmark = pytest.mark.asyncio


async def test_fast_transport_is_the_default_where_supported(link: Link) -> None:
    assert batch_receiver_available()
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        assert isinstance(rx._transport, FastDatagramTransport)
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface, fast=False) as rx:
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


async def test_large_receive_buffer_is_granted(link: Link) -> None:
    want = 16 << 20
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, receive_buffer=want
    ) as rx:
        assert rx.receive_buffer >= want  # SO_RCVBUFFORCE past rmem_max (root here)


def _high_water(transport: asyncio.BaseTransport) -> int:
    """The transport's high-water mark: aiomcast's own, or the loop transport's limits."""
    if isinstance(transport, FastDatagramTransport):
        return transport._high_water
    return int(transport.get_write_buffer_limits()[1])  # type: ignore[attr-defined]


@pytest.mark.parametrize("api", ["send_many", "send"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "loop-transport"])
async def test_send_many_waits_when_the_socket_is_full(
    throttled: LinkEnds, fast: bool, api: str
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
            "239.1.2.3", rx.port, interface=throttled.a_name, loopback=False, fast=fast
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
            before = _buffered(transport)
            if api == "send_many":
                assert await tx.send_many(batch) == per_call
            else:
                await tx.send(batch[0])
            after = _buffered(transport)
            peak = max(peak, after)
            # Held datagrams left during the call only if it gave the loop a turn: the one
            # await of send and send_many is the wait for the transport to go below its mark.
            if before and after < before + call_bytes:
                waited += 1
        assert waited > 0  # the socket was full past the mark: calls had to wait
        assert 0 < peak <= high_water + call_bytes  # datagrams were held, and bounded
        assert (tx.stats.sent, tx.stats.send_errors) == (count, 0)
        got = await arrived
        assert _buffered(transport) == 0
        stats = rx.stats
    assert [int.from_bytes(d.payload[:4], "big") for d in got] == list(range(count))
    assert (stats.dropped, stats.kernel_dropped) == (0, 0)


async def test_bad_fast_path_arguments(link: Link) -> None:
    with pytest.raises(aiomcast.InvalidArgumentError, match="receive_buffer"):
        await aiomcast.open_receiver(link.group, 0, receive_buffer=0)
    with pytest.raises(aiomcast.InvalidArgumentError, match="fast"):
        await aiomcast.open_receiver(link.group, 0, fast="yes")  # type: ignore[arg-type]
    async with aiomcast.open_receiver(link.group, 0, interface=link.interface) as rx:
        with pytest.raises(aiomcast.InvalidArgumentError, match="max_size"):
            rx.batches(0)
    async with aiomcast.open_sender(link.group, 9, interface=link.interface) as tx:
        with pytest.raises(aiomcast.PayloadTooLargeError):
            await tx.send_many([b"ok", bytes(70000)])
        assert tx.stats.sent == 0  # nothing sent when one payload is refused


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


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "loop-transport"])
async def test_a_refused_send_after_good_ones_is_a_kernel_error_and_counted(fast: bool) -> None:
    # The hot path of send() (default destination, bytes, nothing queued) reports a kernel
    # refusal exactly like the general path: KernelError naming the group, send_errors + 1.
    require_root("a veth pair in the private namespace")
    _ip("link", "add", "amcq0", "type", "veth", "peer", "name", "amcq1")
    try:
        _ip("link", "set", "amcq0", "up", "multicast", "on")
        _ip("addr", "add", "10.222.0.1/24", "dev", "amcq0")
        async with aiomcast.open_sender("239.1.2.9", 5009, interface="amcq0", fast=fast) as tx:
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
    async with aiomcast.open_sender(link.group, 5000, interface=link.interface, fast=False) as tx:
        assert tx.gso is False
        tx.gso = False
        with pytest.raises(aiomcast.InvalidArgumentError, match="fast=True"):
            tx.gso = True
        with pytest.raises(aiomcast.InvalidArgumentError, match="'yes'"):
            tx.gso = "yes"  # type: ignore[assignment]
