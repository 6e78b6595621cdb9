# Design: expanding-ring search (S10). Send a query with TTL 0, then raise the TTL until a reply
# arrives or the TTLs run out, and report the TTL that found the responder. The search only
# changes the endpoint's TTL while it runs and restores it afterwards.
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from ._address import AddressScope, Family, Group, GroupLike, validate_ttl
from ._endpoint import Endpoint, driver_of
from ._errors import InvalidArgumentError, show
from ._types import Datagram

__all__ = ["RingSearchResult", "expanding_ring_search"]


@dataclasses.dataclass(frozen=True, slots=True)
class RingSearchResult:
    """What an expanding-ring search found.

    Attributes:
        ttl: the smallest TTL whose query drew a reply, or None when none did.
        reply: the first accepted reply, or None.
        tried: the TTLs whose queries were sent, in order.
        ignored: datagrams received during the search that ``accept`` refused (for example
            the query itself, looped back to this host).
    """

    ttl: int | None
    reply: Datagram | None
    tried: tuple[int, ...]
    ignored: int

    @property
    def found(self) -> bool:
        """True when a reply arrived."""
        return self.reply is not None


async def expanding_ring_search(
    endpoint: Endpoint,
    query: bytes,
    *,
    ttls: Iterable[int] | None = None,
    max_ttl: int = 255,
    wait: float = 0.5,
    group: GroupLike | None = None,
    port: int | None = None,
    accept: Callable[[Datagram], bool] | None = None,
) -> RingSearchResult:
    """Find the nearest responder by sending ``query`` with TTL 0, 1, 2, ... (S10).

    Args:
        endpoint: an open Endpoint; replies (multicast or unicast to its port) are read from it,
            so no other task may iterate it meanwhile.
        query: the query payload.
        ttls: the TTLs to try, in order; default ``range(0, max_ttl + 1)``, from 1 for IPv6
            groups wider than interface-local (hop limit 0 would leave the host on Linux).
        max_ttl: the last TTL when ``ttls`` is not given.
        wait: seconds to wait for a reply after each query.
        group: where to send; default the endpoint's destination group.
        port: the destination port; default the endpoint's destination port.
        accept: which datagrams count as replies; default any whose payload differs from
            ``query`` (so the looped-back query is not mistaken for an answer).
    """
    if not isinstance(endpoint, Endpoint):
        raise InvalidArgumentError(
            f"endpoint must be an Endpoint (it sends and receives), not {type(endpoint).__name__}",
            value=type(endpoint).__name__,
        )
    # A loop's clock is a float: a larger wait (a huge int) could not be added to it.
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 < wait <= 1e9:
        raise InvalidArgumentError(
            f"wait {show(wait)} must be a positive number of seconds up to 1e9", value=wait
        )
    if ttls is not None and not isinstance(ttls, Iterable):
        raise InvalidArgumentError(f"ttls {show(ttls)} must be an iterable of TTLs", value=ttls)
    candidates = ttls if ttls is not None else range(validate_ttl(max_ttl) + 1)
    steps = [validate_ttl(t) for t in candidates]
    target = Group(group) if group is not None else (endpoint.destination or (None, 0))[0]
    if (
        ttls is None
        and target is not None
        and target.family is Family.IPV6
        and target.scope is not AddressScope.INTERFACE_LOCAL
    ):
        # Hop limit 0 cannot stay on the host for this group (see Sender.ttl): start at 1.
        steps = [t for t in steps if t != 0]
    if not steps:
        raise InvalidArgumentError("ttls is empty: nothing to try", value=ttls)
    is_reply = accept if accept is not None else (lambda d: d.payload != query)
    original = endpoint.ttl
    tried: list[int] = []
    ignored = 0
    driver = driver_of(endpoint)  # asyncio's or, on trio, anyio's
    try:
        for ttl in steps:
            endpoint.ttl = ttl
            tried.append(ttl)
            await endpoint.send(query, group, port)
            deadline = driver.time() + wait
            while (remaining := deadline - driver.time()) > 0:
                try:
                    async with driver.timeout(remaining):
                        datagram = await endpoint.receive()
                except TimeoutError:
                    break
                if is_reply(datagram):
                    return RingSearchResult(ttl, datagram, tuple(tried), ignored)
                ignored += 1
    finally:
        if not endpoint.closed:
            endpoint.ttl = original
    return RingSearchResult(None, None, tuple(tried), ignored)
