"""The bytes of every multicast socket option (seed S4, S5), per platform, from tables.

The tables are the specification: each row writes the expected ``(level, name, value)`` out
literally. The option functions pack integers in the host's native byte order ("@i", "@I");
for a single int that is the same as "=" (native order, standard size), which the tables use.

The last part is the bridge from table to kernel: each Linux encoding is applied to a real
socket with setsockopt on the loopback interface and read back with getsockopt or
/proc/net/igmp(6).
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import struct
import sys
from collections.abc import Iterator

import pytest

import aiomcast
from aiomcast import Family, Group, InvalidArgumentError, InvalidSourceError, InvalidTTLError
from aiomcast._interfaces import kernel_memberships
from aiomcast._options import (
    PLATFORM,
    Platform,
    SocketOption,
    check_source,
    decode_int_option,
    ipv4_interface_option,
    ipv4_source_option,
    ipv6_interface_option,
    join_option,
    leave_option,
    loopback_option,
    multicast_all_option,
    option_numbers,
    pack_group_source_req,
    pack_ip_mreq,
    pack_ip_mreq_source,
    pack_ip_mreqn,
    pack_ipv6_mreq,
    pack_sockaddr,
    source_option,
    source_option_numbers,
    ttl_option,
)

IP = 0  # IPPROTO_IP on every platform
IPV6 = 41  # IPPROTO_IPV6 on every platform
ANY = bytes(4)  # INADDR_ANY

PLATFORMS: list[Platform] = ["linux", "darwin", "freebsd", "windows"]


def a4(text: str) -> bytes:
    """The 4 network-order bytes of an IPv4 address."""
    return ipaddress.IPv4Address(text).packed


def a6(text: str) -> bytes:
    """The 16 network-order bytes of an IPv6 address."""
    return ipaddress.IPv6Address(text).packed


def i32(value: int) -> bytes:
    """A native-order C int."""
    return struct.pack("=i", value)


def u16(value: int) -> bytes:
    """A native-order C unsigned short (sa_family_t on Linux and Windows)."""
    return struct.pack("=H", value)


def u32(value: int) -> bytes:
    """A native-order C unsigned int."""
    return struct.pack("=I", value)


# --------------------------------------------------------------------------------------------
# Option numbers (linux/in.h, linux/in6.h; netinet/in.h, netinet6/in6.h; ws2ipdef.h)

# platform -> (IP_MULTICAST_IF, _TTL, _LOOP, IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP,
#              IP_MULTICAST_ALL, IPV6_MULTICAST_IF, _HOPS, _LOOP, IPV6_JOIN_GROUP,
#              IPV6_LEAVE_GROUP, IPV6_MULTICAST_ALL, IPv4 TTL/LOOP take a u_char)
OPTION_NUMBERS: dict[
    Platform, tuple[int, int, int, int, int, int | None, int, int, int, int, int, int | None, bool]
] = {
    "linux": (32, 33, 34, 35, 36, 49, 17, 18, 19, 20, 21, 29, False),
    "darwin": (9, 10, 11, 12, 13, None, 9, 10, 11, 12, 13, None, True),
    "freebsd": (9, 10, 11, 12, 13, None, 9, 10, 11, 12, 13, None, True),
    "windows": (9, 10, 11, 12, 13, None, 9, 10, 11, 12, 13, None, False),
}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_option_numbers(platform: Platform) -> None:
    # seed S4 (IPv4 options), S5 (IPv6 options)
    assert tuple(option_numbers(platform)) == OPTION_NUMBERS[platform]


# Field of option_numbers() -> the socket module's name (seed S4, S5).
SOCKET_NAMES: list[tuple[str, str]] = [
    ("ip_multicast_if", "IP_MULTICAST_IF"),
    ("ip_multicast_ttl", "IP_MULTICAST_TTL"),
    ("ip_multicast_loop", "IP_MULTICAST_LOOP"),
    ("ip_add_membership", "IP_ADD_MEMBERSHIP"),
    ("ip_drop_membership", "IP_DROP_MEMBERSHIP"),
    ("ip_multicast_all", "IP_MULTICAST_ALL"),
    ("ipv6_multicast_if", "IPV6_MULTICAST_IF"),
    ("ipv6_multicast_hops", "IPV6_MULTICAST_HOPS"),
    ("ipv6_multicast_loop", "IPV6_MULTICAST_LOOP"),
    ("ipv6_join_group", "IPV6_JOIN_GROUP"),
    ("ipv6_leave_group", "IPV6_LEAVE_GROUP"),
    ("ipv6_multicast_all", "IPV6_MULTICAST_ALL"),
]
# The ten options of S4 and S5 are in every socket module; *_MULTICAST_ALL are not (3.11).
EXPORTED = [(field, name) for field, name in SOCKET_NAMES if hasattr(socket, name)]


def test_socket_module_exports_the_seed_options() -> None:
    # seed S4, S5: the five IPv4 and five IPv6 options exist on this host.
    names = {name for _field, name in EXPORTED}
    assert names >= {
        "IP_MULTICAST_IF",
        "IP_MULTICAST_TTL",
        "IP_MULTICAST_LOOP",
        "IP_ADD_MEMBERSHIP",
        "IP_DROP_MEMBERSHIP",
        "IPV6_MULTICAST_IF",
        "IPV6_MULTICAST_HOPS",
        "IPV6_MULTICAST_LOOP",
        "IPV6_JOIN_GROUP",
        "IPV6_LEAVE_GROUP",
    }
    assert socket.IPPROTO_IP == IP
    assert socket.IPPROTO_IPV6 == IPV6


@pytest.mark.parametrize(("field", "name"), EXPORTED)
def test_linux_numbers_match_the_socket_module(field: str, name: str) -> None:
    # The tables here are the running kernel's numbers (this host is Linux).
    assert PLATFORM == "linux"
    assert getattr(option_numbers("linux"), field) == getattr(socket, name)
    assert getattr(option_numbers(), field) == getattr(socket, name)


def test_platform_detection() -> None:
    expected = (
        "linux"
        if sys.platform.startswith("linux")
        else "darwin"
        if sys.platform == "darwin"
        else "windows"
        if sys.platform.startswith("win")
        else "freebsd"
    )
    assert expected == PLATFORM


# --------------------------------------------------------------------------------------------
# Structures


def test_struct_packers() -> None:
    g4, l4 = ipaddress.IPv4Address("239.1.2.3"), ipaddress.IPv4Address("10.0.0.1")
    # struct ip_mreq { in_addr imr_multiaddr; in_addr imr_interface; }
    assert pack_ip_mreq(g4, l4) == bytes([239, 1, 2, 3, 10, 0, 0, 1])
    # struct ip_mreqn { in_addr imr_multiaddr; in_addr imr_address; int imr_ifindex; }
    assert pack_ip_mreqn(g4, l4, 7) == bytes([239, 1, 2, 3, 10, 0, 0, 1]) + i32(7)
    # struct ipv6_mreq { in6_addr ipv6mr_multiaddr; unsigned ipv6mr_interface; }
    g6 = ipaddress.IPv6Address("ff02::1:2")
    assert pack_ipv6_mreq(g6, 7) == bytes.fromhex("ff020000000000000000000000010002") + u32(7)
    assert len(pack_ip_mreq(g4, l4)) == 8
    assert len(pack_ip_mreqn(g4, l4, 7)) == 12
    assert len(pack_ipv6_mreq(g6, 7)) == 20


# --------------------------------------------------------------------------------------------
# Memberships: IP_ADD_MEMBERSHIP / IP_DROP_MEMBERSHIP, IPV6_JOIN_GROUP / IPV6_LEAVE_GROUP

# (platform, group, ifindex, ifaddr, level, join name, leave name, value)
MEMBERSHIPS: list[tuple[Platform, str, int, str | None, int, int, int, bytes]] = [
    # Linux, IPv4: struct ip_mreqn (group, address, int index)
    ("linux", "239.1.2.3", 0, None, IP, 35, 36, a4("239.1.2.3") + ANY + i32(0)),
    ("linux", "239.1.2.3", 2, None, IP, 35, 36, a4("239.1.2.3") + ANY + i32(2)),
    ("linux", "239.1.2.3", 2, "10.0.0.1", IP, 35, 36, a4("239.1.2.3") + a4("10.0.0.1") + i32(2)),
    (
        "linux",
        "224.0.0.251",
        0,
        "192.168.1.5",
        IP,
        35,
        36,
        a4("224.0.0.251") + a4("192.168.1.5") + i32(0),
    ),
    ("linux", "232.1.1.1", 70000, None, IP, 35, 36, a4("232.1.1.1") + ANY + i32(70000)),
    # Linux, IPv6: struct ipv6_mreq (16 bytes, unsigned index); an IPv4 address is ignored
    ("linux", "ff02::1", 0, None, IPV6, 20, 21, a6("ff02::1") + u32(0)),
    ("linux", "ff12::1:2:3", 3, None, IPV6, 20, 21, a6("ff12::1:2:3") + u32(3)),
    ("linux", "ff02::1", 3, "10.0.0.1", IPV6, 20, 21, a6("ff02::1") + u32(3)),
    ("linux", "ff02::1%lo", 1, None, IPV6, 20, 21, a6("ff02::1") + u32(1)),  # no zone in bytes
    # macOS and FreeBSD, IPv4: struct ip_mreq (group, interface address)
    ("darwin", "239.1.2.3", 0, None, IP, 12, 13, a4("239.1.2.3") + ANY),
    ("darwin", "239.1.2.3", 2, "10.0.0.1", IP, 12, 13, a4("239.1.2.3") + a4("10.0.0.1")),
    ("freebsd", "239.1.2.3", 0, None, IP, 12, 13, a4("239.1.2.3") + ANY),
    ("freebsd", "224.0.0.251", 5, "192.168.1.5", IP, 12, 13, a4("224.0.0.251") + a4("192.168.1.5")),
    # macOS and FreeBSD, IPv6
    ("darwin", "ff02::1", 4, None, IPV6, 12, 13, a6("ff02::1") + u32(4)),
    ("freebsd", "ff05::1:3", 0, None, IPV6, 12, 13, a6("ff05::1:3") + u32(0)),
    # Windows, IPv4: ip_mreq, with an index sent as imr_interface 0.0.0.N (network order)
    ("windows", "239.1.2.3", 0, None, IP, 12, 13, a4("239.1.2.3") + ANY),
    ("windows", "239.1.2.3", 5, None, IP, 12, 13, a4("239.1.2.3") + a4("0.0.0.5")),
    ("windows", "239.1.2.3", 258, None, IP, 12, 13, a4("239.1.2.3") + a4("0.0.1.2")),
    ("windows", "239.1.2.3", 5, "10.0.0.1", IP, 12, 13, a4("239.1.2.3") + a4("10.0.0.1")),
    # Windows, IPv6
    ("windows", "ff02::1", 5, None, IPV6, 12, 13, a6("ff02::1") + u32(5)),
]


@pytest.mark.parametrize(
    ("platform", "group", "ifindex", "ifaddr", "level", "join", "leave", "value"), MEMBERSHIPS
)
def test_membership_options(
    platform: Platform,
    group: str,
    ifindex: int,
    ifaddr: str | None,
    level: int,
    join: int,
    leave: int,
    value: bytes,
) -> None:
    # seed S4: IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP; seed S5: IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP.
    address = ipaddress.IPv4Address(ifaddr) if ifaddr is not None else None
    joined = join_option(Group(group), ifindex, address, platform)
    left = leave_option(Group(group), ifindex, address, platform)
    assert joined == SocketOption(level, join, value)
    assert left == SocketOption(level, leave, value)
    assert isinstance(joined, SocketOption)
    assert type(joined.value) is bytes


def test_membership_defaults_to_this_platform_and_any_interface() -> None:
    group = Group("239.1.2.3")
    assert join_option(group) == join_option(group, 0, None, PLATFORM)
    assert leave_option(group) == leave_option(group, 0, None, PLATFORM)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("group", ["239.1.2.3", "ff02::1"])
def test_membership_refuses_negative_index(platform: Platform, group: str) -> None:
    for make in (join_option, leave_option):
        with pytest.raises(InvalidArgumentError) as info:
            make(Group(group), -1, None, platform)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, aiomcast.AiomcastError)
        assert "-1" in str(info.value)


# --------------------------------------------------------------------------------------------
# IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS (seed S7)

# (platform, family, ttl given, level, name, value)
TTLS: list[tuple[Platform, Family, object, int, int, bytes]] = [
    ("linux", Family.IPV4, 0, IP, 33, i32(0)),
    ("linux", Family.IPV4, 1, IP, 33, i32(1)),
    ("linux", Family.IPV4, 32, IP, 33, i32(32)),
    ("linux", Family.IPV4, 255, IP, 33, i32(255)),
    ("linux", Family.IPV4, "site", IP, 33, i32(32)),
    ("linux", Family.IPV6, 0, IPV6, 18, i32(0)),
    ("linux", Family.IPV6, 64, IPV6, 18, i32(64)),
    ("linux", Family.IPV6, 255, IPV6, 18, i32(255)),
    # the BSDs take a u_char for IPv4, an int for IPv6 hops
    ("darwin", Family.IPV4, 0, IP, 10, b"\x00"),
    ("darwin", Family.IPV4, 128, IP, 10, b"\x80"),
    ("darwin", Family.IPV4, 255, IP, 10, b"\xff"),
    ("darwin", Family.IPV6, 255, IPV6, 10, i32(255)),
    ("freebsd", Family.IPV4, 1, IP, 10, b"\x01"),
    ("freebsd", Family.IPV4, aiomcast.TTLScope.REGION, IP, 10, b"\x40"),
    ("freebsd", Family.IPV6, 1, IPV6, 10, i32(1)),
    # Windows: DWORDs
    ("windows", Family.IPV4, 1, IP, 10, i32(1)),
    ("windows", Family.IPV4, 255, IP, 10, i32(255)),
    ("windows", Family.IPV6, 32, IPV6, 10, i32(32)),
]


@pytest.mark.parametrize(("platform", "family", "ttl", "level", "name", "value"), TTLS)
def test_ttl_option(
    platform: Platform, family: Family, ttl: object, level: int, name: int, value: bytes
) -> None:
    # seed S7: IP_MULTICAST_TTL sets any TTL 0-255.
    assert ttl_option(family, ttl, platform) == SocketOption(level, name, value)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("ttl", [-1, 256, "x", True, 1.5])
def test_ttl_option_refuses(platform: Platform, ttl: object) -> None:
    for family in Family:
        with pytest.raises(InvalidTTLError) as info:
            ttl_option(family, ttl, platform)
        assert str(ttl) in str(info.value)


# --------------------------------------------------------------------------------------------
# IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP (seed S14)

# (platform, family, on, level, name, value)
LOOPBACKS: list[tuple[Platform, Family, bool, int, int, bytes]] = [
    ("linux", Family.IPV4, True, IP, 34, i32(1)),
    ("linux", Family.IPV4, False, IP, 34, i32(0)),
    ("linux", Family.IPV6, True, IPV6, 19, u32(1)),
    ("linux", Family.IPV6, False, IPV6, 19, u32(0)),
    ("darwin", Family.IPV4, True, IP, 11, b"\x01"),
    ("darwin", Family.IPV4, False, IP, 11, b"\x00"),
    ("darwin", Family.IPV6, True, IPV6, 11, u32(1)),
    ("freebsd", Family.IPV4, True, IP, 11, b"\x01"),
    ("freebsd", Family.IPV6, False, IPV6, 11, u32(0)),
    ("windows", Family.IPV4, True, IP, 11, i32(1)),
    ("windows", Family.IPV4, False, IP, 11, i32(0)),
    ("windows", Family.IPV6, True, IPV6, 11, u32(1)),
]


@pytest.mark.parametrize(("platform", "family", "on", "level", "name", "value"), LOOPBACKS)
def test_loopback_option(
    platform: Platform, family: Family, on: bool, level: int, name: int, value: bytes
) -> None:
    # seed S14: IP_MULTICAST_LOOP 0 off, 1 on.
    assert loopback_option(family, on, platform) == SocketOption(level, name, value)


@pytest.mark.parametrize("on", [1, 0, "yes", None])
def test_loopback_option_refuses_non_bool(on: object) -> None:
    for family in Family:
        with pytest.raises(InvalidArgumentError) as info:
            loopback_option(family, on)
        assert isinstance(info.value, aiomcast.AiomcastError)
        assert str(on) in str(info.value)


# --------------------------------------------------------------------------------------------
# IP_MULTICAST_IF (seed S13) and IPV6_MULTICAST_IF

# (platform, interface address, ifindex, level, name, value)
IPV4_INTERFACES: list[tuple[Platform, str | None, int, int, int, bytes]] = [
    # INADDR_ANY restores the default interface (seed S13)
    ("linux", None, 0, IP, 32, ANY),
    ("linux", "10.0.0.1", 0, IP, 32, a4("10.0.0.1")),
    ("linux", "127.0.0.1", 0, IP, 32, a4("127.0.0.1")),
    # with an index, struct ip_mreqn (multiaddr unused)
    ("linux", None, 2, IP, 32, ANY + ANY + i32(2)),
    ("linux", "10.0.0.1", 2, IP, 32, ANY + a4("10.0.0.1") + i32(2)),
    ("darwin", None, 0, IP, 9, ANY),
    ("darwin", "10.0.0.1", 0, IP, 9, a4("10.0.0.1")),
    ("darwin", "10.0.0.1", 2, IP, 9, a4("10.0.0.1")),
    ("freebsd", None, 0, IP, 9, ANY),
    ("freebsd", "192.168.1.5", 3, IP, 9, a4("192.168.1.5")),
    ("windows", None, 0, IP, 9, ANY),
    ("windows", "10.0.0.1", 0, IP, 9, a4("10.0.0.1")),
    ("windows", None, 7, IP, 9, a4("0.0.0.7")),  # index N as 0.0.0.N, network order
    ("windows", None, 258, IP, 9, a4("0.0.1.2")),
    ("windows", "10.0.0.1", 7, IP, 9, a4("10.0.0.1")),
]


@pytest.mark.parametrize(
    ("platform", "address", "ifindex", "level", "name", "value"), IPV4_INTERFACES
)
def test_ipv4_interface_option(
    platform: Platform, address: str | None, ifindex: int, level: int, name: int, value: bytes
) -> None:
    # seed S13: IP_MULTICAST_IF with the local address of an interface; INADDR_ANY resets.
    local = ipaddress.IPv4Address(address) if address is not None else None
    assert ipv4_interface_option(local, ifindex, platform) == SocketOption(level, name, value)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_ipv4_interface_option_refuses_negative_index(platform: Platform) -> None:
    # Like join_option, leave_option and ipv6_interface_option, a negative index is bad input
    # refused at the boundary, not packed (linux), dropped (BSD) or left to ipaddress (windows).
    with pytest.raises(InvalidArgumentError) as info:
        ipv4_interface_option(None, -1, platform)
    assert "-1" in str(info.value)


# (platform, ifindex, level, name, value)
IPV6_INTERFACES: list[tuple[Platform, int, int, int, bytes]] = [
    ("linux", 0, IPV6, 17, u32(0)),  # 0 restores the default
    ("linux", 1, IPV6, 17, u32(1)),
    ("linux", 300, IPV6, 17, u32(300)),
    ("darwin", 0, IPV6, 9, u32(0)),
    ("darwin", 4, IPV6, 9, u32(4)),
    ("freebsd", 2, IPV6, 9, u32(2)),
    ("windows", 0, IPV6, 9, u32(0)),
    ("windows", 12, IPV6, 9, u32(12)),
]


@pytest.mark.parametrize(("platform", "ifindex", "level", "name", "value"), IPV6_INTERFACES)
def test_ipv6_interface_option(
    platform: Platform, ifindex: int, level: int, name: int, value: bytes
) -> None:
    assert ipv6_interface_option(ifindex, platform) == SocketOption(level, name, value)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_ipv6_interface_option_refuses_negative_index(platform: Platform) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        ipv6_interface_option(-1, platform)
    assert "-1" in str(info.value)


# --------------------------------------------------------------------------------------------
# IP_MULTICAST_ALL / IPV6_MULTICAST_ALL (Linux only)

# (platform, family, option or None)
MULTICAST_ALL: list[tuple[Platform, Family, SocketOption | None]] = [
    ("linux", Family.IPV4, SocketOption(IP, 49, i32(0))),
    ("linux", Family.IPV6, SocketOption(IPV6, 29, i32(0))),
    ("darwin", Family.IPV4, None),
    ("darwin", Family.IPV6, None),
    ("freebsd", Family.IPV4, None),
    ("freebsd", Family.IPV6, None),
    ("windows", Family.IPV4, None),
    ("windows", Family.IPV6, None),
]


@pytest.mark.parametrize(("platform", "family", "option"), MULTICAST_ALL)
def test_multicast_all_option(
    platform: Platform, family: Family, option: SocketOption | None
) -> None:
    assert multicast_all_option(family, platform) == option


# --------------------------------------------------------------------------------------------
# Reading options back

# (bytes from getsockopt, value)
DECODE: list[tuple[bytes, int]] = [
    (b"\x00", 0),
    (b"\x01", 1),
    (b"\xff", 255),  # a u_char is unsigned
    (i32(0), 0),
    (i32(1), 1),
    (i32(255), 255),
    (i32(-1), -1),  # an int is signed
    (i32(7) + i32(9), 7),  # longer buffers: the first int
]


@pytest.mark.parametrize(("raw", "value"), DECODE)
def test_decode_int_option(raw: bytes, value: int) -> None:
    assert decode_int_option(raw) == value


@pytest.mark.parametrize("raw", [b"", b"\x01\x00", b"\x01\x00\x00"])
def test_decode_int_option_refuses(raw: bytes) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        decode_int_option(raw)
    assert f"{len(raw)}-byte" in str(info.value)


# --------------------------------------------------------------------------------------------
# From table to kernel: the Linux encodings on a real socket, loopback interface

LO = "lo"


@pytest.fixture
def lo_index() -> int:
    return socket.if_nametoindex(LO)


@pytest.fixture
def udp4() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        yield sock


@pytest.fixture
def udp6() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        yield sock


def apply(sock: socket.socket, option: SocketOption) -> None:
    sock.setsockopt(option.level, option.name, option.value)


def refusal(sock: socket.socket, option: SocketOption) -> int:
    """Apply ``option``, which the kernel must refuse; return the errno."""
    try:
        apply(sock, option)
    except OSError as exc:
        return exc.errno or 0
    raise AssertionError(f"the kernel accepted {option}")


def read_int(sock: socket.socket, level: int, name: int) -> int:
    return decode_int_option(sock.getsockopt(level, name, 4))


def memberships(family: Family) -> set[tuple[str, str]]:
    found = kernel_memberships(family)
    assert found is not None
    return found


@pytest.mark.parametrize(("ifindex", "ifaddr"), [(1, None), (0, "127.0.0.1"), (1, "127.0.0.1")])
def test_kernel_ipv4_join_and_leave(
    udp4: socket.socket, lo_index: int, ifindex: int, ifaddr: str | None
) -> None:
    # seed S4: IP_ADD_MEMBERSHIP / IP_DROP_MEMBERSHIP with ip_mreqn, by index or by address.
    group = Group("239.77.1.1")
    index = lo_index if ifindex else 0
    local = ipaddress.IPv4Address(ifaddr) if ifaddr else None
    assert (LO, "239.77.1.1") not in memberships(Family.IPV4)
    apply(udp4, join_option(group, index, local, "linux"))
    assert (LO, "239.77.1.1") in memberships(Family.IPV4)
    # the kernel holds exactly this membership
    assert refusal(udp4, join_option(group, index, local, "linux")) == errno.EADDRINUSE
    apply(udp4, leave_option(group, index, local, "linux"))
    assert (LO, "239.77.1.1") not in memberships(Family.IPV4)
    assert refusal(udp4, leave_option(group, index, local, "linux")) == errno.EADDRNOTAVAIL


def test_kernel_reads_the_index_field_of_ip_mreqn(udp4: socket.socket) -> None:
    # The int at offset 8 is the interface index: an index that does not exist is refused.
    assert refusal(udp4, join_option(Group("239.77.1.2"), 99999, None, "linux")) == errno.ENODEV


def test_kernel_accepts_the_bsd_ip_mreq_layout(udp4: socket.socket) -> None:
    # struct ip_mreq (the darwin/freebsd/windows value) is the prefix of ip_mreqn; Linux reads
    # both, which checks the group and interface address bytes of the BSD rows on this kernel.
    group = Group("239.77.1.3")
    numbers = option_numbers("linux")
    bsd = join_option(group, 0, ipaddress.IPv4Address("127.0.0.1"), "freebsd")
    assert len(bsd.value) == 8
    udp4.setsockopt(IP, numbers.ip_add_membership, bsd.value)
    assert (LO, "239.77.1.3") in memberships(Family.IPV4)
    udp4.setsockopt(IP, numbers.ip_drop_membership, bsd.value)
    assert (LO, "239.77.1.3") not in memberships(Family.IPV4)


def test_kernel_ipv6_join_and_leave(udp6: socket.socket, lo_index: int) -> None:
    # seed S5: IPV6_JOIN_GROUP / IPV6_LEAVE_GROUP with ipv6_mreq.
    group = Group("ff02::77:1")
    assert (LO, "ff02::77:1") not in memberships(Family.IPV6)
    apply(udp6, join_option(group, lo_index, None, "linux"))
    assert (LO, "ff02::77:1") in memberships(Family.IPV6)
    apply(udp6, leave_option(group, lo_index, None, "linux"))
    assert (LO, "ff02::77:1") not in memberships(Family.IPV6)


@pytest.mark.parametrize("ttl", [0, 1, 2, 32, 64, 128, 255])
def test_kernel_ttl_and_hops(udp4: socket.socket, udp6: socket.socket, ttl: int) -> None:
    # seed S7: the kernel default is 1; IP_MULTICAST_TTL takes any TTL 0-255.
    numbers = option_numbers("linux")
    assert read_int(udp4, IP, numbers.ip_multicast_ttl) == 1
    assert read_int(udp6, IPV6, numbers.ipv6_multicast_hops) == 1
    apply(udp4, ttl_option(Family.IPV4, ttl, "linux"))
    apply(udp6, ttl_option(Family.IPV6, ttl, "linux"))
    assert read_int(udp4, IP, numbers.ip_multicast_ttl) == ttl
    assert read_int(udp6, IPV6, numbers.ipv6_multicast_hops) == ttl
    # The one-byte (BSD) value is read the same by Linux, and reads back as one byte.
    apply(udp4, ttl_option(Family.IPV4, 255 - ttl, "linux"))
    udp4.setsockopt(IP, numbers.ip_multicast_ttl, ttl_option(Family.IPV4, ttl, "darwin").value)
    assert decode_int_option(udp4.getsockopt(IP, numbers.ip_multicast_ttl, 1)) == ttl


def test_kernel_loopback(udp4: socket.socket, udp6: socket.socket) -> None:
    # seed S14: looped back by default; IP_MULTICAST_LOOP 0 off, 1 on.
    numbers = option_numbers("linux")
    assert read_int(udp4, IP, numbers.ip_multicast_loop) == 1
    assert read_int(udp6, IPV6, numbers.ipv6_multicast_loop) == 1
    for on in (False, True, False):
        apply(udp4, loopback_option(Family.IPV4, on, "linux"))
        apply(udp6, loopback_option(Family.IPV6, on, "linux"))
        assert read_int(udp4, IP, numbers.ip_multicast_loop) == int(on)
        assert read_int(udp6, IPV6, numbers.ipv6_multicast_loop) == int(on)


def test_kernel_ipv4_interface(udp4: socket.socket, lo_index: int) -> None:
    # seed S13: IP_MULTICAST_IF with an interface's local address chooses it; INADDR_ANY
    # restores the default.
    name = option_numbers("linux").ip_multicast_if
    loopback = ipaddress.IPv4Address("127.0.0.1")
    assert udp4.getsockopt(IP, name, 4) == ANY
    apply(udp4, ipv4_interface_option(loopback, 0, "linux"))
    assert udp4.getsockopt(IP, name, 4) == a4("127.0.0.1")
    apply(udp4, ipv4_interface_option(None, 0, "linux"))
    assert udp4.getsockopt(IP, name, 4) == ANY
    apply(udp4, ipv4_interface_option(loopback, lo_index, "linux"))
    assert udp4.getsockopt(IP, name, 4) == a4("127.0.0.1")
    apply(udp4, ipv4_interface_option(None, lo_index, "linux"))  # by index alone
    assert udp4.getsockopt(IP, name, 4) == ANY
    # the kernel reads the index field: an index of no interface is refused
    assert refusal(udp4, ipv4_interface_option(None, 99999, "linux")) == errno.EADDRNOTAVAIL
    assert udp4.getsockopt(IP, name, 4) == ANY
    # and so is an address of no interface
    nowhere = ipaddress.IPv4Address("192.0.2.77")
    assert refusal(udp4, ipv4_interface_option(nowhere, 0, "linux")) == errno.EADDRNOTAVAIL


def test_kernel_ipv6_interface(udp6: socket.socket, lo_index: int) -> None:
    name = option_numbers("linux").ipv6_multicast_if
    assert read_int(udp6, IPV6, name) == 0
    apply(udp6, ipv6_interface_option(lo_index, "linux"))
    assert read_int(udp6, IPV6, name) == lo_index
    apply(udp6, ipv6_interface_option(0, "linux"))
    assert read_int(udp6, IPV6, name) == 0
    assert refusal(udp6, ipv6_interface_option(99999, "linux")) in (errno.ENODEV, errno.EINVAL)


def test_kernel_multicast_all(udp4: socket.socket, udp6: socket.socket) -> None:
    # Linux default 1: a wildcard-bound socket gets every group any socket joined; 0 limits it.
    numbers = option_numbers("linux")
    assert numbers.ip_multicast_all is not None
    assert numbers.ipv6_multicast_all is not None
    assert read_int(udp4, IP, numbers.ip_multicast_all) == 1
    assert read_int(udp6, IPV6, numbers.ipv6_multicast_all) == 1
    for sock, family in ((udp4, Family.IPV4), (udp6, Family.IPV6)):
        option = multicast_all_option(family, "linux")
        assert option is not None
        apply(sock, option)
        assert read_int(sock, option.level, option.name) == 0


# -- the host-scope guard (seed S8) -----------------------------------------------------------

HOST_SCOPE_FILTER_CASES = [
    # family, loopback index, TTL byte offset in the network header
    (Family.IPV4, 1, 8),
    (Family.IPV6, 1, 7),
    (Family.IPV4, 7, 8),
]


@pytest.mark.parametrize(("family", "lo", "ttl_offset"), HOST_SCOPE_FILTER_CASES)
def test_host_scope_filter_program(family: Family, lo: int, ttl_offset: int) -> None:
    from aiomcast._options import host_scope_filter

    program = host_scope_filter(family, lo)
    assert len(program) == 8 * 8
    insns = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    assert insns == [
        (0x30, 0, 0, (-0x100000 + ttl_offset) & 0xFFFFFFFF),  # A = TTL / hop limit
        (0x15, 0, 4, 0),  # TTL 0? else accept
        (0x20, 0, 0, (-0x1000 + 4) & 0xFFFFFFFF),  # A = pkt_type
        (0x15, 2, 0, 5),  # PACKET_LOOPBACK: accept
        (0x20, 0, 0, (-0x1000 + 8) & 0xFFFFFFFF),  # A = ifindex
        (0x15, 0, 1, lo),  # arrived on lo: accept
        (0x06, 0, 0, 0x40000),  # accept
        (0x06, 0, 0, 0),  # refuse
    ]


# -- source-specific and source-filtered membership (RFC 3678; IGMPv3 / MLDv2) ---------------

# platform -> (IP_ADD_SOURCE_MEMBERSHIP, IP_DROP_SOURCE_MEMBERSHIP, IP_BLOCK_SOURCE,
#              IP_UNBLOCK_SOURCE, MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP,
#              MCAST_BLOCK_SOURCE, MCAST_UNBLOCK_SOURCE)
SOURCE_NUMBERS: dict[Platform, tuple[int, ...]] = {
    "linux": (39, 40, 38, 37, 46, 47, 43, 44),  # linux/in.h
    "darwin": (70, 71, 72, 73, 82, 83, 84, 85),  # netinet/in.h
    "freebsd": (70, 71, 72, 73, 82, 83, 84, 85),  # netinet/in.h
    "windows": (15, 16, 17, 18, 45, 46, 43, 44),  # ws2ipdef.h
}
SOURCE_NAMES = [
    "IP_ADD_SOURCE_MEMBERSHIP",
    "IP_DROP_SOURCE_MEMBERSHIP",
    "IP_BLOCK_SOURCE",
    "IP_UNBLOCK_SOURCE",
    "MCAST_JOIN_SOURCE_GROUP",
    "MCAST_LEAVE_SOURCE_GROUP",
    "MCAST_BLOCK_SOURCE",
    "MCAST_UNBLOCK_SOURCE",
]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_source_option_numbers(platform: Platform) -> None:
    assert tuple(source_option_numbers(platform)) == SOURCE_NUMBERS[platform]


def _header_numbers() -> dict[str, int]:
    """The source option numbers this host's headers (or socket module) define."""
    found = {name: getattr(socket, name) for name in SOURCE_NAMES if hasattr(socket, name)}
    for header in ("/usr/include/linux/in.h", "/usr/include/x86_64-linux-gnu/bits/in.h"):
        try:
            with open(header, encoding="ascii", errors="replace") as handle:
                text = handle.read()
        except OSError:
            continue
        for name in SOURCE_NAMES:
            match = re.search(rf"#\s*define\s+{name}\s+(\d+)", text)
            if match:
                found.setdefault(name, int(match.group(1)))
    return found


