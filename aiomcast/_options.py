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
from ._errors import InvalidArgumentError, InvalidGroupError, InvalidSourceError, show

__all__ = [
    "PLATFORM",
    "Platform",
    "SocketOption",
    "SourceAction",
    "check_source",
    "decode_int_option",
    "ipv4_interface_option",
    "ipv4_source_option",
    "ipv6_interface_option",
    "join_option",
    "leave_option",
    "loopback_option",
    "multicast_all_option",
    "option_numbers",
    "pack_group_source_req",
    "pack_ip_mreq",
    "pack_ip_mreq_source",
    "pack_ip_mreqn",
    "pack_ipv6_mreq",
    "pack_sockaddr",
    "source_option",
    "source_option_numbers",
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


# -- source-specific and source-filtered membership (RFC 3678, IGMPv3 / MLDv2) ----------------

#: What a source option does: join or leave (group, source), block or unblock a source of an
#: any-source membership.
SourceAction = Literal["join", "leave", "block", "unblock"]


class _SourceNumbers(NamedTuple):
    # IPv4 only, struct ip_mreq_source
    ip_add_source_membership: int
    ip_drop_source_membership: int
    ip_block_source: int
    ip_unblock_source: int
    # protocol-independent, struct group_source_req, at IPPROTO_IP or IPPROTO_IPV6
    mcast_join_source_group: int
    mcast_leave_source_group: int
    mcast_block_source: int
    mcast_unblock_source: int


_SOURCE_NUMBERS: Final[dict[Platform, _SourceNumbers]] = {
    # linux/in.h
    "linux": _SourceNumbers(39, 40, 38, 37, 46, 47, 43, 44),
    # netinet/in.h (RFC 3678 section of both)
    "darwin": _SourceNumbers(70, 71, 72, 73, 82, 83, 84, 85),
    "freebsd": _SourceNumbers(70, 71, 72, 73, 82, 83, 84, 85),
    # ws2ipdef.h
    "windows": _SourceNumbers(15, 16, 17, 18, 45, 46, 43, 44),
}

# Address family numbers inside a sockaddr, per platform.
_AF_INET: Final = 2
_AF_INET6: Final[dict[Platform, int]] = {"linux": 10, "darwin": 30, "freebsd": 28, "windows": 23}
_SOCKADDR_STORAGE: Final = 128
# Linux aligns its sockaddr_storage like a pointer (_K_SS_ALIGNSIZE): group_source_req has 4
# bytes of padding after the interface index on 64-bit Linux, none on 32-bit.
_POINTER_SIZE: Final = struct.calcsize("P")


def source_option_numbers(platform: Platform = PLATFORM) -> _SourceNumbers:
    """Return the source-filter option numbers of ``platform`` (a named tuple)."""
    return _SOURCE_NUMBERS[platform]


def check_source(value: object, family: Family) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Return ``value`` as the unicast source address of ``family`` it must be.

    Raises:
        InvalidSourceError: not an address, of the other family, multicast or unspecified
            (Linux accepts the last two and filters nothing useful with them).
    """
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        address = value
    elif isinstance(value, str):
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise InvalidSourceError(
                f"source {show(value)} is not an IP address (names are not resolved)", value=value
            ) from None
    else:
        raise InvalidSourceError(
            f"source {show(value)} must be an IP address string, not {type(value).__name__}",
            value=value,
        )
    if address.version != (4 if family is Family.IPV4 else 6):
        raise InvalidSourceError(
            f"source {show(value)} is not an {family.label} address", value=value
        )
    if address.is_multicast or address.is_unspecified:
        kind = "a multicast" if address.is_multicast else "the unspecified"
        raise InvalidSourceError(
            f"source {show(value)} is {kind} address; a source is the unicast address of a sender",
            value=value,
        )
    return address


def pack_ip_mreq_source(
    group: ipaddress.IPv4Address,
    source: ipaddress.IPv4Address,
    interface: ipaddress.IPv4Address,
    platform: Platform = PLATFORM,
) -> bytes:
    """Encode ``struct ip_mreq_source``; the field order differs between platforms.

    Linux: multiaddr, interface, sourceaddr. The BSDs, macOS and Windows: multiaddr,
    sourceaddr, interface.
    """
    if platform == "linux":
        return group.packed + interface.packed + source.packed
    return group.packed + source.packed + interface.packed


def pack_sockaddr(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    platform: Platform = PLATFORM,
    *,
    port: int = 0,
    scope_id: int = 0,
) -> bytes:
    """Encode ``struct sockaddr_in`` / ``sockaddr_in6`` (flow information 0).

    The one packer of socket addresses: for group requests (port 0) and for the batching
    transport's destinations. The BSDs and macOS start with a length byte and a one-byte
    family; Linux and Windows with a native 16-bit family. Port and scope id must fit their
    fields (struct.error otherwise).
    """
    if isinstance(address, ipaddress.IPv4Address):
        family, length = _AF_INET, 16
        body = struct.pack("!H", port) + address.packed + bytes(8)  # port, address, sin_zero
    else:
        family, length = _AF_INET6[platform], 28
        # port, flowinfo, address, scope id (host order)
        body = struct.pack("!HI", port, 0) + address.packed + struct.pack("=I", scope_id)
    if platform in ("darwin", "freebsd"):
        return struct.pack("=BB", length, family) + body
    return struct.pack("=H", family) + body


def pack_group_source_req(
    ifindex: int,
    group: ipaddress.IPv4Address | ipaddress.IPv6Address,
    source: ipaddress.IPv4Address | ipaddress.IPv6Address,
    platform: Platform = PLATFORM,
    *,
    pointer_size: int = _POINTER_SIZE,
) -> bytes:
    """Encode ``struct group_source_req``: uint32 interface index, group, source.

    Group and source are each a ``sockaddr_storage`` (128 bytes). The index is padded to 8
    bytes where sockaddr_storage is 8-byte aligned: 64-bit Linux (``pointer_size`` 8),
    FreeBSD and Windows (an int64 member); macOS packs the struct to 4 bytes, and so does
    32-bit Linux.
    """
    if ifindex < 0:
        raise InvalidArgumentError(f"interface index {ifindex} is negative", value=ifindex)
    if platform == "darwin" or (platform == "linux" and pointer_size == 4):
        head = struct.pack("=I", ifindex)
    else:
        head = struct.pack("=I", ifindex) + bytes(4)

    def storage(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
        raw = pack_sockaddr(address, platform)
        return raw + bytes(_SOCKADDR_STORAGE - len(raw))

    return head + storage(group) + storage(source)


def _checked_source(
    group: Group, source: object
) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, Family]:
    family = group.family
    return check_source(source, family), family


def source_option(
    action: SourceAction,
    group: Group,
    source: object,
    ifindex: int = 0,
    platform: Platform = PLATFORM,
) -> SocketOption:
    """Return MCAST_JOIN_SOURCE_GROUP / _LEAVE_SOURCE_GROUP / MCAST_BLOCK_SOURCE / _UNBLOCK_SOURCE.

    The protocol-independent options (RFC 3678) take an interface index for both families, at
    level IPPROTO_IP for an IPv4 group and IPPROTO_IPV6 for an IPv6 group; index 0 lets the
    kernel choose the interface by route.

    Raises:
        InvalidSourceError: ``source`` is not a unicast address of the group's family.
    """
    address, family = _checked_source(group, source)
    numbers = _SOURCE_NUMBERS[platform]
    name = {
        "join": numbers.mcast_join_source_group,
        "leave": numbers.mcast_leave_source_group,
        "block": numbers.mcast_block_source,
        "unblock": numbers.mcast_unblock_source,
    }[action]
    level = IPPROTO_IP if family is Family.IPV4 else IPPROTO_IPV6
    return SocketOption(
        level, name, pack_group_source_req(ifindex, group.address, address, platform)
    )


def ipv4_source_option(
    action: SourceAction,
    group: Group,
    source: object,
    ifaddr: ipaddress.IPv4Address | None = None,
    ifindex: int = 0,
    platform: Platform = PLATFORM,
) -> SocketOption:
    """Return IP_ADD_SOURCE_MEMBERSHIP / IP_DROP_SOURCE_MEMBERSHIP / IP_BLOCK_SOURCE / _UNBLOCK.

    IPv4 only; the interface is given by its local address (INADDR_ANY: by route). Windows
    also reads an interface address of the form 0.0.0.N as interface index N.

    Raises:
        InvalidGroupError: an IPv6 group (use source_option).
        InvalidSourceError: ``source`` is not a unicast IPv4 address.
    """
    if not isinstance(group.address, ipaddress.IPv4Address):
        raise InvalidGroupError(
            f"group {group} is IPv6: ip_mreq_source is IPv4 only (use source_option)",
            value=str(group),
        )
    if ifindex < 0:
        raise InvalidArgumentError(f"interface index {ifindex} is negative", value=ifindex)
    address, _ = _checked_source(group, source)
    assert isinstance(address, ipaddress.IPv4Address)
    numbers = _SOURCE_NUMBERS[platform]
    name = {
        "join": numbers.ip_add_source_membership,
        "leave": numbers.ip_drop_source_membership,
        "block": numbers.ip_block_source,
        "unblock": numbers.ip_unblock_source,
    }[action]
    if platform == "windows" and ifaddr is None and ifindex:
        ifaddr = ipaddress.IPv4Address(ifindex)
    value = pack_ip_mreq_source(group.address, address, ifaddr or _ANY4, platform)
    return SocketOption(IPPROTO_IP, name, value)


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
        raise InvalidArgumentError(f"loopback must be True or False, not {show(on)}", value=on)
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
_AND_K: Final = 0x54  # BPF_ALU | BPF_AND | BPF_K
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
    return receive_filter(family, loopback_index, host_scope=True, multicast_only=False)


def receive_filter(
    family: Family, loopback_index: int, *, host_scope: bool, multicast_only: bool
) -> bytes:
    """Return the BPF program of a receiving socket: the host-scope guard and/or group-only.

    ``multicast_only`` refuses datagrams whose destination is not a multicast address: a
    socket bound to the wildcard address would otherwise also get unicast datagrams sent to
    the host on its port, and IPv4 broadcasts. ``host_scope``: see host_scope_filter.
    """
    program: list[bytes] = []
    refuse_jumps: list[int] = []  # instructions whose false branch goes to "refuse"
    if multicast_only:
        if family is Family.IPV4:  # destination 224.0.0.0/4: top four bits 1110
            program.append(_insn(_LD_B_ABS, 0, 0, _SKF_NET_OFF + 16))
            program.append(_insn(_AND_K, 0, 0, 0xF0))
            refuse_jumps.append(len(program))
            program.append(_insn(_JEQ_K, 0, 0, 0xE0))
        else:  # destination ff00::/8
            program.append(_insn(_LD_B_ABS, 0, 0, _SKF_NET_OFF + 24))
            refuse_jumps.append(len(program))
            program.append(_insn(_JEQ_K, 0, 0, 0xFF))
    if host_scope:
        ttl_offset = 8 if family is Family.IPV4 else 7  # IPv4 TTL, IPv6 hop limit
        program += [
            _insn(_LD_B_ABS, 0, 0, _SKF_NET_OFF + ttl_offset),  # A = TTL
            _insn(_JEQ_K, 0, 4, 0),  # TTL == 0 ? next : accept
            _insn(_LD_W_ABS, 0, 0, _SKF_AD_OFF + _SKF_AD_PKTTYPE),  # A = pkt_type
            _insn(_JEQ_K, 2, 0, _PACKET_LOOPBACK),  # looped back ? accept : next
            _insn(_LD_W_ABS, 0, 0, _SKF_AD_OFF + _SKF_AD_IFINDEX),  # A = ingress ifindex
        ]
        refuse_jumps.append(len(program))
        program.append(_insn(_JEQ_K, 0, 0, loopback_index))  # on lo ? accept : refuse
    accept = len(program)
    program += [_insn(_RET_K, 0, 0, _ACCEPT), _insn(_RET_K, 0, 0, 0)]
    refuse = accept + 1
    for at in refuse_jumps:  # true: the next instruction (or accept); false: refuse
        code, jt, _jf, k = struct.unpack("=HBBI", program[at])
        program[at] = _insn(code, jt, refuse - at - 1, k)
    return b"".join(program)
