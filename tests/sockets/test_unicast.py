"""Endpoint.send_to: a responder answers by unicast from its own socket and port.

The querier is a plain socket, as a real peer (ssmping, an mDNS or SSDP client) would be:
it sends a query to the group, and must get the answer from the port it sent the query to.
Runs on aiomcast's transport (C and pure Python) and the loop's, on asyncio and uvloop, IPv4
over lo and a veth pair, IPv6 over a veth pair (link-local, with its zone); on trio through
aiomcast.anyio.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Literal

import anyio
import pytest
import pytest_asyncio

import aiomcast
import aiomcast.anyio
from tests.helpers import Link, LinkPair, collect

IP_MULTICAST_IF6 = socket.IPV6_MULTICAST_IF


@pytest.fixture
def querier(link: Link) -> Iterator[socket.socket]:
    """A plain UDP socket that sends its queries to the group out of ``link``'s interface."""
    family = socket.AF_INET if link.family == "ipv4" else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    index = socket.if_nametoindex(link.interface)
    if family == socket.AF_INET:
        sock.bind((link.address, 0))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(link.address))
    else:
        sock.bind(("::", 0))
        sock.setsockopt(socket.IPPROTO_IPV6, IP_MULTICAST_IF6, index)
    try:
        yield sock
    finally:
        sock.close()


def answer_to(link: Link, source: str) -> str:
    """The address to answer ``source`` at: a link-local IPv6 one needs its zone."""
    if link.family == "ipv6" and source.startswith("fe80:") and "%" not in source:
        return f"{source}%{link.interface}"
    return source


async def receive(sock: socket.socket) -> tuple[bytes, tuple[object, ...]]:
    """The querier's next datagram (within its 2 s timeout), read in a thread.

    uvloop has no loop.sock_recvfrom.
    """
    data, address = await asyncio.to_thread(sock.recvfrom, 2048)
    return data, tuple(address)


@pytest.mark.asyncio
async def test_a_responder_answers_by_unicast_from_its_port(
    link: Link, querier: socket.socket, transport_path: str
) -> None:
    async with aiomcast.open_endpoint(link.group, 0, interface=link.interface) as ep:
        querier.sendto(b"who is there?", (link.group, ep.port))
        (query,) = await collect(ep, 1)
        assert query.source_port == querier.getsockname()[1]
        await ep.send_to(b"me", answer_to(link, query.source), query.source_port)
        data, address = await receive(querier)
        assert data == b"me"
        assert address[1] == ep.port  # from the port the query went to
        assert ep.stats.sent == 1
        assert ep.stats.sent_bytes == 2


@pytest.mark.asyncio
async def test_send_to_takes_ipaddress_objects_and_a_zone_index(
    link: Link, querier: socket.socket
) -> None:
    async with aiomcast.open_endpoint(link.group, 0, interface=link.interface) as ep:
        querier.sendto(b"q", (link.group, ep.port))
        (query,) = await collect(ep, 1)
        target: object = ipaddress.ip_address(query.source)
        if link.family == "ipv6" and query.source.startswith("fe80:"):
            index = socket.if_nametoindex(link.interface)
            target = ipaddress.IPv6Address(f"{query.source}%{index}")
        await ep.send_to(b"a", target, query.source_port)
        data, _ = await receive(querier)
        assert data == b"a"


@pytest_asyncio.fixture
async def v6_endpoint(local_veth: LinkPair | None) -> AsyncIterator[aiomcast.Endpoint]:
    """An IPv6 endpoint on a veth pair of the private namespace (root)."""
    assert local_veth is not None
    v6 = local_veth.ipv6
    async with aiomcast.open_endpoint(v6.group, 0, interface=v6.interface) as ep:
        yield ep


