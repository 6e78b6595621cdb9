"""The fast path: batched receive (recvmmsg), send_many (UDP GSO, sendmmsg), GRO, buffers."""

from __future__ import annotations

import asyncio
import socket

import pytest

import aiomcast
from aiomcast._endpoint import _buffered
from aiomcast._fastio import FastDatagramTransport, batch_receiver_available
from tests.helpers import Link, collect

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


async def test_send_many_waits_when_the_socket_is_full(link: Link) -> None:
    # Backpressure: a tiny send buffer makes the transport hold datagrams and pause; send_many
    # waits, nothing is dropped on the sending host, and the buffer drains.
    async with aiomcast.open_sender(link.group, 9, interface=link.interface) as tx:
        tx.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        total = 0
        for _ in range(20):
            total += await tx.send_many([bytes(1400)] * 200)
        assert total == 4000
        assert tx.stats.sent == 4000
        assert tx.stats.send_errors == 0
        async with asyncio.timeout(10):
            while _buffered(tx._transport):  # noqa: ASYNC110 - no event for "drained"
                await asyncio.sleep(0.01)


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
