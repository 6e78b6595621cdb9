"""Reliability across a link: every datagram size, hostile floods, overload accounting,
backpressure, injected loss.

A multicast receiver runs for months next to traffic it does not control. These tests show,
on real sockets between two network namespaces joined by a veth pair (``tx`` and ``rx``),
that aiomcast delivers every size exactly, yields only its own groups, counts every datagram
it does not deliver and makes a fast sender wait instead of losing.
tests/sockets/test_local_reliability.py holds the half on one host (every size over lo, and
the open / join / close cycles that leave nothing behind).

These are the short forms CI runs; ``benchmarks/reliability.py`` runs the long ones (60 s of
overload) and the ``long`` marker selects the long forms here
(``python -m pytest -m long tests/lab/test_reliability.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

import aiomcast
from aiomcast.testing import lab
from tests.helpers import EDGES, collect, sizes, transport_for
from tests.processes import AIOMCAST, background, run

GROUPS = {
    "ipv4": ("239.7.0.1", "239.7.0.2", "239.7.0.3"),
    "ipv6": ("ff15::7:1", "ff15::7:2", "ff15::7:3"),
}
ALL_NODES = {"ipv4": "224.0.0.1", "ipv6": "ff02::1"}
SSM_GROUPS = {"ipv4": "232.7.0.1", "ipv6": "ff35::8000:7001"}


@dataclasses.dataclass(frozen=True)
class Pair:
    """Hosts ``tx`` and ``rx`` joined by a veth pair, ``veth0`` on each."""

    net: lab.Lab
    tx: lab.Host
    rx: lab.Host
    ends: lab.LinkEnds
    subnet: int

    def tx_addr(self, family: str) -> str:
        return self.ends.a_ipv4 if family == "ipv4" else self.ends.a_ipv6

    def rx_addr(self, family: str) -> str:
        return self.ends.b_ipv4 if family == "ipv4" else self.ends.b_ipv6

    def second_tx_addr(self, family: str) -> str:
        """Another address of ``tx`` on the link: the "unexpected source"."""
        return f"10.201.{self.subnet}.11" if family == "ipv4" else f"fd00:a10c:{self.subnet:x}::11"


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with lab.Lab(prefix="amcrel") as net:
        tx, rx = net.host("tx"), net.host("rx")
        ends = net.link(tx, rx, subnet=77)
        tx.ip("addr", "add", "10.201.77.11/24", "dev", ends.a_name)
        # Deprecated (preferred_lft 0): never chosen as a source unless a socket binds it.
        tx.ip(
            "addr", "add", "fd00:a10c:4d::11/64", "dev", ends.a_name, "nodad", "preferred_lft", "0"
        )
        yield Pair(net, tx, rx, ends, 77)


@pytest.fixture(params=["fast", "protocol"])
def fast(request: pytest.FixtureRequest) -> bool:
    """aiomcast's batching transport, or the event loop's own DatagramProtocol transport."""
    return bool(request.param == "fast")


def raw_sender(family: str, interface: str, source: str | None = None) -> socket.socket:
    """A plain socket that sends multicast (and unicast, broadcast) out of ``interface``."""
    v4 = family == "ipv4"
    sock = socket.socket(socket.AF_INET if v4 else socket.AF_INET6, socket.SOCK_DGRAM)
    index = socket.if_nametoindex(interface)
    if v4:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        mreqn = bytes(8) + struct.pack("@i", index)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    if source is not None:
        sock.bind((source, 0))
    return sock


def destination(family: str, address: str, port: int, index: int) -> tuple[Any, ...]:
    """A sockaddr; ``index`` (of the outgoing interface) scopes link-local IPv6 groups."""
    if family == "ipv4":
        return (address, port)
    return (address, port, 0, index)


def numbered(n: int, size: int = 32) -> bytes:
    return aiomcast.pack_sequence(n, size)


def link_drops(host: lab.Host, interface: str) -> int:
    """Datagrams the rx side of ``interface`` dropped (ip -s link), not seen by any socket."""
    out = host.ip("-s", "-j", "link", "show", "dev", interface).stdout
    stats = json.loads(out)[0]["stats64"]
    return int(stats["rx"]["dropped"]) + int(stats["rx"].get("missed", 0))


# -- every size -------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.asyncio
async def test_every_size_crosses_the_link_exactly(pair: Pair, family: str, fast: bool) -> None:
    # Datagrams of 0 to 65507 bytes (IPv4) / 65527 (IPv6), a stride through the range plus
    # the edges (empty, one byte, the largest unfragmented on a 1500 MTU and one more, the
    # largest a UDP datagram carries), arrive byte for byte, one datagram each, over a veth
    # pair (fragmented above the MTU, reassembled by the receiving kernel).
    group = GROUPS[family][0]
    with pair.rx.entered():
        rx = await aiomcast.open_receiver(
            group, 0, interface="veth0", transport=transport_for(fast), receive_buffer=1 << 20
        )
    with pair.tx.entered():
        tx = await aiomcast.open_sender(
            group, rx.port, interface="veth0", transport=transport_for(fast)
        )
    rng = random.Random(family)
    wanted = sizes(family)
    async with rx, tx:
        for size in wanted:
            payload = rng.randbytes(size)
            await tx.send(payload)
            got = await collect(rx, 1, timeout=2.0)
            assert [d.payload for d in got] == [payload], f"size {size}"
            assert got[0].source == pair.tx_addr(family)
        stats = rx.stats
    assert stats.received == stats.delivered == len(wanted)
    assert (stats.dropped, stats.kernel_dropped) == (0, 0)
    assert stats.received_bytes == sum(wanted)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.asyncio
async def test_longer_than_max_size_is_cut_and_counted(pair: Pair, family: str, fast: bool) -> None:
    # MSG_TRUNC: a datagram longer than the receive slot (max_size) is delivered cut short,
    # flagged truncated and counted in stats.truncated, never silently cut.
    group = GROUPS[family][0]
    limit = 1000
    with pair.rx.entered():
        # max_size needs the batch transport (transport="loop" refuses it); the sender varies.
        rx = await aiomcast.open_receiver(
            group, 0, interface="veth0", transport="batch", max_size=limit
        )
    with pair.tx.entered():
        tx = await aiomcast.open_sender(
            group, rx.port, interface="veth0", transport=transport_for(fast)
        )
    lengths = [0, 999, 1000, 1001, 5000, EDGES[family][-1]]
    payloads = [random.Random(n).randbytes(n) for n in lengths]
    async with rx, tx:
        for payload in payloads:
            await tx.send(payload)
        got = await collect(rx, len(payloads), timeout=2.0)
        stats = rx.stats
    assert [d.payload for d in got] == [p[:limit] for p in payloads]
    assert [d.truncated for d in got] == [len(p) > limit for p in payloads]
    assert stats.truncated == sum(len(p) > limit for p in payloads)
    assert stats.received == stats.delivered == len(payloads)


# -- hostile traffic -------------------------------------------------------------------------


async def _flood(
    pair: Pair,
    family: str,
    rx: aiomcast.Receiver,
    targets: list[str],
    *,
    legit: int,
    every: int,
) -> list[aiomcast.Datagram]:
    """Send ``legit`` numbered datagrams to the receiver's group, with ``every - 1`` flood
    datagrams to ``targets`` (round robin) between two of them; return what rx yields."""
    group = GROUPS[family][0]
    port = rx.port
    with pair.tx.entered():
        sock = raw_sender(family, "veth0")
        index = socket.if_nametoindex("veth0")
    with sock:
        flood = 0
        for n in range(legit):
            sock.sendto(numbered(n), destination(family, group, port, index))
            for _ in range(every - 1):
                target = targets[flood % len(targets)]
                sock.sendto(b"flood" + bytes(27), destination(family, target, port, index))
                flood += 1
    got = await collect(rx, legit, timeout=2.0)
    return got + await collect(rx, 1, timeout=0.05)  # and nothing more


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize("bind", ["wildcard", "group"])
@pytest.mark.asyncio
async def test_flood_to_other_groups_on_the_port_is_never_yielded(
    pair: Pair, family: str, bind: str, fast: bool
) -> None:
    # A receiver joined to G1 on port P. Another socket on the same host joined G2 on P; a
    # flood goes to G2, to G3 (joined by nobody) and to the all-nodes group, all on P. The
    # receiver yields exactly its own datagrams: IP_MULTICAST_ALL / IPV6_MULTICAST_ALL off
    # keeps a wildcard-bound socket to its own memberships, and so does binding the group.
    g1, g2, g3 = GROUPS[family]
    with pair.rx.entered():
        rx = await aiomcast.open_receiver(
            g1,
            0,
            interface="veth0",
            transport=transport_for(fast),
            bind_address=g1 if bind == "group" else None,
            receive_buffer=8 << 20,
        )
        other = await aiomcast.open_receiver(
            g2, rx.port, interface="veth0", transport=transport_for(fast)
        )
    async with rx, other:
        got = await _flood(pair, family, rx, [g2, g3, ALL_NODES[family]], legit=500, every=10)
        stats = rx.stats
        other_got = other.stats.received
    assert [aiomcast.unpack_sequence(d.payload) for d in got] == list(range(500))
    assert stats.received == 500
    assert (stats.dropped, stats.kernel_dropped) == (0, 0)
    assert other_got > 0  # the flood did arrive on the host, next door


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.asyncio
async def test_unicast_and_broadcast_floods_miss_a_group_bound_receiver(
    pair: Pair, family: str, fast: bool
) -> None:
    # Bound to the group address, the socket matches only datagrams sent to the group: a
    # flood to the host's own address and (IPv4) to the subnet broadcast on the same port
    # never reaches it.
    g1 = GROUPS[family][0]
    targets = [pair.rx_addr(family)]
    if family == "ipv4":
        targets.append(f"10.201.{pair.subnet}.255")
    with pair.rx.entered():
        rx = await aiomcast.open_receiver(
            g1,
            0,
            interface="veth0",
            transport=transport_for(fast),
            bind_address=g1,
            receive_buffer=8 << 20,
        )
    async with rx:
        got = await _flood(pair, family, rx, targets, legit=300, every=10)
        stats = rx.stats
    assert [aiomcast.unpack_sequence(d.payload) for d in got] == list(range(300))
    assert (stats.received, stats.dropped, stats.kernel_dropped) == (300, 0, 0)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.asyncio
async def test_wildcard_receiver_yields_only_its_groups(pair: Pair, family: str) -> None:
    g1 = GROUPS[family][0]
    targets = [pair.rx_addr(family)]
    if family == "ipv4":
        targets.append(f"10.201.{pair.subnet}.255")
    with pair.rx.entered():
        rx = await aiomcast.open_receiver(g1, 0, interface="veth0", receive_buffer=8 << 20)
    async with rx:
        got = await _flood(pair, family, rx, targets, legit=50, every=3)
    leaked = [d for d in got if d.payload.startswith(b"flood")]
    # The receive filter refuses what is not sent to a group, and the kernel counts it.
    assert not leaked, f"{len(leaked)} datagrams not sent to {g1} were yielded"
    assert rx.stats.kernel_dropped >= 100


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.asyncio
async def test_source_specific_receiver_yields_only_its_sources(
    pair: Pair, family: str, fast: bool
) -> None:
    # A source-specific join (SSM, RFC 4607) of (S, G): a flood to G from another address of
    # the same neighbour is filtered by the kernel; only S's datagrams are yielded.
    if "sources" not in inspect.signature(aiomcast.open_receiver).parameters:
        pytest.fail("open_receiver(..., sources=[...]) is not there yet (helper A's SSM work)")
    group = SSM_GROUPS[family]
    good = pair.tx_addr(family)
    with pair.rx.entered():
        rx = await aiomcast.open_receiver(
            group,
            0,
            interface="veth0",
            transport=transport_for(fast),
            sources=[good],
            receive_buffer=8 << 20,
        )
    with pair.tx.entered():
        legit = raw_sender(family, "veth0", good)
        intruder = raw_sender(family, "veth0", pair.second_tx_addr(family))
        target = destination(family, group, rx.port, socket.if_nametoindex("veth0"))
    async with rx:
        with legit, intruder:
            for n in range(300):
                legit.sendto(numbered(n), target)
                for _ in range(9):
                    intruder.sendto(b"flood" + bytes(27), target)
        got = await collect(rx, 300, timeout=2.0)
        got += await collect(rx, 1, timeout=0.05)
        stats = rx.stats
    assert [aiomcast.unpack_sequence(d.payload) for d in got] == list(range(300))
    assert {d.source for d in got} == {good}
    assert (stats.received, stats.dropped) == (300, 0)


# -- overload: every datagram is delivered or counted -----------------------------------------


@dataclasses.dataclass
class OverloadResult:
    """What an overload run saw; ``lost`` must be 0."""

    sent: int
    delivered: int
    queue_dropped: int
    kernel_dropped: int
    link_dropped: int
    missing: int
    duplicates: int
    max_queued: int
    peak_rss_kib: int

    @property
    def lost(self) -> int:
        """Datagrams neither delivered nor counted anywhere."""
        return self.sent - self.delivered - self.queue_dropped - self.kernel_dropped


def peak_rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


async def overload(
    pair: Pair,
    family: str,
    *,
    fast: bool,
    rate: int,
    seconds: float,
    slowdown: int = 10,
    queue_size: int = 512,
    overflow: str = "drop-newest",
    receive_buffer: int = 1 << 16,
) -> OverloadResult:
    """Offer ``rate`` datagrams/s for ``seconds`` to a consumer ``slowdown`` times slower.

    Every datagram carries its sequence number; the result compares what was delivered with
    what the counters say was dropped.
    """
    group = GROUPS[family][0]
    with pair.rx.entered():
        rx = await aiomcast.open_receiver(
            group,
            0,
            interface="veth0",
            transport=transport_for(fast),
            queue_size=queue_size,
            overflow=overflow,
            receive_buffer=receive_buffer,
        )
    with pair.tx.entered():
        tx = await aiomcast.open_sender(group, rx.port, interface="veth0", transport="batch")
    links_before = link_drops(pair.rx, "veth0")
    seen: list[int] = []
    max_queued = 0
    consume_rate = rate / slowdown
    chunk = 16

    async def consume() -> None:
        nonlocal max_queued
        async for datagram in rx:
            number = aiomcast.unpack_sequence(datagram.payload)
            assert number is not None
            seen.append(number)
            if len(seen) % chunk == 0:
                max_queued = max(max_queued, rx.stats.queued)
                await asyncio.sleep(chunk / consume_rate)

    async with rx, tx:
        consumer = asyncio.create_task(consume())
        loop = asyncio.get_running_loop()
        start = loop.time()
        total = int(rate * seconds)
        sent = 0
        burst = 32
        while sent < total:
            due = start + sent / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            count = min(burst, total - sent)
            await tx.send_many([numbered(sent + k) for k in range(count)])
            sent += count
        # Let everything in flight land, then speed the consumer up and drain the queue.
        await asyncio.sleep(0.2)
        while True:
            before = rx.stats
            await asyncio.sleep(0.1)
            after = rx.stats
            if (after.received, after.kernel_dropped) == (before.received, before.kernel_dropped):
                break
        consume_rate = float("inf")
        async with asyncio.timeout(5):
            while rx.stats.queued:  # noqa: ASYNC110 - no event for "drained"
                await asyncio.sleep(0.01)
        stats = rx.stats
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        assert tx.stats.sent == total
        assert tx.stats.send_errors == 0
    unique = set(seen)
    return OverloadResult(
        sent=total,
        delivered=stats.delivered,
        queue_dropped=stats.dropped,
        kernel_dropped=stats.kernel_dropped,
        link_dropped=link_drops(pair.rx, "veth0") - links_before,
        missing=total - len(unique),
        duplicates=len(seen) - len(unique),
        max_queued=max_queued,
        peak_rss_kib=peak_rss_kib(),
    )


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize(
    ("fast", "overflow"), [(True, "drop-newest"), (False, "drop-oldest")], ids=["fast", "protocol"]
)
@pytest.mark.asyncio
async def test_overload_every_datagram_is_delivered_or_counted(
    pair: Pair, family: str, fast: bool, overflow: str
) -> None:
    # A consumer 10x slower than the offered 20k datagrams/s: the queue bound holds, and the
    # sequence numbers show that delivered + queue drops + kernel drops == sent, exactly.
    result = await overload(pair, family, fast=fast, rate=20_000, seconds=1.0, overflow=overflow)
    assert result.link_dropped == 0
    assert result.duplicates == 0
    assert result.delivered == result.sent - result.missing
    assert result.missing == result.queue_dropped + result.kernel_dropped
    assert result.lost == 0
    assert result.queue_dropped > 0  # the consumer really was too slow
    assert result.max_queued <= 512


@pytest.mark.long
@pytest.mark.timeout(120)
@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.asyncio
async def test_overload_for_a_minute(pair: Pair, family: str) -> None:
    result = await overload(pair, family, fast=True, rate=20_000, seconds=60.0)
    assert (result.lost, result.duplicates, result.link_dropped) == (0, 0, 0)
    assert result.missing == result.queue_dropped + result.kernel_dropped


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.asyncio
async def test_sender_faster_than_its_socket_buffer_waits(
    pair: Pair, family: str, fast: bool, one_cpu: int
) -> None:
    # A token bucket (tc tbf, 20 Mbit/s) on tx's veth holds datagrams in the queue, charged
    # to the sending socket, so a small SO_SNDBUF fills: the kernel refuses sends with EAGAIN
    # (its UDP SndbufErrors counter moves), aiomcast holds the rest and the sender waits
    # (backpressure). Nothing is lost on the sending host: no send error, the qdisc drops
    # nothing, and the receiver gets every sequence number once, in order.
    group = GROUPS[family][0]
    total = 3000
    pair.tx.run("tc", "qdisc", "add", "dev", "veth0", "root", "tbf", "rate", "20mbit",
                "burst", "16kb", "limit", "4mb")  # fmt: skip
    try:
        with pair.rx.entered():
            rx = await aiomcast.open_receiver(
                group, 0, interface="veth0", queue_size=total, receive_buffer=16 << 20
            )
        with pair.tx.entered():
            tx = await aiomcast.open_sender(
                group, rx.port, interface="veth0", transport=transport_for(fast)
            )
            tx.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        errors_before = udp_sndbuf_errors(pair.tx, family)
        async with rx, tx:
            waited = 0
            for start in range(0, total, 100):
                batch = [numbered(n, 600) for n in range(start, start + 100)]
                if fast:
                    await tx.send_many(batch)
                else:
                    for payload in batch:
                        await tx.send(payload)
                if tx._transport.get_write_buffer_size():
                    waited += 1
            got = await collect(rx, total, timeout=10.0)
            tx_stats, rx_stats = tx.stats, rx.stats
        qdisc = json.loads(pair.tx.run("tc", "-s", "-j", "qdisc", "show", "dev", "veth0").stdout)
    finally:
        pair.tx.run("tc", "qdisc", "del", "dev", "veth0", "root", check=False)
    assert waited > 0  # the socket buffer really was full: the transport held datagrams
    assert (tx_stats.sent, tx_stats.send_errors) == (total, 0)
    assert sum(int(q.get("drops", 0)) for q in qdisc) == 0
    # The kernel said "no room" (EAGAIN, counted as SndbufErrors) and aiomcast waited.
    assert udp_sndbuf_errors(pair.tx, family) > errors_before
    assert [aiomcast.unpack_sequence(d.payload) for d in got] == list(range(total))
    assert (rx_stats.dropped, rx_stats.kernel_dropped) == (0, 0)


def udp_sndbuf_errors(host: lab.Host, family: str) -> int:
    """The kernel's count of UDP sends refused for lack of send buffer (EAGAIN included)."""
    if family == "ipv4":
        text = host.run("cat", "/proc/net/snmp").stdout
        lines = [line.split() for line in text.splitlines() if line.startswith("Udp:")]
        header, values = lines[0], lines[1]
        return int(values[header.index("SndbufErrors")])
    text = host.run("cat", "/proc/net/snmp6").stdout
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == "Udp6SndbufErrors":
            return int(value)
    raise AssertionError("no Udp6SndbufErrors in /proc/net/snmp6")


