"""Source-specific and source-filtered multicast across hosts: the lab.

Three hosts on one bridge (``s1`` and ``s2`` send, ``rx`` receives; the bridge floods every
datagram, so only the receiver's own source filter decides), a routed case on every engine,
the membership reports on the wire and the command line. tests/sockets/test_ssm.py pins what
the kernel does with the source options on one host; tests/tools/test_ssmping.py has ssmping
and ssmpingd as peers.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import pytest

import aiomcast
from aiomcast.testing import lab
from tests.helpers import collect, start_capture, stop_capture
from tests.processes import AIOMCAST, background, run

#: SSM groups (232.0.0.0/8, ff3x::/32) and any-source groups, per family.
SSM = {"ipv4": "232.7.7.7", "ipv6": "ff35::7:7:7"}
ASM = {"ipv4": "239.7.7.7", "ipv6": "ff15::7:7:7"}
#: Unicast sources that send nothing here (for kernel-state tests).
OTHERS = {"ipv4": ("10.250.0.1", "10.250.0.2"), "ipv6": ("fd00:fa::1", "fd00:fa::2")}
THREE = "hosts s1 s2 rx\nnet 1 s1 s2 rx\n"


# -- the lab: two senders, one receiver --------------------------------------------------------


@pytest.fixture
def three() -> Iterator[lab.Lab]:
    with lab.Lab() as net:
        net.build(THREE)
        yield net


async def senders(
    net: lab.Lab, group: str, port: int, ttl: int = 1
) -> tuple[aiomcast.Sender, aiomcast.Sender]:
    opened = []
    for name in ("s1", "s2"):
        with net[name].entered():
            opened.append(await aiomcast.open_sender(group, port, interface="n1", ttl=ttl))
    return opened[0], opened[1]


async def origins(
    rx: aiomcast.Receiver, s1: aiomcast.Sender, s2: aiomcast.Sender, tag: str
) -> set[str]:
    """Both senders send one datagram each; the sources of what ``rx`` got (within 0.4 s)."""
    await s1.send(f"{tag} from s1".encode())
    await s2.send(f"{tag} from s2".encode())
    got = await collect(rx, 2, 0.4)
    return {d.payload.decode().rsplit(" ", 1)[1] for d in got}


@pytest.mark.asyncio
async def test_source_specific_receiver_gets_only_its_sources(three: lab.Lab, family: str) -> None:
    group, port = SSM[family], 7301
    rx_host = three["rx"]
    a1, a2 = three["s1"].address(1, family), three["s2"].address(1, family)
    with rx_host.entered():
        rx = await aiomcast.open_receiver(group, port, interface="n1", sources=[a1])
    s1, s2 = await senders(three, group, port)
    async with rx, s1, s2:
        assert await origins(rx, s1, s2, "one") == {"s1"}
        rx.join(group, source=a2)  # several sources per group
        assert await origins(rx, s1, s2, "two") == {"s1", "s2"}
        rx.leave(group, source=a1)
        assert await origins(rx, s1, s2, "three") == {"s2"}
        assert rx.stats.dropped == 0


@pytest.mark.asyncio
async def test_blocked_source_stops_and_resumes(three: lab.Lab, family: str) -> None:
    group, port = ASM[family], 7302
    a2 = three["s2"].address(1, family)
    with three["rx"].entered():
        rx = await aiomcast.open_receiver(group, port, interface="n1")
    s1, s2 = await senders(three, group, port)
    async with rx, s1, s2:
        assert await origins(rx, s1, s2, "before") == {"s1", "s2"}
        rx.block(group, a2)
        assert await origins(rx, s1, s2, "blocked") == {"s1"}
        rx.unblock(group, a2)
        assert await origins(rx, s1, s2, "after") == {"s1", "s2"}


@pytest.mark.asyncio
async def test_reports_carry_the_source_records(three: lab.Lab, family: str) -> None:
    # IGMPv3 / MLDv2 on the wire: a source-specific join is ALLOW {S} (INCLUDE mode), leaving
    # the last source BLOCK {S}; on an any-source membership, blocking is BLOCK {S} and
    # unblocking ALLOW {S}. The reports name the source (tcpdump -vv prints the lists).
    ssm, asm = SSM[family], ASM[family]
    a1 = three["s1"].address(1, family)
    rx_host = three["rx"]
    # MLD packets carry a hop-by-hop header: "icmp6" would not match them.
    capture = start_capture(
        three["s1"], "n1", "igmp" if family == "ipv4" else "ip6", verbosity="-vv"
    )
    # Each change is reported at once and repeated within the unsolicited report interval
    # (1 s by default); a change made meanwhile is merged into the repeat (a block right after
    # a join goes out as TO_EX {S}). A 10 ms interval keeps the steps apart, and the test short.
    for key in (
        "net.ipv4.conf.n1.igmpv3_unsolicited_report_interval=10",
        "net.ipv6.conf.n1.mldv2_unsolicited_report_interval=10",
    ):
        rx_host.run("sysctl", "-qw", key)
    with rx_host.entered():
        rx = await aiomcast.open_receiver(ssm, 7303, interface="n1", sources=[a1])
    for step in (
        lambda: rx.leave(ssm, source=a1),
        lambda: rx.join(asm),
        lambda: rx.block(asm, a1),
        lambda: rx.unblock(asm, a1),
    ):
        await asyncio.sleep(0.25)
        step()
    await asyncio.sleep(0.25)
    await rx.aclose()
    packets = stop_capture(capture, settle=0.5)
    kind = "igmp v3 report" if family == "ipv4" else "multicast listener report v2"
    records = [p for p in packets if kind in p]

    changes = [
        change
        for p in records
        for change in re.findall(r"\[gaddr (\S+) (\w+) \{ ([^}]*)\}\]", p)
        if change[0] in (ssm, asm)
    ]
    # In this order (repeats and the kernel's full-state repeats, such as TO_EX {S} after a
    # block, may come between):
    steps = [
        {(ssm, "allow", f"{a1} ")},  # source-specific join: INCLUDE {} -> INCLUDE {S}
        {(ssm, "block", f"{a1} ")},  # the last source left
        {(asm, "to_ex", "")},  # any-source join: EXCLUDE {}
        {(asm, "block", f"{a1} "), (asm, "to_ex", f"{a1} ")},  # EXCLUDE {S}
        {(asm, "allow", f"{a1} ")},  # unblocked
        {(asm, "to_in", "")},  # left
    ]
    remaining = iter(changes)
    missing = [step for step in steps if not any(change in step for change in remaining)]
    assert not missing, (missing, changes)


@pytest.mark.asyncio
async def test_routed_source_specific_receiver(routed: lab.Lab, family: str) -> None:
    # The router forwards every source of the group ((*,G) routes); the receiver behind it
    # still gets only the source it joined: the filter is its own kernel's.
    net = routed
    net.build("routers r1\nhosts s1 s2 rx\nnet 1 s1 s2 r1\nnet 2 r1 rx\n")
    group, port = SSM[family], 7304
    a1 = net["s1"].address(1, family)
    with net["rx"].entered():
        rx = await aiomcast.open_receiver(group, port, interface="n2", sources=[a1])
    s1, s2 = await senders(net, group, port, ttl=8)
    async with rx, s1, s2:
        await origins(rx, s1, s2, "warm up")  # the router installs its routes
        assert await origins(rx, s1, s2, "routed") == {"s1"}


ROUTED_BY_SOURCE = """
routers r1
hosts s1 s2 rx
net 1 s1 s2 r1
net 2 r1 rx
route r1 from 1 to 2 group {ssm} source s1
route r1 from 1 to 2 group {asm}
"""


@pytest.mark.asyncio
async def test_router_routes_by_source(routed: lab.Lab, family: str) -> None:
    # A router with an (S,G) route forwards that source's datagrams for the group and no
    # other source's, though the receiver behind it asks for both; a (*,G) route beside it
    # forwards every source of its own group. Routes are the router's, so this is the router
    # deciding, not the receiver's kernel.
    net = routed
    asm = ASM[family]
    net.build(ROUTED_BY_SOURCE.format(ssm=SSM[family], asm=asm))
    port = 7305
    a1, a2 = net["s1"].address(1, family), net["s2"].address(1, family)
    with net["rx"].entered():
        rx = await aiomcast.open_receiver(SSM[family], port, interface="n2", sources=[a1, a2])
        any_source = await aiomcast.open_receiver(asm, port + 1, interface="n2")
    s1, s2 = await senders(net, SSM[family], port, ttl=8)
    t1, t2 = await senders(net, asm, port + 1, ttl=8)
    async with rx, any_source, s1, s2, t1, t2:
        await origins(rx, s1, s2, "warm up")
        await origins(any_source, t1, t2, "warm up")
        assert await origins(rx, s1, s2, "by source") == {"s1"}
        assert await origins(any_source, t1, t2, "any source") == {"s1", "s2"}


def test_listen_source_and_block_in_the_lab(three: lab.Lab, family: str) -> None:
    # `listen --source S1` hears only s1; `listen --block S2` hears everyone but s2.
    a1, a2 = three["s1"].address(1, family), three["s2"].address(1, family)
    for group, flag, address, expect in (
        (SSM[family], "--source", a1, {a1}),
        (ASM[family], "--block", a2, {a1}),
    ):
        port = "7305"
        listen = three["rx"].command(
            *AIOMCAST, "listen", group, port, "-i", "n1", flag, address, "--json", "--idle", "1"
        )
        with background(listen, ready="joined") as rx:
            word = "from" if flag == "--source" else "blocking"
            assert rx.ready_line == f"joined {group} on n1 {word} {address}\n"
            for name in ("s1", "s2"):
                sent = run(
                    three[name].command(
                        *AIOMCAST, "send", group, port, "-i", "n1", "--count", "2", "--rate", "50"
                    )
                )
                assert sent.returncode == 0, sent
            got = rx.finish(timeout=10)
        assert got.returncode == 0, got
        sources = [json.loads(line)["source"] for line in got.out_lines]
        assert len(sources) == 2, got.stdout
        assert set(sources) == expect