def test_linux_source_numbers_match_the_host() -> None:
    # Python 3.11's socket module lacks these names (3.12 adds the IP_* ones); the kernel
    # headers have them when linux-libc-dev is installed.
    found = _header_numbers()
    if not found:
        pytest.skip("neither the socket module nor /usr/include defines the source options")
    table = dict(zip(SOURCE_NAMES, SOURCE_NUMBERS["linux"], strict=True))
    assert {name: table[name] for name in found} == found


def test_ip_mreq_source_field_order() -> None:
    g, s, i = (ipaddress.IPv4Address(a) for a in ("232.1.2.3", "10.0.0.9", "10.0.0.1"))
    # Linux: multiaddr, interface, sourceaddr
    assert pack_ip_mreq_source(g, s, i, "linux") == a4("232.1.2.3") + a4("10.0.0.1") + a4(
        "10.0.0.9"
    )
    # BSDs, macOS, Windows: multiaddr, sourceaddr, interface
    for platform in ("darwin", "freebsd", "windows"):
        assert pack_ip_mreq_source(g, s, i, platform) == a4("232.1.2.3") + a4("10.0.0.9") + a4(
            "10.0.0.1"
        )


# (platform, address, expected sockaddr bytes)
SOCKADDRS: list[tuple[Platform, str, bytes]] = [
    ("linux", "10.0.0.9", u16(2) + bytes(2) + a4("10.0.0.9") + bytes(8)),
    ("windows", "10.0.0.9", u16(2) + bytes(2) + a4("10.0.0.9") + bytes(8)),
    ("darwin", "10.0.0.9", bytes([16, 2]) + bytes(2) + a4("10.0.0.9") + bytes(8)),
    ("freebsd", "10.0.0.9", bytes([16, 2]) + bytes(2) + a4("10.0.0.9") + bytes(8)),
    ("linux", "fd00::9", u16(10) + bytes(6) + a6("fd00::9") + bytes(4)),
    ("windows", "fd00::9", u16(23) + bytes(6) + a6("fd00::9") + bytes(4)),
    ("darwin", "fd00::9", bytes([28, 30]) + bytes(6) + a6("fd00::9") + bytes(4)),
    ("freebsd", "fd00::9", bytes([28, 28]) + bytes(6) + a6("fd00::9") + bytes(4)),
]


