# Design: the bytes of every multicast socket option, as plain functions of plain values.
# Each function returns a SocketOption (level, name, value) ready for setsockopt, for a named
# platform, so that the encodings for Linux, the BSDs/macOS and Windows are tested from tables
# on any host. Option numbers come from tables here, not from the socket module, because the
# socket module only knows the running platform. Linux is tested on real kernels; the darwin,
# freebsd and windows rows follow their headers (netinet/in.h, ws2ipdef.h) and are untested there.
from __future__ import annotations

import ipaddress
import struct
import sys
from typing import Final, Literal, NamedTuple

from ._address import Family, Group, validate_ttl
from ._errors import InvalidArgumentError

__all__ = [
    "PLATFORM",
    "Platform",
    "SocketOption",
    "decode_int_option",
    "ipv4_interface_option",
    "ipv6_interface_option",
    "join_option",
    "leave_option",
    "loopback_option",
    "multicast_all_option",
    "option_numbers",
    "pack_ip_mreq",
    "pack_ip_mreqn",
    "pack_ipv6_mreq",
    "ttl_option",
]

Platform = Literal["linux", "darwin", "freebsd", "windows"]


def _detect_platform(name: str = sys.platform) -> Platform:
    if name.startswith("linux"):
        return "linux"
    if name == "darwin":
        return "darwin"
    if name.startswith("win"):
        return "windows"
    return "freebsd"  # and the other BSDs, which share its option numbers


#: The platform whose encodings this process uses.
PLATFORM: Final[Platform] = _detect_platform()

IPPROTO_IP: Final = 0
IPPROTO_IPV6: Final = 41


class _Numbers(NamedTuple):
    ip_multicast_if: int
    ip_multicast_ttl: int
    ip_multicast_loop: int
    ip_add_membership: int
    ip_drop_membership: int
    ip_multicast_all: int | None
    ipv6_multicast_if: int
    ipv6_multicast_hops: int
    ipv6_multicast_loop: int
    ipv6_join_group: int
    ipv6_leave_group: int
    ipv6_multicast_all: int | None
    # True where IP_MULTICAST_TTL / IP_MULTICAST_LOOP take a u_char, not an int.
    ipv4_byte_options: bool


_NUMBERS: Final[dict[Platform, _Numbers]] = {
    # linux/in.h, linux/in6.h
    "linux": _Numbers(32, 33, 34, 35, 36, 49, 17, 18, 19, 20, 21, 29, False),
    # netinet/in.h, netinet6/in6.h (IPV6_JOIN_GROUP = 12, IPV6_LEAVE_GROUP = 13)
    "darwin": _Numbers(9, 10, 11, 12, 13, None, 9, 10, 11, 12, 13, None, True),
    "freebsd": _Numbers(9, 10, 11, 12, 13, None, 9, 10, 11, 12, 13, None, True),
    # ws2ipdef.h: options take DWORDs
    "windows": _Numbers(9, 10, 11, 12, 13, None, 9, 10, 11, 12, 13, None, False),
}


def option_numbers(platform: Platform = PLATFORM) -> _Numbers:
    """Return the option numbers of ``platform`` (a named tuple)."""
    return _NUMBERS[platform]


class SocketOption(NamedTuple):
    """Arguments for one ``setsockopt(level, name, value)`` call."""

    level: int
    name: int
    value: bytes


def pack_ip_mreq(group: ipaddress.IPv4Address, interface: ipaddress.IPv4Address) -> bytes:
    """Encode ``struct ip_mreq`` (S4): group then local interface address, network order."""
    return group.packed + interface.packed


def pack_ip_mreqn(
    group: ipaddress.IPv4Address, address: ipaddress.IPv4Address, ifindex: int
) -> bytes:
    """Encode Linux ``struct ip_mreqn``: group, local address, interface index (native int)."""
    return group.packed + address.packed + struct.pack("@i", ifindex)


def pack_ipv6_mreq(group: ipaddress.IPv6Address, ifindex: int) -> bytes:
    """Encode ``struct ipv6_mreq`` (S5): 16 group bytes then the interface index (native uint)."""
    return group.packed + struct.pack("@I", ifindex)


