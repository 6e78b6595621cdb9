"""Reliability on one host: every size over the loopback interface, and open / join / close
cycles (also cancelled at random points) that leave nothing behind.

The half of the reliability suite that needs no second host (tests/lab/test_reliability.py
holds the rest): over lo with or without root, over a veth pair of the private namespace
with root. ``benchmarks/reliability.py`` runs the long forms (10,000 cycles); the ``long``
marker selects them here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import random
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

import aiomcast
from aiomcast._interfaces import kernel_memberships
from tests.conftest import LOOPBACK_V4
from tests.helpers import Link, collect, sizes, transport_for
from tests.processes import free_port


@pytest.fixture(params=["fast", "protocol"])
def fast(request: pytest.FixtureRequest) -> bool:
    """aiomcast's batching transport, or the event loop's own DatagramProtocol transport."""
    return bool(request.param == "fast")


@pytest.mark.asyncio
async def test_every_size_over_the_loopback_interface(fast: bool) -> None:
    # The same on lo (MTU 65536: nothing is fragmented), with or without root.
    link = LOOPBACK_V4
    rng = random.Random(7)
    wanted = sizes("ipv4", stride=4099)
    async with aiomcast.open_receiver(
        link.group,
        0,
        interface=link.interface,
        transport=transport_for(fast),
        receive_buffer=1 << 20,
    ) as rx:
        async with aiomcast.open_sender(
            link.group, rx.port, interface=link.interface, transport=transport_for(fast)
        ) as tx:
            for size in wanted:
                payload = rng.randbytes(size)
                await tx.send(payload)
                got = await collect(rx, 1, timeout=2.0)
                assert [d.payload for d in got] == [payload], f"size {size}"
    assert rx.stats.received == len(wanted)


# -- leaks -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Footprint:
    """What a process holds: descriptors, memberships, tasks and traced memory."""

    fds: int
    memberships: frozenset[tuple[str, str]]
    tasks: int
    traced: int

    @classmethod
    def now(cls) -> Footprint:
        gc.collect()
        held: set[tuple[str, str]] = set()
        for family in aiomcast.Family:
            held |= kernel_memberships(family) or set()
        return cls(
            fds=len(os.listdir("/proc/self/fd")),
            memberships=frozenset(held),
            tasks=len(asyncio.all_tasks()),
            traced=tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0,
        )


def leak_links(family: str, local_veth: Any) -> Link:
    if family == "ipv4-lo":
        return LOOPBACK_V4
    return local_veth.ipv6  # type: ignore[no-any-return]


async def one_cycle(link: Link, n: int, port: int, *, sender: bool) -> None:
    """Open a receiver, join two more groups, receive (on some cycles), leave one, close.

    The port is the same on every cycle: uvloop caches the socket address of each
    destination (an LRU of 1024), which would look like growth with a new port each time.
    """
    fast = n % 2 == 0
    async with aiomcast.open_receiver(
        link.group, port, interface=link.interface, transport=transport_for(fast), queue_size=8
    ) as rx:
        rx.join(link.other_group(1))
        rx.join(link.other_group(2))
        if sender:
            async with aiomcast.open_sender(
                link.group, rx.port, interface=link.interface, transport=transport_for(not fast)
            ) as tx:
                await tx.send(b"cycle %d" % n)
                await rx.receive()
        rx.leave(link.other_group(1))


@contextlib.contextmanager
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


async def cycles(link: Link, count: int, *, cancel: bool, seed: int = 1) -> tuple[int, int]:
    """Run ``count`` cycles (cancelled at random points when ``cancel``).

    Returns (completed, cancelled).
    """
    rng = random.Random(seed)
    done = cancelled = 0
    port = free_port()
    for n in range(count):
        task = asyncio.ensure_future(one_cycle(link, n, port, sender=n % 5 == 0))
        if cancel:
            for _ in range(rng.randrange(0, 12)):
                await asyncio.sleep(0)
            task.cancel()
        try:
            await task
            done += 1
        except asyncio.CancelledError:
            cancelled += 1
    return done, cancelled


async def assert_no_growth(link: Link, count: int, *, cancel: bool) -> tuple[int, int]:
    # Warm up first: caches (interfaces, addresses), the loop's own structures and
    # tracemalloc's first allocations settle, then nothing may grow.
    await cycles(link, 20, cancel=cancel, seed=0)
    with traced():
        before = Footprint.now()
        outcome = await cycles(link, count, cancel=cancel)
        after = Footprint.now()
    assert after.fds == before.fds
    assert after.memberships == before.memberships
    assert after.tasks == before.tasks
    assert after.traced - before.traced < 64 * 1024, (before.traced, after.traced)
    return outcome


@pytest.mark.parametrize("where", ["ipv4-lo", pytest.param("ipv6", marks=pytest.mark.root)])
@pytest.mark.asyncio
async def test_open_join_close_cycles_leave_nothing(where: str, local_veth: Any) -> None:
    link = leak_links(where, local_veth)
    done, _ = await assert_no_growth(link, 500, cancel=False)
    assert done == 500


@pytest.mark.parametrize("where", ["ipv4-lo", pytest.param("ipv6", marks=pytest.mark.root)])
@pytest.mark.asyncio
async def test_cancelled_at_random_points_leaves_nothing(where: str, local_veth: Any) -> None:
    # The cycle's task is cancelled after a random number of loop iterations: while opening,
    # joining, sending, receiving or closing. Every descriptor, membership and task goes.
    link = leak_links(where, local_veth)
    done, cancelled = await assert_no_growth(link, 500, cancel=True)
    assert done + cancelled == 500
    assert cancelled > 100  # both kinds of ending really happened
    assert done > 10


@pytest.mark.long
@pytest.mark.timeout(600)
@pytest.mark.parametrize("cancel", [False, True], ids=["plain", "cancelled"])
@pytest.mark.parametrize("where", ["ipv4-lo", pytest.param("ipv6", marks=pytest.mark.root)])
@pytest.mark.asyncio
async def test_ten_thousand_cycles_leave_nothing(where: str, cancel: bool, local_veth: Any) -> None:
    link = leak_links(where, local_veth)
    done, cancelled = await assert_no_growth(link, 10_000, cancel=cancel)
    assert done + cancelled == 10_000
