# Design: per-datagram metadata, opt-in. The kernel attaches it to a datagram as control
# messages (cmsgs) when the socket asked for them: the destination address and ingress
# interface (IP_PKTINFO / IPV6_RECVPKTINFO), the received TTL / hop limit (IP_RECVTTL /
# IPV6_RECVHOPLIMIT), the receive timestamp (SO_TIMESTAMPNS) and the socket's drop counter
# (SO_RXQ_OVFL). This module names what can be asked (Metadata), turns the options on, and
# decodes a control buffer into the values a Datagram carries. Nothing here runs unless the
# user asked for metadata: the receive paths without it never look at control messages.
#
# The numbers are Linux's (linux/in.h, linux/in6.h, asm-generic/socket.h); elsewhere
# metadata is refused when asked for.
from __future__ import annotations

import enum
import fcntl
import socket
import struct
from collections.abc import Iterable
from typing import Final, NamedTuple

from ._errors import InvalidArgumentError, show
from ._options import PLATFORM

__all__ = ["Metadata", "MetadataDecoder", "enable_metadata", "parse_metadata"]

SOL_SOCKET: Final = 1
SO_TIMESTAMPNS: Final = 35  # also the cmsg type SCM_TIMESTAMPNS
SO_RXQ_OVFL: Final = 40
IPPROTO_IP: Final = 0
IP_PKTINFO: Final = 8
IP_TTL: Final = 2  # cmsg type of IP_RECVTTL
IP_RECVTTL: Final = 12
IPPROTO_IPV6: Final = 41
IPV6_RECVPKTINFO: Final = 49
IPV6_PKTINFO: Final = 50
IPV6_RECVHOPLIMIT: Final = 51
IPV6_HOPLIMIT: Final = 52
_SIOCGIFNAME: Final = 0x8910

#: Bytes of control buffer per datagram: room for every cmsg above (IPv6 needs 40 + 24 +
#: 32 + 24), rounded up.
CONTROL_SIZE: Final = 160

_CMSG_HEADER: Final = struct.Struct("=Qii")  # cmsg_len (size_t), cmsg_level, cmsg_type
_ALIGN: Final = 8


class Metadata(enum.Flag):
    """Per-datagram metadata a receiver can ask for (``open_receiver(..., metadata=...)``).

    Each flag fills a field of Datagram that is None otherwise.
    """

    #: No metadata (the default); the fast path reads no control messages.
    NONE = 0
    #: The destination group the datagram was sent to (``Datagram.group``).
    GROUP = enum.auto()
    #: The interface it arrived on (``Datagram.interface``).
    INTERFACE = enum.auto()
    #: The TTL / hop limit it arrived with (``Datagram.ttl``).
    TTL = enum.auto()
    #: The kernel's receive time, nanoseconds since the epoch (``Datagram.timestamp_ns``).
    TIMESTAMP = enum.auto()
    #: The socket's kernel drop counter when it was queued (``Datagram.kernel_drops``).
    KERNEL_DROPS = enum.auto()
    #: All of the above.
    ALL = GROUP | INTERFACE | TTL | TIMESTAMP | KERNEL_DROPS


_NAMES: Final = {
    "group": Metadata.GROUP,
    "interface": Metadata.INTERFACE,
    "ttl": Metadata.TTL,
    "timestamp": Metadata.TIMESTAMP,
    "kernel_drops": Metadata.KERNEL_DROPS,
}


def parse_metadata(value: object) -> Metadata:
    """Turn ``True``/``False``/None, a Metadata flag, a name or names into a Metadata flag.

    Names are ``group``, ``interface``, ``ttl``, ``timestamp``, ``kernel_drops``, ``all``.

    Raises:
        InvalidArgumentError: anything else, named in the message.
    """
    if value is None or value is False:
        return Metadata.NONE
    if value is True:
        return Metadata.ALL
    if isinstance(value, Metadata):
        return value
    items: Iterable[object] = [value] if isinstance(value, str) else value  # type: ignore[assignment]
    if not isinstance(value, str) and not isinstance(value, list | tuple | set | frozenset):
        raise InvalidArgumentError(
            f"metadata {show(value)} must be True, False, a Metadata flag or names "
            f"from {', '.join(sorted([*_NAMES, 'all']))}",
            value=value,
        )
    result = Metadata.NONE
    for item in items:
        if item == "all":
            result |= Metadata.ALL
            continue
        flag = _NAMES.get(item) if isinstance(item, str) else None
        if flag is None:
            raise InvalidArgumentError(
                f"metadata name {show(item)} is not one of {', '.join(sorted([*_NAMES, 'all']))}",
                value=item,
            )
        result |= flag
    return result