@pytest.mark.parametrize(("platform", "address", "value"), SOCKADDRS)
def test_sockaddr(platform: Platform, address: str, value: bytes) -> None:
    assert pack_sockaddr(ipaddress.ip_address(address), platform) == value


def storage(platform: Platform, address: str) -> bytes:
    raw = {(p, a): v for p, a, v in SOCKADDRS}[(platform, address)]
    return raw + bytes(128 - len(raw))


# (platform, pointer size, group, source, ifindex, expected group_source_req)
GROUP_SOURCE_REQS: list[tuple[Platform, int, str, str, int, bytes]] = [
    # 64-bit Linux, FreeBSD, Windows: the index is padded to 8 (aligned sockaddr_storage)
    ("linux", 8, "232.1.2.3", "10.0.0.9", 3, u32(3) + bytes(4)),
    ("freebsd", 8, "232.1.2.3", "10.0.0.9", 3, u32(3) + bytes(4)),
    ("windows", 8, "232.1.2.3", "10.0.0.9", 3, u32(3) + bytes(4)),
    ("windows", 4, "232.1.2.3", "10.0.0.9", 3, u32(3) + bytes(4)),  # int64 member on 32-bit too
    # macOS packs group_source_req to 4 bytes; 32-bit Linux aligns sockaddr_storage to 4
    ("darwin", 8, "232.1.2.3", "10.0.0.9", 3, u32(3)),
    ("linux", 4, "232.1.2.3", "10.0.0.9", 3, u32(3)),
    ("linux", 8, "ff3e::1234", "fd00::9", 7, u32(7) + bytes(4)),
    ("darwin", 8, "ff3e::1234", "fd00::9", 0, u32(0)),
]