_ANY4: Final = ipaddress.IPv4Address(0)


def _membership(
    group: Group,
    ifindex: int,
    ifaddr: ipaddress.IPv4Address | None,
    platform: Platform,
    join: bool,
) -> SocketOption:
    numbers = _NUMBERS[platform]
    if ifindex < 0:
        raise InvalidArgumentError(f"interface index {ifindex} is negative", value=ifindex)
    address = group.address
    if isinstance(address, ipaddress.IPv4Address):
        name = numbers.ip_add_membership if join else numbers.ip_drop_membership
        if platform == "linux":
            # ip_mreqn selects the interface by index, which also works for interfaces whose
            # address is shared or absent; the kernel accepts it for IP_ADD_MEMBERSHIP.
            return SocketOption(IPPROTO_IP, name, pack_ip_mreqn(address, ifaddr or _ANY4, ifindex))
        if platform == "windows" and ifaddr is None and ifindex:
            # Windows reads an imr_interface of the form 0.0.0.N as interface index N.
            ifaddr = ipaddress.IPv4Address(ifindex)
        return SocketOption(IPPROTO_IP, name, pack_ip_mreq(address, ifaddr or _ANY4))
    name = numbers.ipv6_join_group if join else numbers.ipv6_leave_group
    return SocketOption(IPPROTO_IPV6, name, pack_ipv6_mreq(address, ifindex))


def join_option(
    group: Group,
    ifindex: int = 0,
    ifaddr: ipaddress.IPv4Address | None = None,
    platform: Platform = PLATFORM,
) -> SocketOption:
    """Return IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP for ``group`` on an interface (0: default)."""
    return _membership(group, ifindex, ifaddr, platform, join=True)


def leave_option(
    group: Group,
    ifindex: int = 0,
    ifaddr: ipaddress.IPv4Address | None = None,
    platform: Platform = PLATFORM,
) -> SocketOption:
    """Return IP_DROP_MEMBERSHIP / IPV6_LEAVE_GROUP for ``group`` on an interface."""
    return _membership(group, ifindex, ifaddr, platform, join=False)


def _int_or_byte(value: int, byte: bool) -> bytes:
    return struct.pack("@B", value) if byte else struct.pack("@i", value)


def ttl_option(family: Family, ttl: object, platform: Platform = PLATFORM) -> SocketOption:
    """Return IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS for a TTL in 0-255 (S7)."""
    value = validate_ttl(ttl)
    numbers = _NUMBERS[platform]
    if family is Family.IPV4:
        return SocketOption(
            IPPROTO_IP, numbers.ip_multicast_ttl, _int_or_byte(value, numbers.ipv4_byte_options)
        )
    return SocketOption(IPPROTO_IPV6, numbers.ipv6_multicast_hops, struct.pack("@i", value))


def loopback_option(family: Family, on: object, platform: Platform = PLATFORM) -> SocketOption:
    """Return IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP, 1 on or 0 off (S14)."""
    if not isinstance(on, bool):
        raise InvalidArgumentError(f"loopback must be True or False, not {on!r}", value=on)
    numbers = _NUMBERS[platform]
    if family is Family.IPV4:
        return SocketOption(
            IPPROTO_IP, numbers.ip_multicast_loop, _int_or_byte(int(on), numbers.ipv4_byte_options)
        )
    return SocketOption(IPPROTO_IPV6, numbers.ipv6_multicast_loop, struct.pack("@I", int(on)))


def ipv4_interface_option(
    address: ipaddress.IPv4Address | None,
    ifindex: int = 0,
    platform: Platform = PLATFORM,
) -> SocketOption:
    """Return IP_MULTICAST_IF for an interface (S13); no address and index 0 is INADDR_ANY.

    On Linux an index is sent as ``struct ip_mreqn`` so that interfaces that share an address
    (or have none, such as the loopback used with 127.0.0.1) are told apart.
    """
    if ifindex < 0:
        raise InvalidArgumentError(f"interface index {ifindex} is negative", value=ifindex)
    numbers = _NUMBERS[platform]
    if platform == "linux" and ifindex:
        value = pack_ip_mreqn(_ANY4, address or _ANY4, ifindex)
    elif platform == "windows" and address is None and ifindex:
        value = ipaddress.IPv4Address(ifindex).packed
    else:
        value = (address or _ANY4).packed
    return SocketOption(IPPROTO_IP, numbers.ip_multicast_if, value)


