"""Expanding ring search on one host: the TTL-0 query answered on the host, and bad arguments.

tests/lab/test_hosts.py and tests/lab/test_lab.py search across links and routers.
"""

from __future__ import annotations

import asyncio

import pytest

import aiomcast
from tests.helpers import (
    Link,
    LinkPair,
)

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["ipv4", pytest.param("ipv6", marks=pytest.mark.root)])
def family(request: pytest.FixtureRequest) -> str:
    """IPv4 on lo (with or without root); IPv6 on the private namespace's veth pair (root)."""
    return str(request.param)


async def test_expanding_ring_search_on_one_host_stops_at_ttl_zero(
    family: str, local_veth: object
) -> None:
    # seed S8 + S10: a responder on the same host answers the TTL-0 query. IPv4 host scope
    # runs over lo, so both join there; IPv6 uses an interface-local group.
    if family == "ipv4":
        group, where = "239.1.2.3", "lo"
    else:
        assert isinstance(local_veth, LinkPair)
        group, where = "ff11::1:2:3", local_veth.ipv6.interface
    async with (
        aiomcast.open_endpoint(group, 0, interface=where) as responder,
        aiomcast.open_endpoint(group, responder.port, interface=where) as searcher,
    ):

        async def answer() -> None:
            async for query in responder:
                if query.payload == b"ping":
                    await responder.send(b"pong")

        task = asyncio.create_task(answer())
        try:
            result = await aiomcast.expanding_ring_search(
                searcher, b"ping", wait=0.5, accept=lambda d: d.payload == b"pong"
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert (result.ttl, result.tried) == (0, (0,))


async def test_bad_ring_search_arguments(link: Link) -> None:
    async with aiomcast.open_endpoint(link.group, 0, interface=link.interface) as ep:
        with pytest.raises(aiomcast.InvalidArgumentError, match="wait"):
            await aiomcast.expanding_ring_search(ep, b"q", wait=0)
        with pytest.raises(aiomcast.InvalidTTLError, match="300"):
            await aiomcast.expanding_ring_search(ep, b"q", ttls=[1, 300])
        with pytest.raises(aiomcast.InvalidArgumentError, match="empty"):
            await aiomcast.expanding_ring_search(ep, b"q", ttls=[])