@pytest.mark.parametrize(
    ("platform", "pointer", "group", "source", "ifindex", "head"), GROUP_SOURCE_REQS
)
def test_group_source_req(
    platform: Platform, pointer: int, group: str, source: str, ifindex: int, head: bytes
) -> None:
    value = pack_group_source_req(
        ifindex,
        ipaddress.ip_address(group),
        ipaddress.ip_address(source),
        platform,
        pointer_size=pointer,
    )
    group_key = "10.0.0.9" if "." in group else "fd00::9"
    g = pack_sockaddr(ipaddress.ip_address(group), platform)
    assert value == head + g + bytes(128 - len(g)) + storage(platform, group_key)
    assert len(value) == len(head) + 256


# (platform, action, group, ifindex, level, name)
SOURCE_OPTIONS: list[tuple[Platform, str, str, int, int, int]] = [
    ("linux", "join", "232.1.2.3", 2, IP, 46),
    ("linux", "leave", "232.1.2.3", 2, IP, 47),
    ("linux", "block", "239.1.2.3", 0, IP, 43),
    ("linux", "unblock", "239.1.2.3", 0, IP, 44),
    ("linux", "join", "ff3e::1234", 2, IPV6, 46),
    ("linux", "block", "ff15::1", 2, IPV6, 43),
    ("darwin", "join", "232.1.2.3", 2, IP, 82),
    ("freebsd", "unblock", "ff15::1", 2, IPV6, 85),
    ("windows", "leave", "232.1.2.3", 2, IP, 46),
    ("windows", "block", "ff15::1", 2, IPV6, 43),
]


