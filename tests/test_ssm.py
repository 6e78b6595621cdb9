"""Source-specific and source-filtered multicast (IGMPv3 / MLDv2), end to end.

What the Linux kernel does with the source options is pinned first (plain sockets and the
socket layer, on a veth pair in the private namespace). Then the lab: three hosts on one
bridge (``s1`` and ``s2`` send, ``rx`` receives; the bridge floods every datagram, so only the
receiver's own source filter decides), a routed case across smcroute, the membership reports
on the wire, the command line, and ssmping / ssmpingd as peers.
"""

from __future__ import annotations

import asyncio
import errno
import json
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator

import pytest

import aiomcast
from aiomcast import _socket
from aiomcast._options import join_option, leave_option, source_option
from aiomcast.testing import lab
from tests.conftest import LOOPBACK_V4
from tests.helpers import Link, collect, member, require_root, start_capture, stop_capture
from tests.processes import AIOMCAST, background, free_port, run

#: SSM groups (232.0.0.0/8, ff3x::/32) and any-source groups, per family.
SSM = {"ipv4": "232.7.7.7", "ipv6": "ff35::7:7:7"}
ASM = {"ipv4": "239.7.7.7", "ipv6": "ff15::7:7:7"}
#: Unicast sources that send nothing here (for kernel-state tests).
OTHERS = {"ipv4": ("10.250.0.1", "10.250.0.2"), "ipv6": ("fd00:fa::1", "fd00:fa::2")}
THREE = "hosts s1 s2 rx\nnet 1 s1 s2 rx\n"


def plain_socket(link: Link) -> socket.socket:
    family = socket.AF_INET if link.family == "ipv4" else socket.AF_INET6
    return socket.socket(family, socket.SOCK_DGRAM)


def apply(sock: socket.socket, option: tuple[int, int, bytes]) -> None:
    sock.setsockopt(*option)


def errno_of(call: object) -> int:
    assert callable(call)
    try:
        call()
    except OSError as exc:
        return exc.errno or 0
    raise AssertionError("the kernel accepted it")


# -- what Linux does (pinned) ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_linux_accepts_any_source_joins_to_ssm_groups_aiomcast_refuses(
    wire_link: Link,
) -> None:
    # Pinned (Linux 6.18): IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP to 232.0.0.0/8 or ff3x::/32 is
    # accepted (and reported as EXCLUDE {}, which SSM routers ignore). RFC 4604 says a host
    # should refuse it; aiomcast does, naming the group and the way out (source=).
    group = aiomcast.Group(SSM[wire_link.family])
    index = socket.if_nametoindex(wire_link.interface)
    with plain_socket(wire_link) as sock:
        apply(sock, join_option(group, index))
        assert member(wire_link.family, wire_link.interface, str(group))
        apply(sock, leave_option(group, index))
    async with aiomcast.open_receiver(
        None, 0, family=wire_link.family, interface=wire_link.interface
    ) as rx:
        with pytest.raises(aiomcast.InvalidGroupError, match=rf"{group}.*source="):
            rx.join(group)
        assert not rx.memberships
        with pytest.raises(aiomcast.InvalidGroupError, match="source="):
            await aiomcast.open_receiver(group, 0, interface=wire_link.interface)
        source = OTHERS[wire_link.family][0]
        membership = rx.join(group, source=source)
        assert membership == aiomcast.Membership(group, membership.interface, source)
        assert member(wire_link.family, wire_link.interface, str(group))


@pytest.mark.asyncio
async def test_linux_silently_turns_an_any_source_membership_source_specific(
    wire_link: Link,
) -> None:
    # Pinned (Linux 6.18): MCAST_JOIN_SOURCE_GROUP on an any-source membership without
    # blocked sources is accepted and switches it to INCLUDE {S}: any-source reception ends,
    # and leaving S leaves the group. (With a blocked source it is EINVAL.) aiomcast refuses
    # the mix with SourceFilterError before the kernel sees it.
    group = aiomcast.Group(ASM[wire_link.family])
    s1, s2 = OTHERS[wire_link.family]
    index = socket.if_nametoindex(wire_link.interface)
    with plain_socket(wire_link) as sock:
        apply(sock, join_option(group, index))
        apply(sock, source_option("join", group, s1, index))
        assert member(wire_link.family, wire_link.interface, str(group))
        apply(sock, source_option("leave", group, s1, index))
        assert not member(wire_link.family, wire_link.interface, str(group))  # all gone
        apply(sock, join_option(group, index))
        apply(sock, source_option("block", group, s2, index))
        assert errno_of(lambda: apply(sock, source_option("join", group, s1, index))) == (
            errno.EINVAL
        )
    async with aiomcast.open_receiver(group, 0, interface=wire_link.interface) as rx:
        with pytest.raises(aiomcast.SourceFilterError, match="leave it before joining"):
            rx.join(group, source=s1)
        rx.leave(group)
        rx.join(group, source=s1)
        with pytest.raises(aiomcast.SourceFilterError, match="source-specifically"):
            rx.join(group)
        with pytest.raises(aiomcast.SourceFilterError, match="only an any-source"):
            rx.block(group, s2)