def enable_metadata(sock: socket.socket, family: int, wanted: Metadata) -> None:
    """Ask the kernel for the control messages that ``wanted`` needs (Linux)."""
    if not wanted:
        return
    if PLATFORM != "linux":
        raise InvalidArgumentError(
            f"per-datagram metadata is implemented for Linux only, not {PLATFORM}",
            value=str(wanted),
        )
    ipv4 = family == socket.AF_INET
    if wanted & (Metadata.GROUP | Metadata.INTERFACE):
        if ipv4:
            sock.setsockopt(IPPROTO_IP, IP_PKTINFO, 1)
        else:
            sock.setsockopt(IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    if wanted & Metadata.TTL:
        if ipv4:
            sock.setsockopt(IPPROTO_IP, IP_RECVTTL, 1)
        else:
            sock.setsockopt(IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
    if wanted & Metadata.TIMESTAMP:
        sock.setsockopt(SOL_SOCKET, SO_TIMESTAMPNS, 1)
    if wanted & Metadata.KERNEL_DROPS:
        sock.setsockopt(SOL_SOCKET, SO_RXQ_OVFL, 1)


class Decoded(NamedTuple):
    """The metadata of one datagram (None where not asked for or not sent by the kernel)."""

    group: str | None
    interface: str | None
    ttl: int | None
    timestamp_ns: int | None
    kernel_drops: int | None


class MetadataDecoder:
    """Decodes control buffers of one socket; caches interface names by index."""

    def __init__(self, sock: socket.socket, wanted: Metadata) -> None:
        self._fd = sock.fileno()
        self._wanted = wanted
        self._names: dict[int, str] = {}
        self._groups: dict[bytes, str] = {}

    def interface_name(self, index: int) -> str:
        """The name of interface ``index`` in the socket's own network namespace."""
        name = self._names.get(index)
        if name is None:
            # SIOCGIFNAME on the endpoint's socket answers in the socket's namespace, which
            # may not be the calling thread's.
            try:
                request = struct.pack("16si", b"", index)
                reply = fcntl.ioctl(self._fd, _SIOCGIFNAME, request)
                name = reply[:16].split(b"\0", 1)[0].decode()
            except OSError:
                name = f"#{index}"  # the interface is gone already
            if len(self._names) > 1024:
                self._names.clear()
            self._names[index] = name
        return name

    def _group(self, raw: bytes, family: int) -> str:
        group = self._groups.get(raw)
        if group is None:
            group = socket.inet_ntop(family, raw)
            if len(self._groups) > 4096:  # bounded: a flood to many groups cannot grow it
                self._groups.clear()
            self._groups[raw] = group
        return group

    def decode(self, control: memoryview | bytes, length: int) -> Decoded:
        """Decode the first ``length`` bytes of a control buffer (a series of cmsgs)."""
        group: str | None = None
        interface: str | None = None
        ttl: int | None = None
        stamp: int | None = None
        wanted = self._wanted
        # The kernel attaches SO_RXQ_OVFL only once the socket has dropped something: its
        # absence means 0 drops so far.
        drops: int | None = 0 if wanted & Metadata.KERNEL_DROPS else None
        at = 0
        while at + _CMSG_HEADER.size <= length:
            size, level, kind = _CMSG_HEADER.unpack_from(control, at)
            if size < _CMSG_HEADER.size:
                break
            data = at + _CMSG_HEADER.size
            if level == IPPROTO_IP and kind == IP_PKTINFO:
                index = int.from_bytes(control[data : data + 4], "little")
                if wanted & Metadata.INTERFACE:
                    interface = self.interface_name(index)
                if wanted & Metadata.GROUP:
                    group = self._group(bytes(control[data + 8 : data + 12]), socket.AF_INET)
            elif level == IPPROTO_IPV6 and kind == IPV6_PKTINFO:
                index = int.from_bytes(control[data + 16 : data + 20], "little")
                if wanted & Metadata.INTERFACE:
                    interface = self.interface_name(index)
                if wanted & Metadata.GROUP:
                    group = self._group(bytes(control[data : data + 16]), socket.AF_INET6)
            elif (level == IPPROTO_IP and kind == IP_TTL) or (
                level == IPPROTO_IPV6 and kind == IPV6_HOPLIMIT
            ):
                ttl = int.from_bytes(control[data : data + 4], "little", signed=True)
            elif level == SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack_from("=qq", control, data)
                stamp = seconds * 1_000_000_000 + nanoseconds
            elif level == SOL_SOCKET and kind == SO_RXQ_OVFL:
                drops = int.from_bytes(control[data : data + 4], "little")
            at += (size + _ALIGN - 1) & ~(_ALIGN - 1)
        return Decoded(group, interface, ttl, stamp, drops)

    def decode_items(self, items: Iterable[tuple[int, int, bytes]]) -> Decoded:
        """Decode control messages as socket.recvmsg returns them (level, type, data)."""
        buffer = bytearray()
        for level, kind, data in items:
            size = _CMSG_HEADER.size + len(data)
            buffer += _CMSG_HEADER.pack(size, level, kind) + data
            buffer += bytes(-len(buffer) % _ALIGN)
        return self.decode(bytes(buffer), len(buffer))