@pytest.mark.parametrize(
    ("platform", "action", "group", "ifindex", "level", "name"), SOURCE_OPTIONS
)
def test_source_option(
    platform: Platform, action: str, group: str, ifindex: int, level: int, name: int
) -> None:
    source = "10.0.0.9" if "." in group else "fd00::9"
    option = source_option(action, Group(group), source, ifindex, platform)  # type: ignore[arg-type]
    expected = pack_group_source_req(
        ifindex, Group(group).address, ipaddress.ip_address(source), platform
    )
    assert option == SocketOption(level, name, expected)


# (platform, action, ifaddr, ifindex, name, value)
IPV4_SOURCE_OPTIONS: list[tuple[Platform, str, str | None, int, int, bytes]] = [
    ("linux", "join", "10.0.0.1", 0, 39, a4("232.1.2.3") + a4("10.0.0.1") + a4("10.0.0.9")),
    ("linux", "leave", None, 0, 40, a4("232.1.2.3") + ANY + a4("10.0.0.9")),
    ("linux", "block", "10.0.0.1", 0, 38, a4("232.1.2.3") + a4("10.0.0.1") + a4("10.0.0.9")),
    ("linux", "unblock", None, 0, 37, a4("232.1.2.3") + ANY + a4("10.0.0.9")),
    ("darwin", "join", "10.0.0.1", 0, 70, a4("232.1.2.3") + a4("10.0.0.9") + a4("10.0.0.1")),
    ("freebsd", "block", None, 0, 72, a4("232.1.2.3") + a4("10.0.0.9") + ANY),
    ("windows", "join", None, 5, 15, a4("232.1.2.3") + a4("10.0.0.9") + a4("0.0.0.5")),
    ("windows", "unblock", "10.0.0.1", 5, 18, a4("232.1.2.3") + a4("10.0.0.9") + a4("10.0.0.1")),
]