# (operation, set-up, errno): what MCAST_*_SOURCE_GROUP / MCAST_(UN)BLOCK_SOURCE return.
SOURCE_ERRNOS = [
    ("block", "nothing joined", errno.EINVAL),
    ("unblock", "nothing joined", errno.EINVAL),
    ("leave", "nothing joined", errno.EINVAL),
    ("block", "source joined", errno.EINVAL),
    ("join", "source joined", errno.EADDRNOTAVAIL),
    ("leave", "group joined", errno.EADDRNOTAVAIL),
    ("block", "source blocked", errno.EADDRNOTAVAIL),
    ("unblock", "group joined", errno.EADDRNOTAVAIL),
    ("join", "source blocked", errno.EINVAL),
]


@pytest.mark.parametrize(("action", "state", "code"), SOURCE_ERRNOS)
def test_source_errors_of_the_kernel(wire_link: Link, action: str, state: str, code: int) -> None:
    # Pinned (Linux 6.18), both families: the errno of each source operation in each state,
    # raised by the socket layer as a KernelError with a hint for that operation.
    group = aiomcast.Group(ASM[wire_link.family])
    source = OTHERS[wire_link.family][0]
    iface = aiomcast.resolve_interface(wire_link.interface, wire_link.fam)
    calls = {
        "join": _socket.join_source,
        "leave": _socket.leave_source,
        "block": _socket.block_source,
        "unblock": _socket.unblock_source,
    }
    with plain_socket(wire_link) as sock:
        if state == "source joined":
            _socket.join_source(sock, group, source, iface)
        elif state in ("group joined", "source blocked"):
            _socket.join(sock, group, iface)
            if state == "source blocked":
                _socket.block_source(sock, group, source, iface)
        with pytest.raises(aiomcast.KernelError) as info:
            calls[action](sock, group, source, iface)
    error = info.value
    assert error.errno == code
    assert error.operation == f"{action} source {source}"
    assert (error.group, error.interface) == (str(group), wire_link.interface)
    assert error.hint
    assert error.hint in str(error)
    assert error.hint != aiomcast.KernelError(code, operation="x").hint  # a source hint


def test_source_limit_names_the_sysctl(wire_link: Link) -> None:
    # Pinned (Linux 6.18): a socket may name net.ipv4.igmp_max_msf (10) sources per IPv4 group
    # and net.ipv6.mld_max_msf (64) per IPv6 group; one more is ENOBUFS.
    sysctl = "net.ipv4.igmp_max_msf" if wire_link.family == "ipv4" else "net.ipv6.mld_max_msf"
    default = 10 if wire_link.family == "ipv4" else 64
    try:
        with open(f"/proc/sys/{sysctl.replace('.', '/')}", encoding="ascii") as handle:
            limit = int(handle.read())
    except FileNotFoundError:  # mld_max_msf is shown in the initial namespace only
        limit = default
    assert limit == default
    group = aiomcast.Group(SSM[wire_link.family])
    iface = aiomcast.resolve_interface(wire_link.interface, wire_link.fam)
    fmt = "10.250.1.{}" if wire_link.family == "ipv4" else "fd00:fa::1:{:x}"
    with plain_socket(wire_link) as sock:
        for n in range(1, limit + 1):
            _socket.join_source(sock, group, fmt.format(n), iface)
        with pytest.raises(aiomcast.KernelError) as info:
            _socket.join_source(sock, group, fmt.format(limit + 1), iface)
    assert info.value.errno == errno.ENOBUFS
    assert sysctl in str(info.value)


# -- the public API on one host ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_memberships_are_kept_per_source(wire_link: Link) -> None:
    group = aiomcast.Group(SSM[wire_link.family])
    s1, s2 = OTHERS[wire_link.family]
    async with aiomcast.open_receiver(
        group, 0, interface=wire_link.interface, sources=[s1, s2, s1]
    ) as rx:
        iface = aiomcast.resolve_interface(wire_link.interface, wire_link.fam)
        assert rx.memberships == {
            aiomcast.Membership(group, iface, s1),
            aiomcast.Membership(group, iface, s2),
        }
        with pytest.raises(aiomcast.AlreadyJoinedError, match=s1):
            rx.join(group, source=s1)
        rx.leave(group, source=s1)
        with pytest.raises(aiomcast.NotJoinedError, match=s1):
            rx.leave(group, source=s1)
        with pytest.raises(aiomcast.NotJoinedError):
            rx.leave(group)  # no any-source membership
        assert member(wire_link.family, wire_link.interface, str(group))
        rx.leave(group, source=s2)
        assert not member(wire_link.family, wire_link.interface, str(group))
        # spellings of one address are one source
        spelled = "fd00:fa:0::1" if wire_link.family == "ipv6" else s1
        assert rx.join(group, source=spelled).source == s1


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("239.1.1.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("not-an-address", "not an IP address"),
        (42, "must be an IP address string"),
    ],
)
@pytest.mark.asyncio
async def test_sources_are_validated(source: object, words: str) -> None:
    family = "ipv6" if ":" in str(source) else "ipv4"
    if "::" in str(source) or "ff02" in str(source):
        family = "ipv6"
    async with aiomcast.open_receiver(None, 0, family=family, interface=None) as rx:
        other = "ipv4" if family == "ipv6" else "ipv6"
        for bad, expect in ((source, words), (OTHERS[other][0], f"not an {rx.family.label}")):
            with pytest.raises(aiomcast.InvalidSourceError, match=expect) as info:
                rx.join(SSM[family], source=bad)  # type: ignore[arg-type]
            assert info.value.value == bad
            with pytest.raises(aiomcast.InvalidSourceError):
                rx.block(ASM[family], bad)  # type: ignore[arg-type]
        assert not rx.memberships
    with pytest.raises(aiomcast.InvalidSourceError):
        aiomcast.open_receiver(SSM[family], 0, sources=[source])  # type: ignore[list-item]
    with pytest.raises(aiomcast.InvalidArgumentError, match="list of source"):
        aiomcast.open_endpoint(SSM[family], 0, sources=OTHERS[family][0])
    with pytest.raises(aiomcast.InvalidArgumentError, match="needs groups"):
        aiomcast.open_receiver(None, 0, family=family, sources=[OTHERS[family][0]])


