"""Per-datagram metadata and truncated reads, on real sockets.

The receiver asks the kernel for control messages (IP_PKTINFO / IPV6_RECVPKTINFO, IP_RECVTTL /
IPV6_RECVHOPLIMIT, SO_TIMESTAMPNS, SO_RXQ_OVFL) only when ``metadata=`` says so; these tests
show each field filled with what the kernel saw, on one socket joined to several groups and
on several interfaces, per datagram and per batch, and that nothing is read when nobody asked.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

import aiomcast
from aiomcast import Metadata
from aiomcast._metadata import parse_metadata
from aiomcast.testing import lab
from tests.helpers import Link, collect, transport_for

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Metadata.NONE),
        (False, Metadata.NONE),
        (True, Metadata.ALL),
        ("ttl", Metadata.TTL),
        ("all", Metadata.ALL),
        (["group", "interface"], Metadata.GROUP | Metadata.INTERFACE),
        (("timestamp", "kernel_drops"), Metadata.TIMESTAMP | Metadata.KERNEL_DROPS),
        (Metadata.GROUP, Metadata.GROUP),
    ],
)
def test_metadata_spellings(value: object, expected: Metadata) -> None:
    assert parse_metadata(value) == expected


@pytest.mark.parametrize("bad", ["colour", ["ttl", "size"], 3, 1.5, [1], {"ttl": 1}])
def test_metadata_refuses_unknown_names_naming_them(bad: object) -> None:
    with pytest.raises(aiomcast.InvalidArgumentError) as caught:
        aiomcast.open_receiver("239.1.2.3", 0, metadata=bad)  # type: ignore[arg-type]
    shown = bad if not isinstance(bad, list) else bad[-1]
    assert str(shown) in str(caught.value)


@pytest.mark.parametrize("bad", [0, -1, 65536, True, "100", 1.0])
def test_max_size_refuses_impossible_sizes(bad: object) -> None:
    with pytest.raises(aiomcast.InvalidArgumentError) as caught:
        aiomcast.open_receiver("239.1.2.3", 0, max_size=bad)  # type: ignore[arg-type]
    assert "max_size" in str(caught.value)
    assert repr(bad)[:3] in repr(caught.value.value)


async def _exchange(
    link: Link,
    metadata: Metadata | bool | list[str] | None,
    groups: list[str],
    *,
    ttl: int = 3,
    batches: bool = False,
) -> tuple[list[aiomcast.Datagram], int, int]:
    before = time.time_ns()
    async with aiomcast.open_receiver(groups, 0, interface=link.interface, metadata=metadata) as rx:
        async with aiomcast.open_sender(
            groups[0], rx.port, interface=link.interface, ttl=ttl
        ) as tx:
            for n, group in enumerate(groups):
                await tx.send(f"to {group} #{n}".encode(), group)
            if batches:
                got: list[aiomcast.Datagram] = []
                async with asyncio.timeout(2):
                    async for batch in rx.batches():
                        got.extend(batch)
                        if len(got) >= len(groups):
                            break
            else:
                got = await collect(rx, len(groups))
        after = time.time_ns()
    return got, before, after


@pytest.mark.parametrize("batches", [False, True], ids=["per-datagram", "batches"])
@pytest.mark.asyncio
async def test_each_datagram_tells_its_group_interface_ttl_time_and_drops(
    link: Link, batches: bool
) -> None:
    """One socket joined to three groups: every datagram names the group it was sent to."""
    groups = [link.group, link.other_group(1), link.other_group(2)]
    got, before, after = await _exchange(link, True, groups, ttl=3, batches=batches)
    assert sorted(d.payload for d in got) == sorted(
        f"to {g} #{n}".encode() for n, g in enumerate(groups)
    )
    for datagram in got:
        sent_to = datagram.payload.decode().split()[1]
        assert datagram.group == str(aiomcast.Group(sent_to).address)
        assert datagram.interface == link.interface
        assert datagram.ttl == 3
        assert datagram.timestamp_ns is not None
        assert before <= datagram.timestamp_ns <= after
        assert datagram.kernel_drops == 0
        assert datagram.truncated is False


@pytest.mark.asyncio
async def test_metadata_names_only_what_was_asked(link: Link) -> None:
    got, _, _ = await _exchange(link, ["ttl"], [link.group], ttl=2)
    (datagram,) = got
    assert datagram.ttl == 2
    assert (datagram.group, datagram.interface, datagram.timestamp_ns) == (None, None, None)
    assert datagram.kernel_drops is None


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "loop-transport"])
@pytest.mark.asyncio
async def test_without_metadata_the_fields_stay_empty(link: Link, fast: bool) -> None:
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, transport=transport_for(fast)
    ) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(b"plain")
            (datagram,) = await collect(rx, 1)
    assert datagram == aiomcast.Datagram(b"plain", datagram.source, datagram.source_port)


@pytest.mark.asyncio
async def test_kernel_drops_rise_when_the_socket_buffer_overflows(link: Link) -> None:
    """SO_RXQ_OVFL: a datagram queued after an overflow carries the count of drops before it."""
    fam = socket.AF_INET if link.family == "ipv4" else socket.AF_INET6
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, metadata="kernel_drops", receive_buffer=4096
    ) as rx:
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            index = socket.if_nametoindex(link.interface)
            if fam == socket.AF_INET:
                sock.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(link.address)
                )
                target: tuple[object, ...] = (link.group, rx.port)
            else:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
                target = (link.group, rx.port, 0, index)
            # The loop cannot read while this runs: the small buffer overflows.
            for n in range(200):
                sock.sendto(n.to_bytes(4, "big") + bytes(500), target)
            got = await collect(rx, 200, timeout=0.5)
            sock.sendto(b"after the overflow", target)
            (after,) = await collect(rx, 1)
        finally:
            sock.close()
        kernel_dropped = rx.stats.kernel_dropped
    assert got
    assert len(got) < 200
    assert {d.kernel_drops for d in got} == {0}  # all queued before the first drop
    # Every datagram not received was dropped by the kernel and counted, both ways.
    assert len(got) + kernel_dropped == 200
    assert after.kernel_drops == kernel_dropped


@pytest.mark.asyncio
async def test_two_interfaces_one_socket_tells_each_copys_interface(
    netlab: lab.Lab, family: str
) -> None:
    """Joined on two interfaces: the same payload arriving on both is told apart."""
    netlab.build("hosts a m\nnet 1 a m\nnet 2 a m\n")
    group = "239.1.2.77" if family == "ipv4" else "ff12::1:2:77"
    with netlab["m"].entered():
        rx = await aiomcast.open_receiver(None, 0, family=family, metadata=Metadata.INTERFACE)
        rx.join(group, "n1")
        rx.join(group, "n2")
    async with rx:
        for where in ("n1", "n2"):
            with netlab["a"].entered():
                tx = await aiomcast.open_sender(group, rx.port, interface=where)
            async with tx:
                await tx.send(b"same bytes")
        got = await collect(rx, 2)
    assert sorted(d.interface or "" for d in got) == ["n1", "n2"]
    assert [d.payload for d in got] == [b"same bytes"] * 2


@pytest.mark.parametrize("metadata", [None, True], ids=["plain", "metadata"])
@pytest.mark.asyncio
async def test_longer_than_max_size_is_delivered_cut_and_counted(
    link: Link, metadata: bool | None
) -> None:
    """MSG_TRUNC: a datagram longer than max_size is reported, not silently cut."""
    async with aiomcast.open_receiver(
        link.group, 0, interface=link.interface, max_size=100, metadata=metadata
    ) as rx:
        async with aiomcast.open_sender(link.group, rx.port, interface=link.interface) as tx:
            await tx.send(bytes(range(100)))
            await tx.send(bytes(range(150)))
            whole, cut = await collect(rx, 2)
        stats = rx.stats
    assert (whole.payload, whole.truncated) == (bytes(range(100)), False)
    assert (cut.payload, cut.truncated) == (bytes(range(100)), True)
    assert (stats.truncated, stats.received, stats.delivered) == (1, 2, 2)
    assert (cut.ttl is not None) is (metadata is True)


@pytest.mark.asyncio
async def test_a_burst_carries_metadata_through_the_batch_path(link: Link) -> None:
    """A burst is drained with recvmmsg batches; each datagram still has its own metadata."""
    groups = [link.group, link.other_group(1)]
    async with aiomcast.open_receiver(
        groups, 0, interface=link.interface, metadata=True, receive_buffer=4 << 20
    ) as rx:
        async with aiomcast.open_sender(groups[0], rx.port, interface=link.interface) as tx:
            for n in range(300):
                tx.ttl = 1 + n % 5
                await tx.send(n.to_bytes(4, "big"), groups[n % 2])
        got = await collect(rx, 300)
    assert [int.from_bytes(d.payload, "big") for d in got] == list(range(300))
    for n, datagram in enumerate(got):
        assert datagram.group == str(aiomcast.Group(groups[n % 2]).address)
        assert datagram.ttl == 1 + n % 5
        assert datagram.interface == link.interface
        assert datagram.kernel_drops == 0