@pytest.mark.parametrize(
    ("platform", "action", "ifaddr", "ifindex", "name", "value"), IPV4_SOURCE_OPTIONS
)
def test_ipv4_source_option(
    platform: Platform, action: str, ifaddr: str | None, ifindex: int, name: int, value: bytes
) -> None:
    address = ipaddress.IPv4Address(ifaddr) if ifaddr else None
    option = ipv4_source_option(
        action,  # type: ignore[arg-type]
        Group("232.1.2.3"),
        "10.0.0.9",
        address,
        ifindex,
        platform,
    )
    assert option == SocketOption(IP, name, value)


@pytest.mark.parametrize(
    ("source", "family", "words"),
    [
        ("239.1.1.1", Family.IPV4, "multicast"),
        ("0.0.0.0", Family.IPV4, "unspecified"),
        ("ff02::1", Family.IPV6, "multicast"),
        ("::", Family.IPV6, "unspecified"),
        ("fd00::1", Family.IPV4, "not an IPv4"),
        ("10.0.0.1", Family.IPV6, "not an IPv6"),
        ("host.example", Family.IPV4, "not an IP address"),
        (b"10.0.0.1", Family.IPV4, "must be an IP address string"),
        (None, Family.IPV6, "must be an IP address string"),
    ],
)
def test_sources_are_checked(source: object, family: Family, words: str) -> None:
    with pytest.raises(InvalidSourceError) as info:
        check_source(source, family)
    assert isinstance(info.value, InvalidArgumentError)
    assert words in str(info.value)
    assert repr(source) in str(info.value)
    group = Group("232.1.2.3" if family is Family.IPV4 else "ff3e::1")
    with pytest.raises(InvalidSourceError):
        source_option("join", group, source)