# -- injected loss and duplication: listen --stats against the wire ----------------------------

NETEM_MISSING = (
    "this kernel (6.18, no modules directory) has no sch_netem: 'tc qdisc add ... netem' "
    "fails with 'Specified qdisc kind is unknown', so loss and duplication are injected with "
    "nftables on the egress hook instead, which also counts exactly what it did"
)


def nft_faults(port: int, family: str) -> str:
    """nftables rules on tx's veth0 egress: drop 10 % and duplicate 5 % of the test flow."""
    proto = "ip" if family == "ipv4" else "ip6"
    return (
        "table netdev amcfault {\n"
        "  chain egress {\n"
        '    type filter hook egress device "veth0" priority 0; policy accept;\n'
        f"    meta protocol {proto} udp dport {port} numgen random mod 10 0 counter drop\n"
        f"    meta protocol {proto} udp dport {port} numgen random mod 20 0 counter "
        'dup to "veth0"\n'
        "  }\n"
        "}\n"
    )


def nft_counters(host: lab.Host, family: str, size: int) -> tuple[int, int]:
    """(dropped, duplicated) datagrams of ``size`` bytes counted by the rules above.

    aiomcast send uses UDP GSO: the egress hook sees one packet per send_many run, carrying
    several datagrams. Each packet's length is the headers (Ethernet, IP, UDP) plus ``size``
    per datagram, so the byte and packet counters give the datagrams exactly.
    """
    rules = json.loads(host.run("nft", "-j", "list", "table", "netdev", "amcfault").stdout)
    counters = [
        next(e["counter"] for e in item["rule"]["expr"] if "counter" in e)
        for item in rules["nftables"]
        if "rule" in item
    ]
    headers = 14 + (20 if family == "ipv4" else 40) + 8
    datagrams = []
    for counter in counters:
        payload = counter["bytes"] - headers * counter["packets"]
        assert payload % size == 0
        datagrams.append(payload // size)
    return datagrams[0], datagrams[1]


def pcap_sequences(path: str, size: int) -> list[int]:
    """Sequence numbers in a pcap file (Ethernet, IPv4 or IPv6) of datagrams of ``size``.

    A captured packet can be a GSO packet that holds several datagrams back to back (veth
    hands them over unsegmented; the receiving socket splits them): read each.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    numbers = []
    offset = 24
    while offset + 16 <= len(data):
        captured = struct.unpack_from("=I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        ip = 14
        header = (frame[ip] & 0x0F) * 4 if ethertype == 0x0800 else 40
        payload = frame[ip + header + 8 :]
        assert payload
        assert len(payload) % size == 0
        for start in range(0, len(payload), size):
            number = aiomcast.unpack_sequence(payload[start : start + size])
            assert number is not None
            numbers.append(number)
    return numbers


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_injected_loss_and_duplicates_are_reported_exactly(pair: Pair, family: str) -> None:
    # aiomcast send (sequence numbers) -> 10 % dropped, 5 % duplicated on tx's egress
    # (nftables; see NETEM_MISSING) -> tcpdump and aiomcast listen --stats on rx. The
    # counts listen reports are those a SequenceTracker finds in the capture, exactly, and
    # match what nftables says it did: every loss, every duplicate.
    if shutil.which("nft") is None or shutil.which("tcpdump") is None:
        pytest.fail("nft (nftables) and tcpdump are needed (Debian packages, see .ci/run)")
    group, port, count = GROUPS[family][1], 47123, 4000
    rules = subprocess.run(
        pair.tx.command("nft", "-f", "-"), input=nft_faults(port, family), text=True,
        capture_output=True, check=False,
    )  # fmt: skip
    assert rules.returncode == 0, rules.stderr
    with tempfile.NamedTemporaryFile(suffix=".pcap", delete=False) as capture:
        pass  # tcpdump writes it
    try:
        dump = subprocess.Popen(
            pair.rx.command("tcpdump", "-i", "veth0", "-nn", "-U", "-p", "-w", capture.name,
                            f"udp dst port {port}"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert dump.stderr is not None
        assert "listening on" in dump.stderr.readline()
        listen_argv = pair.rx.command(
            *AIOMCAST, "listen", group, str(port), "-i", "veth0", "--stats", "--idle", "1"
        )
        with background(listen_argv, ready="joined") as listener:
            sent = run(
                pair.tx.command(*AIOMCAST, "send", group, str(port), "-i", "veth0",
                                "--size", "64", "--count", str(count), "--rate", "8000",
                                "--stats"),
                timeout=30,
            )  # fmt: skip
            assert sent.returncode == 0, sent
            heard = listener.finish(timeout=30)
        dump.terminate()
        _, said = dump.communicate(timeout=10)
        dropped, duplicated = nft_counters(pair.tx, family, 64)
        wire = pcap_sequences(capture.name, 64)
    finally:
        pair.tx.run("nft", "delete", "table", "netdev", "amcfault", check=False)
        os.unlink(capture.name)
    assert heard.returncode == 0, heard
    stats = json.loads(heard.stdout.splitlines()[-1])
    assert json.loads(sent.stdout)["sent"] == count
    assert "0 packets dropped by kernel" in said.splitlines(), said
    # The wire: what nftables says it did, exactly. (A copy made by the dup rule passes the
    # egress hook again, where it too may be dropped or copied: so only the total is exact.)
    assert len(wire) == count - dropped + duplicated
    tracker = aiomcast.SequenceTracker()
    for number in wire:
        tracker.add(number)
    # listen --stats: the capture's numbers, exactly (and nothing lost on the receiving host).
    assert stats["dropped"] == 0
    assert stats["received"] == len(wire)
    assert (stats["gaps"], stats["duplicates"], stats["reordered"]) == (
        tracker.gaps,
        tracker.duplicates,
        tracker.reordered,
    )
    assert tracker.duplicates == len(wire) - len(set(wire)) > 0
    # Losses before the first and after the highest number received are not gaps (nothing
    # shows they were sent).
    assert tracker.gaps == max(wire) - min(wire) + 1 - len(set(wire)) > 0
    # Loss and duplication happened (their rates apply per GSO packet, not per datagram).
    assert dropped > 0
    assert duplicated > 0