def ipv6_interface_option(ifindex: int, platform: Platform = PLATFORM) -> SocketOption:
    """Return IPV6_MULTICAST_IF for an interface index (S13); 0 restores the default."""
    if ifindex < 0:
        raise InvalidArgumentError(f"interface index {ifindex} is negative", value=ifindex)
    return SocketOption(
        IPPROTO_IPV6, _NUMBERS[platform].ipv6_multicast_if, struct.pack("@I", ifindex)
    )


def multicast_all_option(family: Family, platform: Platform = PLATFORM) -> SocketOption | None:
    """Return IP_MULTICAST_ALL / IPV6_MULTICAST_ALL set to 0, or None where it does not exist.

    Linux delivers to a socket bound to the wildcard address every group that any socket on the
    host joined (the default 1); 0 limits delivery to the socket's own memberships.
    """
    numbers = _NUMBERS[platform]
    name = numbers.ip_multicast_all if family is Family.IPV4 else numbers.ipv6_multicast_all
    if name is None:
        return None
    level = IPPROTO_IP if family is Family.IPV4 else IPPROTO_IPV6
    return SocketOption(level, name, struct.pack("@i", 0))


def decode_int_option(value: bytes) -> int:
    """Decode an option read back with getsockopt: one byte (u_char) or a native int."""
    if len(value) == 1:
        return value[0]
    if len(value) >= 4:
        return int(struct.unpack("@i", value[:4])[0])
    raise InvalidArgumentError(f"cannot decode a {len(value)}-byte option value", value=value)


# -- the host-scope guard: a classic BPF socket filter ---------------------------------------

_SKF_AD_OFF: Final = -0x1000
_SKF_AD_PKTTYPE: Final = 4
_SKF_AD_IFINDEX: Final = 8
_SKF_NET_OFF: Final = -0x100000
_PACKET_LOOPBACK: Final = 5
# BPF opcodes (linux/filter.h)
_LD_B_ABS: Final = 0x30  # BPF_LD | BPF_B | BPF_ABS
_LD_W_ABS: Final = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K: Final = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RET_K: Final = 0x06  # BPF_RET | BPF_K
_ACCEPT: Final = 0x40000  # keep the whole datagram


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def host_scope_filter(family: Family, loopback_index: int) -> bytes:
    """Return a BPF program that refuses TTL-0 datagrams arriving from another host (S8).

    A datagram sent with TTL (hop limit) 0 must not leave its host; Linux transmits it anyway.
    The program accepts every datagram whose TTL is not 0, and TTL-0 datagrams that are the
    host's own: looped-back copies (PACKET_LOOPBACK) or arrivals on the loopback interface.
    The kernel counts what it refuses among the socket's drops (SO_MEMINFO).
    """
    ttl_offset = 8 if family is Family.IPV4 else 7  # IPv4 TTL, IPv6 hop limit
    program = [
        _insn(_LD_B_ABS, 0, 0, _SKF_NET_OFF + ttl_offset),  # 0: A = TTL
        _insn(_JEQ_K, 0, 4, 0),  # 1: TTL == 0 ? next : accept
        _insn(_LD_W_ABS, 0, 0, _SKF_AD_OFF + _SKF_AD_PKTTYPE),  # 2: A = pkt_type
        _insn(_JEQ_K, 2, 0, _PACKET_LOOPBACK),  # 3: looped back ? accept : next
        _insn(_LD_W_ABS, 0, 0, _SKF_AD_OFF + _SKF_AD_IFINDEX),  # 4: A = ingress ifindex
        _insn(_JEQ_K, 0, 1, loopback_index),  # 5: on lo ? accept : refuse
        _insn(_RET_K, 0, 0, _ACCEPT),  # 6: accept
        _insn(_RET_K, 0, 0, 0),  # 7: refuse
    ]
    return b"".join(program)