def test_ip_mreq_source_refuses_ipv6_groups() -> None:
    with pytest.raises(aiomcast.InvalidGroupError, match="ff3e::1"):
        ipv4_source_option("join", Group("ff3e::1"), "fd00::1")


# -- from table to kernel: the Linux source encodings on real sockets ------------------------


def test_kernel_accepts_ip_mreq_source(udp4: socket.socket) -> None:
    # IP_ADD_SOURCE_MEMBERSHIP with Linux's field order joins (S, G) on lo; the BSD order
    # (source and interface swapped) would name source 127.0.0.1 on interface 10.0.0.9 and is
    # refused (no such interface).
    group = Group("232.77.1.1")
    apply(udp4, ipv4_source_option("join", group, "10.0.0.9", ipaddress.IPv4Address("127.0.0.1")))
    assert (LO, "232.77.1.1") in memberships(Family.IPV4)
    bsd = ipv4_source_option(
        "join", group, "10.0.0.8", ipaddress.IPv4Address("127.0.0.1"), 0, "freebsd"
    )
    assert refusal(udp4, SocketOption(IP, 39, bsd.value)) == errno.ENODEV
    apply(udp4, ipv4_source_option("leave", group, "10.0.0.9", ipaddress.IPv4Address("127.0.0.1")))
    assert (LO, "232.77.1.1") not in memberships(Family.IPV4)


