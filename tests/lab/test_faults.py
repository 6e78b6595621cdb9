"""Faults in the lab: link flaps, a router restart, a deleted interface, address churn.

Real sequence-numbered traffic (``pack_sequence``) crosses lab namespaces while the fault
happens; a SequenceTracker over what the receiver got (or ``aiomcast listen --stats``) must
account for every datagram the sender tried: delivered + gaps == sent, exactly, and the gap is
the datagrams sent while the fault lasted. Root only (network namespaces).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import ipaddress
import json
import os

import pytest

import aiomcast
from aiomcast._watch import ChangeKind
from aiomcast.testing import lab
from tests.processes import AIOMCAST, background, free_port

GROUPS = {"ipv4": "239.8.0.1", "ipv6": "ff15::8:1"}
SIZE = 32
#: Seconds between two datagrams of a stream.
PACE = 0.004
#: Datagrams sent in each phase (before, during, after a fault).
PER_PHASE = 30


@dataclasses.dataclass
class Stream:
    """A sender of numbered datagrams that counts what it tried, and what the kernel refused."""

    tx: aiomcast.Sender
    sent: int = 0
    refused: int = 0
    errnos: set[int] = dataclasses.field(default_factory=set)

    async def burst(self, count: int) -> tuple[int, int]:
        """Try to send ``count`` numbered datagrams, PACE apart: (tried, refused by the kernel)."""
        refused = 0
        for _ in range(count):
            try:
                await self.tx.send(aiomcast.pack_sequence(self.sent, SIZE))
            except aiomcast.KernelError as exc:
                refused += 1
                self.errnos.add(exc.errno or 0)
            self.sent += 1  # the number is used up either way: a refused one is a gap
            await asyncio.sleep(PACE)
        self.refused += refused
        return count, refused


@dataclasses.dataclass
class Tally:
    """What one receiver got, by sequence number."""

    tracker: aiomcast.SequenceTracker = dataclasses.field(default_factory=aiomcast.SequenceTracker)
    delivered: int = 0
    arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def consume(self, rx: aiomcast.Receiver) -> None:
        async for datagram in rx:
            self.delivered += 1
            self.tracker.add(aiomcast.unpack_sequence(datagram.payload))
            self.arrived.set()

    async def until(self, highest: int, timeout: float = 5.0) -> None:
        """Wait until sequence number ``highest`` has arrived."""
        async with asyncio.timeout(timeout):
            while self.tracker.highest is None or self.tracker.highest < highest:
                self.arrived.clear()
                await self.arrived.wait()


def operstate(host: lab.Host, name: str) -> str:
    return str(json.loads(host.ip("-j", "link", "show", "dev", name).stdout)[0]["operstate"])


async def until_up(*ends: tuple[lab.Host, str], timeout: float = 5.0) -> None:
    """Wait until each (host, interface) is operationally up (its qdisc is live again)."""
    async with asyncio.timeout(timeout):
        while any(operstate(host, name) != "UP" for host, name in ends):  # noqa: ASYNC110 - polls
            await asyncio.sleep(0.01)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- a link taken down and up ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_link_down_and_up_gap_is_exactly_what_was_sent_meanwhile(
    netlab: lab.Lab, family: str
) -> None:
    # a -> b on one veth pair, PER_PHASE datagrams before, during and after each fault.
    # First b's end goes down (a's sends still succeed: the kernel drops them at the end
    # without carrier), then a's end (its sends are refused: KernelError ENETUNREACH, pinned
    # for both families). The receiver survives both, reception resumes, and the gaps are
    # exactly the datagrams of the two down windows.
    a, b = netlab.host("a"), netlab.host("b")
    netlab.link(a, b, a_name="w0", b_name="w0", subnet=1)
    group = GROUPS[family]
    with b.entered():
        rx = await aiomcast.open_receiver(group, 0, interface="w0")
    with a.entered():
        tx = await aiomcast.open_sender(group, rx.port, interface="w0")
    tally, stream = Tally(), Stream(tx)
    async with rx, tx:
        consumer = asyncio.create_task(tally.consume(rx))
        try:
            await stream.burst(PER_PHASE)
            await tally.until(stream.sent - 1)
            b.ip("link", "set", "w0", "down")
            rx_down, rx_refused = await stream.burst(PER_PHASE)
            b.ip("link", "set", "w0", "up")
            await until_up((a, "w0"), (b, "w0"))
            await stream.burst(PER_PHASE)
            await tally.until(stream.sent - 1)
            a.ip("link", "set", "w0", "down")
            tx_down, tx_refused = await stream.burst(PER_PHASE)
            a.ip("link", "set", "w0", "up")
            await until_up((a, "w0"), (b, "w0"))
            await stream.burst(PER_PHASE)
            await tally.until(stream.sent - 1)
        finally:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
        stats = rx.stats
        assert tx.stats.send_errors == stream.refused
    tracker = tally.tracker
    print(
        f"\n{family}: sent {stream.sent}, delivered {tally.delivered}, gaps {tracker.gaps}, "
        f"refused {stream.refused} (rx end down: {rx_refused}/{rx_down}, "
        f"tx end down: {tx_refused}/{tx_down})"
    )
    assert (rx_refused, tx_refused) == (0, tx_down)  # only the sender's own end refuses
    assert stream.errnos == {errno.ENETUNREACH}, stream.errnos
    assert (tracker.first, tracker.highest) == (0, stream.sent - 1)
    assert tally.delivered + tracker.gaps == stream.sent
    assert tracker.gaps == rx_down + tx_down
    assert (tracker.duplicates, tracker.reordered, stats.dropped, stats.kernel_dropped) == (
        0,
        0,
        0,
        0,
    )


# -- the router restarted mid-stream ----------------------------------------------------------


@pytest.mark.asyncio
async def test_router_restart_mid_stream_resumes_and_counts_the_gap(
    routed: lab.Lab, family: str
) -> None:
    # a -> r1 -> b with aiomcast listen --stats in b. r1's forwarding is stopped and started
    # again mid-stream, whichever engine runs it: for ipmr smcrouted stops (closing its
    # multicast routing socket flushes the kernel's routes) and starts again; for netfilter
    # the ruleset is deleted and loaded again. While it is stopped r1 forwards nothing.
    # Traffic resumes, the sender never sees an error, and listen's accounting is exact:
    # received + gaps == sent, the gaps being the datagrams sent while r1 did not forward.
    netlab = routed
    netlab.build("routers r1\nhosts a b\nnet 1 a r1\nnet 2 r1 b\n")
    a, b, r1 = netlab["a"], netlab["b"], netlab["r1"]
    assert isinstance(r1, lab.Router)
    group, port = GROUPS[family], free_port()
    listen = b.command(
        *AIOMCAST, "listen", group, str(port), "-i", "n2", "--stats", "--idle", "0.5"
    )
    with background(listen, ready="joined") as listener:
        with a.entered():
            tx = await aiomcast.open_sender(group, port, interface="n1", ttl=8)
        async with tx:
            stream = Stream(tx)
            await stream.burst(PER_PHASE)
            r1.stop_forwarding()
            down, _ = await stream.burst(PER_PHASE)
            r1.start_forwarding()
            await stream.burst(PER_PHASE)
            assert (tx.stats.sent, tx.stats.send_errors) == (stream.sent, 0)
        heard = listener.finish(timeout=10)
    assert heard.returncode == 0, heard
    stats = json.loads(heard.stdout.splitlines()[-1])
    print(f"\n{family} via {routed.engine}: sent {stream.sent}, down {down}, listen {stats}")
    assert stats["received"] + stats["gaps"] == stream.sent
    assert stats["gaps"] == down
    assert (stats["duplicates"], stats["reordered"], stats["dropped"]) == (0, 0, 0)


# -- an interface deleted while joined --------------------------------------------------------


@pytest.mark.asyncio
async def test_interface_deleted_while_joined(netlab: lab.Lab, family: str) -> None:
    # b has two links to a: w0 and x0. Two receivers in b join on w0, one plain and one
    # following interfaces, while a sends; then b's w0 is deleted. Neither receiver raises;
    # the follower's watcher reports the deletion (an InterfaceChange REMOVED that forgot the
    # membership); the plain one keeps its stale membership, says clearly that leaving it is
    # impossible, and stays usable: it joins on x0 and receives from there. Both close
    # cleanly, releasing every descriptor.
    a, b = netlab.host("a"), netlab.host("b")
    netlab.link(a, b, a_name="w0", b_name="w0", subnet=1)
    netlab.link(a, b, a_name="x0", b_name="x0", subnet=2)
    group = GROUPS[family]
    before = fds()
    with b.entered():
        plain = await aiomcast.open_receiver(group, 0, interface="w0")
        follower = await aiomcast.open_receiver(
            group, plain.port, interface="w0", follow_interfaces=True
        )
    with a.entered():
        tx = await aiomcast.open_sender(group, plain.port, interface="w0")
        tx_x = await aiomcast.open_sender(group, plain.port, interface="x0")
    plain_tally, follower_tally = Tally(), Tally()
    async with tx, tx_x:
        consumers = [
            asyncio.create_task(plain_tally.consume(plain)),
            asyncio.create_task(follower_tally.consume(follower)),
        ]
        stream = Stream(tx)
        await stream.burst(PER_PHASE)
        await plain_tally.until(stream.sent - 1)
        await follower_tally.until(stream.sent - 1)
        watcher = follower.interface_watcher
        assert watcher is not None
        (stale,) = plain.memberships
        b.ip("link", "del", "w0")
        async with asyncio.timeout(5):
            async for change in watcher:
                if ChangeKind.REMOVED in change.kinds:
                    break
        assert change.interface == "w0"
        assert len(change.forgotten) == 1
        assert follower.memberships == frozenset()
        assert watcher.waiting == frozenset({(aiomcast.Group(group), "w0")})
        print(f"\n{family}: watcher said: {change}")
        # The plain receiver: still open, its record of the membership unchanged, and leaving
        # the vanished interface is a typed error that names it.
        assert not plain.closed
        assert plain.memberships == frozenset({stale})
        with pytest.raises(aiomcast.InterfaceError, match="w0") as info:
            plain.leave(group, "w0")
        print(f"{family}: leave on the deleted interface: {info.type.__name__}: {info.value}")
        with b.entered():
            plain.join(group, "x0")
        # The numbers go on from where the deleted link stopped: nothing is missing.
        await Stream(tx_x, sent=stream.sent).burst(PER_PHASE)
        await plain_tally.until(stream.sent + PER_PHASE - 1)
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        await plain.aclose()
        await follower.aclose()
    assert plain_tally.delivered == 2 * PER_PHASE
    assert plain_tally.tracker.gaps == 0
    assert follower_tally.delivered == PER_PHASE  # it never joined x0
    assert fds() == before  # receivers, watcher's netlink socket and senders: all closed
    assert watcher.closed
    assert watcher.stats.forgotten == 1


# -- address churn under load ---------------------------------------------------------------

CHURN = 50
#: The follower's bound on unread changes: fewer than the churn makes.
MAX_CHANGES = 4
#: Churn steps between two waits for the watcher to have looked (at least CHURN / STEP looks).
STEP = 10


def secondary(family: str, n: int) -> tuple[str, ...]:
    """``ip addr`` arguments for the n-th secondary address on w0."""
    if family == "ipv4":
        return (f"10.201.1.{100 + n}/24", "dev", "w0")
    return (f"fd00:a10c:1::{100 + n:x}/64", "dev", "w0", "nodad")


def reported(watcher: aiomcast.InterfaceWatcher, address: str) -> bool:
    """Whether one of the watcher's recent changes says ``address`` was added."""
    return any(address in change.addresses_added for change in watcher.changes)