@pytest.mark.asyncio
async def test_block_records_are_readable(wire_link: Link) -> None:
    group = aiomcast.Group(ASM[wire_link.family])
    s1, s2 = OTHERS[wire_link.family]
    async with aiomcast.open_receiver(group, 0, interface=wire_link.interface) as rx:
        (asm,) = rx.memberships
        assert rx.blocked == {}
        rx.block(group, s1)
        rx.block(group, s2)
        assert rx.blocked == {asm: frozenset({s1, s2})}
        with pytest.raises(aiomcast.SourceFilterError, match="already blocked"):
            rx.block(group, s1)
        rx.unblock(group, s1)
        assert rx.blocked == {asm: frozenset({s2})}
        with pytest.raises(aiomcast.SourceFilterError, match="not blocked"):
            rx.unblock(group, s1)
        with pytest.raises(aiomcast.NotJoinedError):
            rx.block(aiomcast.Group(SSM[wire_link.family]), s1)
        rx.leave(group)  # forgets the blocks
        assert rx.blocked == {}
        rx.join(group)
        rx.block(group, s2)  # the kernel forgot them too: no EADDRNOTAVAIL
        assert rx.blocked == {next(iter(rx.memberships)): frozenset({s2})}


# -- the lab: two senders, one receiver --------------------------------------------------------


@pytest.fixture
def three() -> Iterator[lab.Lab]:
    require_root("the source-specific lab")
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


# -- the command line --------------------------------------------------------------------------


def test_listen_refuses_bad_sources_and_ssm_without_source() -> None:
    port = str(free_port())
    lo = ("--interface", "lo")
    cases = [
        (["232.1.2.3", port, *lo], "232.1.2.3"),
        (["232.1.2.3", port, *lo, "--source", "239.1.1.1"], "'239.1.1.1' is a multicast"),
        (["232.1.2.3", port, *lo, "--source", "fd00::1"], "not an IPv4"),
        (["239.1.2.3", port, *lo, "--block", "0.0.0.0"], "unspecified"),
        (["239.1.2.3", port, *lo, "--source", "10.0.0.1", "--block", "10.0.0.2"], "not allowed"),
    ]
    for argv, words in cases:
        result = run([*AIOMCAST, "listen", *argv])
        assert result.returncode == 2, (argv, result)
        assert len(result.err_lines) == 1, result.stderr
        assert words in result.stderr, (argv, result.stderr)


def test_listen_source_over_loopback() -> None:
    # Without root: an SSM receiver on lo for source 127.0.0.1 gets the local sender.
    group, port = "232.255.7.1", str(free_port())
    argv = [*AIOMCAST, "listen", group, port, "--interface", "lo", "--source", "127.0.0.1"]
    with background([*argv, "--json", "--count", "1", "--duration", "5"], ready="joined") as rx:
        assert rx.ready_line == f"joined {group} on lo from 127.0.0.1\n"
        sent = run([*AIOMCAST, "send", group, port, "--interface", "lo", "--message", "ssm"])
        assert sent.returncode == 0, sent
        got = rx.finish()
    assert got.returncode == 0, got
    (line,) = got.out_lines
    datagram = json.loads(line)
    assert (datagram["source"], bytes.fromhex(datagram["payload"])) == (
        LOOPBACK_V4.address,
        b"ssm",
    )


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


# -- ssmping / ssmpingd (Debian ssmping) -------------------------------------------------------

#: The groups ssmpingd answers on (ssmping(1)).
SSMPING_GROUPS = {"ipv4": "232.43.211.234", "ipv6": "ff3e::4321:1234"}


@pytest.fixture
def pair() -> Iterator[lab.Lab]:
    require_root("the ssmping tests")
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