def test_kernel_accepts_group_source_req(
    udp4: socket.socket, udp6: socket.socket, lo_index: int
) -> None:
    # MCAST_JOIN_SOURCE_GROUP / _LEAVE_ with this host's group_source_req, both families
    # (IPv6 memberships on lo are held, though lo carries no IPv6 multicast).
    g4, g6 = Group("232.77.1.2"), Group("ff3e::77:2")
    apply(udp4, source_option("join", g4, "10.0.0.9", lo_index))
    apply(udp6, source_option("join", g6, "fd00::9", lo_index))
    assert (LO, "232.77.1.2") in memberships(Family.IPV4)
    assert (LO, "ff3e::77:2") in memberships(Family.IPV6)
    # the same (S, G) again: EADDRNOTAVAIL, which checks the kernel read the source bytes
    assert refusal(udp4, source_option("join", g4, "10.0.0.9", lo_index)) == errno.EADDRNOTAVAIL
    assert refusal(udp6, source_option("join", g6, "fd00::9", lo_index)) == errno.EADDRNOTAVAIL
    apply(udp4, source_option("leave", g4, "10.0.0.9", lo_index))
    apply(udp6, source_option("leave", g6, "fd00::9", lo_index))
    assert (LO, "232.77.1.2") not in memberships(Family.IPV4)
    assert (LO, "ff3e::77:2") not in memberships(Family.IPV6)


def test_kernel_accepts_block_and_unblock(
    udp4: socket.socket, udp6: socket.socket, lo_index: int
) -> None:
    for sock, group, source in ((udp4, "239.77.1.4", "10.0.0.9"), (udp6, "ff15::77:4", "fd00::9")):
        g = Group(group)
        apply(sock, join_option(g, lo_index, None, "linux"))
        apply(sock, source_option("block", g, source, lo_index))
        assert refusal(sock, source_option("block", g, source, lo_index)) == errno.EADDRNOTAVAIL
        apply(sock, source_option("unblock", g, source, lo_index))
        assert refusal(sock, source_option("unblock", g, source, lo_index)) == errno.EADDRNOTAVAIL
        if g.family is Family.IPV4:  # the IPv4 form of the same
            lo = ipaddress.IPv4Address("127.0.0.1")
            apply(sock, ipv4_source_option("block", g, source, lo))
            apply(sock, ipv4_source_option("unblock", g, source, lo))
        apply(sock, leave_option(g, lo_index, None, "linux"))