@pytest.mark.root
@pytest.mark.asyncio
async def test_a_link_local_peer_without_its_zone_is_a_guess(
    v6_endpoint: aiomcast.Endpoint,
) -> None:
    # Linux does not refuse a link-local destination whose scope id is 0: it sends it out of
    # whichever interface its route lookup for fe80::/64 finds. On a host with several links
    # that is a guess, which is why send_to takes the zone (fe80::1%eth0).
    await v6_endpoint.send_to(b"x", "fe80::1", 9)
    assert v6_endpoint.stats.sent == 1
    assert v6_endpoint.stats.send_errors == 0


@pytest.mark.root
@pytest.mark.asyncio
async def test_a_zone_that_names_no_interface_is_refused(v6_endpoint: aiomcast.Endpoint) -> None:
    with pytest.raises(aiomcast.InterfaceError, match="nosuch0"):
        await v6_endpoint.send_to(b"x", "fe80::1%nosuch0", 9)
    assert v6_endpoint.stats.sent == 0


BAD = [
    ("239.1.2.3", 9, "multicast group"),
    ("0.0.0.0", 9, "unspecified"),
    ("::1", 9, "IPv6 but the endpoint is IPv4"),
    ("not-an-ip", 9, "'not-an-ip' is not an IP address"),
    ("10.0.0.1%eth0", 9, "is not an IP address"),
    (b"10.0.0.1", 9, "not bytes"),
    ("127.0.0.1", 0, "port 0"),
    ("127.0.0.1", 70000, "port 70000"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("address", "port", "words"), BAD)
async def test_bad_peers_are_refused_by_name(address: object, port: int, words: str) -> None:
    async with aiomcast.open_endpoint("239.1.2.3", 0, interface="lo") as ep:
        with pytest.raises(aiomcast.InvalidArgumentError, match=words):
            await ep.send_to(b"x", address, port)
        assert ep.stats.sent == 0


@pytest.mark.asyncio
async def test_a_closed_endpoint_sends_nothing() -> None:
    ep = await aiomcast.open_endpoint("239.1.2.3", 0, interface="lo")
    await ep.aclose()
    with pytest.raises(aiomcast.EndpointClosedError):
        await ep.send_to(b"x", "127.0.0.1", 9)


@pytest.mark.asyncio
async def test_a_sender_answers_too(querier: socket.socket, link: Link) -> None:
    # A Sender receives nothing, but may still send by unicast (to a peer it knows).
    async with aiomcast.open_sender(link.group, 9, interface=link.interface) as tx:
        peer = querier.getsockname()
        host = peer[0] if link.family == "ipv4" else link.address
        await tx.send_to(b"hello", host, peer[1])
        data, address = await receive(querier)
    assert data == b"hello"
    assert address[1] == tx.port


@pytest.mark.parametrize(
    "anyio_backend",
    [
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
        pytest.param(("trio", {}), id="trio"),
    ],
)
@pytest.mark.anyio
async def test_send_to_on_every_anyio_backend(link: Link) -> None:
    family: Literal[socket.AddressFamily.AF_INET, socket.AddressFamily.AF_INET6] = (
        socket.AF_INET if link.family == "ipv4" else socket.AF_INET6
    )
    async with aiomcast.anyio.open_endpoint(link.group, 0, interface=link.interface) as ep:
        async with await anyio.create_udp_socket(
            family=family,
            local_host=link.address if link.family == "ipv4" else "::",
            local_port=0,
        ) as peer:
            raw = peer.extra(anyio.abc.SocketAttribute.raw_socket)
            if family == socket.AF_INET:
                raw.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(link.address)
                )
            else:
                raw.setsockopt(
                    socket.IPPROTO_IPV6, IP_MULTICAST_IF6, socket.if_nametoindex(link.interface)
                )
            await peer.sendto(b"query", link.group, ep.port)
            with anyio.fail_after(2):
                query = await ep.receive()
            await ep.send_to(b"answer", answer_to(link, query.source), query.source_port)
            with anyio.fail_after(2):
                data, (_, port, *_) = await peer.receive()
    assert data == b"answer"
    assert port == ep.port
