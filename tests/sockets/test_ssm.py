"""Source-specific and source-filtered multicast (IGMPv3 / MLDv2) on one host.

What the Linux kernel does with the source options is pinned first (plain sockets and the
socket layer, on a veth pair in the private namespace), then the public API and the command
line on one host. tests/lab/test_ssm_lab.py takes them across hosts and routers,
tests/tools/test_ssmping.py against ssmping.
"""

from __future__ import annotations

import errno
import json
import socket

import pytest

import aiomcast
from aiomcast import _socket
from aiomcast._options import join_option, leave_option, source_option
from tests.conftest import LOOPBACK_V4
from tests.helpers import Link, member
from tests.processes import AIOMCAST, background, free_port, run

#: SSM groups (232.0.0.0/8, ff3x::/32) and any-source groups, per family.
SSM = {"ipv4": "232.7.7.7", "ipv6": "ff35::7:7:7"}
ASM = {"ipv4": "239.7.7.7", "ipv6": "ff15::7:7:7"}
#: Unicast sources that send nothing here (for kernel-state tests).
OTHERS = {"ipv4": ("10.250.0.1", "10.250.0.2"), "ipv6": ("fd00:fa::1", "fd00:fa::2")}


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
