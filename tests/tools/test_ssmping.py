"""ssmping and ssmpingd (Debian ssmping) as peers of aiomcast's source-specific endpoints."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator

import pytest

import aiomcast
from aiomcast.testing import lab
from tests.helpers import collect

#: SSM groups (232.0.0.0/8, ff3x::/32) and any-source groups, per family.
SSM = {"ipv4": "232.7.7.7", "ipv6": "ff35::7:7:7"}
ASM = {"ipv4": "239.7.7.7", "ipv6": "ff15::7:7:7"}
#: Unicast sources that send nothing here (for kernel-state tests).
OTHERS = {"ipv4": ("10.250.0.1", "10.250.0.2"), "ipv6": ("fd00:fa::1", "fd00:fa::2")}
THREE = "hosts s1 s2 rx\nnet 1 s1 s2 rx\n"


# -- ssmping / ssmpingd (Debian ssmping) -------------------------------------------------------

#: The groups ssmpingd answers on (ssmping(1)).
SSMPING_GROUPS = {"ipv4": "232.43.211.234", "ipv6": "ff3e::4321:1234"}


@pytest.fixture
def pair() -> Iterator[lab.Lab]:
    if shutil.which("ssmpingd") is None or shutil.which("ssmping") is None:
        pytest.fail("ssmping is not installed (Debian package ssmping)")
    with lab.Lab() as net:
        net.build("hosts q r\nnet 1 q r\n")
        yield net


@pytest.fixture
def ssmpingd(pair: lab.Lab) -> Iterator[lab.Lab]:
    """ssmpingd running in host ``r`` of the pair."""
    daemon = subprocess.Popen(
        pair["r"].command("ssmpingd"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield pair
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=5)


@pytest.mark.asyncio
async def test_ssmpingd_replies_reach_an_aiomcast_ssm_receiver(
    ssmpingd: lab.Lab, family: str
) -> None:
    # ssmpingd (host r) answers a unicast query on port 4321 twice: unicast to the querier,
    # and multicast to its SSM group on the querier's port. An aiomcast receiver in q, bound
    # to the group and joined to (r, group), gets the multicast answer; one joined to another
    # source does not. The query is ssmping's: "Q" then the payload ssmpingd echoes as "A".
    q, r = ssmpingd["q"], ssmpingd["r"]
    group, responder = SSMPING_GROUPS[family], r.address(1, family)
    port = 7306
    with q.entered():
        rx = await aiomcast.open_receiver(
            group, port, interface="n1", sources=[responder], bind_address=group
        )
        stranger = await aiomcast.open_receiver(
            group, port, interface="n1", sources=[OTHERS[family][0]], bind_address=group
        )
        querier = socket.socket(
            socket.AF_INET if family == "ipv4" else socket.AF_INET6, socket.SOCK_DGRAM
        )
    with querier:
        querier.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        querier.bind(("0.0.0.0" if family == "ipv4" else "::", port))
        async with rx, stranger:
            got: list[aiomcast.Datagram] = []
            for attempt in range(10):  # until ssmpingd listens
                querier.sendto(b"Q aiomcast %d" % attempt, (responder, 4321))
                got = await collect(rx, 1, 0.3)
                if got:
                    break
            assert [(d.source, d.source_port) for d in got] == [(responder, 4321)]
            assert got[0].payload.startswith(b"A aiomcast ")
            assert not await collect(stranger, 1, 0.2)


@pytest.mark.asyncio
async def test_ssmping_gets_multicast_replies_from_an_aiomcast_responder(
    pair: lab.Lab, family: str
) -> None:
    # aiomcast as the responder (host r): it answers each query like ssmpingd, unicast and to
    # the SSM group, from port 4321. ssmping (host q) joins (r, group) and reports both.
    q, r = pair["q"], pair["r"]
    group, responder = SSMPING_GROUPS[family], r.address(1, family)
    with r.entered():
        ep = await aiomcast.open_endpoint(
            None, 4321, family=family, interface="n1", ttl=64, transport="loop"
        )

    async def answer() -> None:
        async for query in ep:
            if not query.payload.startswith(b"Q"):
                continue
            reply = b"A" + query.payload[1:]
            # The unicast answer goes through the socket (aiomcast sends to groups only).
            ep.socket.sendto(reply, (query.source, query.source_port))
            await ep.send(reply, group, query.source_port)

    async with ep:
        task = asyncio.create_task(answer())
        try:
            flag = "-4" if family == "ipv4" else "-6"
            argv = q.command("ssmping", flag, "-c", "2", responder)
            result = await asyncio.to_thread(
                subprocess.run, argv, capture_output=True, text=True, timeout=15, check=False
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert result.returncode == 0, result
    assert f"multicast from {responder}, seq=1" in result.stdout, result.stdout
    assert f"multicast from {responder}, seq=2" in result.stdout, result.stdout
    assert f"unicast from {responder}, seq=1" in result.stdout, result.stdout