async def churn(host: lab.Host, family: str, watcher: aiomcast.InterfaceWatcher) -> None:
    """Replace a secondary address on w0 CHURN times: add the next one, remove the last one.

    ``ip`` runs in a thread, so that the sender and the receivers keep running meanwhile.
    Every STEP replacements, wait until the watcher has reported the newest address (it
    coalesces a burst of notifications into one look at the list, so without the waits 100
    notifications can become a handful of changes).
    """
    for n in range(CHURN):
        await asyncio.to_thread(host.ip, "addr", "add", *secondary(family, n))
        if n:
            await asyncio.to_thread(host.ip, "addr", "del", *secondary(family, n - 1))
        if n % STEP == STEP - 1:
            address = str(ipaddress.ip_interface(secondary(family, n)[0]).ip)
            async with asyncio.timeout(5):
                while not reported(watcher, address):  # noqa: ASYNC110 - no event for it
                    await asyncio.sleep(0.005)
    await asyncio.to_thread(host.ip, "addr", "del", *secondary(family, CHURN - 1))


@pytest.mark.asyncio
async def test_address_churn_under_load(netlab: lab.Lab, family: str) -> None:
    # While a sends a numbered stream, b's receiving interface gets 50 secondary addresses,
    # one after another (each added, then removed). A plain receiver and one following
    # interfaces both get every datagram (delivered == sent, no gap, some during the churn);
    # nobody reads the follower's watcher, whose queue stays at its bound and counts the
    # rest in stats.missed.
    a, b = netlab.host("a"), netlab.host("b")
    netlab.link(a, b, a_name="w0", b_name="w0", subnet=1)
    group = GROUPS[family]
    with b.entered():
        plain = await aiomcast.open_receiver(group, 0, interface="w0")
        follower = await aiomcast.open_receiver(group, plain.port, interface="w0")
        watcher = follower.follow_interfaces(max_changes=MAX_CHANGES)
    with a.entered():
        tx = await aiomcast.open_sender(group, plain.port, interface="w0")
    tallies = [Tally(), Tally()]
    stream = Stream(tx)
    stop = asyncio.Event()

    async def flow() -> None:
        while not stop.is_set():
            await stream.burst(5)

    async with plain, follower, tx:
        consumers = [
            asyncio.create_task(tally.consume(rx))
            for tally, rx in zip(tallies, (plain, follower), strict=True)
        ]
        sending = asyncio.create_task(flow())
        try:
            await tallies[0].until(0)
            started = tallies[0].delivered
            await churn(b, family, watcher)
            during = tallies[0].delivered - started
            stop.set()
            await sending
            for tally in tallies:
                await tally.until(stream.sent - 1)
            await asyncio.sleep(0.1)  # the watcher's last look at the list
        finally:
            sending.cancel()
            for task in consumers:
                task.cancel()
            await asyncio.gather(sending, *consumers, return_exceptions=True)
    stats = watcher.stats
    pending = [change async for change in watcher]  # closed: what is queued, then the end
    print(
        f"\n{family}: sent {stream.sent}, delivered {[t.delivered for t in tallies]} "
        f"({during} during the churn), watcher {stats}, {len(pending)} unread"
    )
    assert stream.refused == 0
    assert during > 0
    for tally in tallies:
        assert (tally.delivered, tally.tracker.gaps, tally.tracker.duplicates) == (
            stream.sent,
            0,
            0,
        )
    assert watcher.closed
    assert stats.notifications >= 2 * CHURN
    assert stats.changes >= CHURN // STEP > MAX_CHANGES
    assert len(pending) == MAX_CHANGES
    assert stats.missed == stats.changes - MAX_CHANGES
    assert all(
        set(c.kinds) <= {ChangeKind.ADDRESS_ADDED, ChangeKind.ADDRESS_REMOVED} for c in pending
    )
    assert (stats.joined, stats.forgotten, stats.failed) == (0, 0, 0)
