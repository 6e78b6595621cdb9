# Design: socket set-up and the multicast syscalls. Everything here is synchronous and happens
# before the socket is handed to the event loop, so the socket belongs to the network namespace
# of the thread that opens the endpoint. Every OSError from the kernel leaves this module as a
# KernelError naming the operation, group and interface, chained to the original.
from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import socket
import struct
from collections.abc import Iterator, Mapping
from typing import Literal, final

from ._address import Family, Group
from ._errors import InvalidArgumentError, InvalidSocketError, KernelError, show
from ._interfaces import Interface, resolve_interface
from ._options import (
    IPPROTO_IP,
    IPPROTO_IPV6,
    PLATFORM,
    SocketOption,
    decode_int_option,
    ipv4_interface_option,
    ipv6_interface_option,
    join_option,
    leave_option,
    loopback_option,
    multicast_all_option,
    option_numbers,
    source_option,
    ttl_option,
)

__all__ = [
    "SocketKernel",
    "adopt_socket",
    "bind",
    "block_source",
    "create_socket",
    "get_loopback",
    "get_ttl",
    "join",
    "join_source",
    "leave",
    "leave_source",
    "os_errors",
    "set_interface",
    "set_loopback",
    "set_ttl",
    "unblock_source",
]


@contextlib.contextmanager
def os_errors(
    operation: str,
    group: Group | None = None,
    interface: Interface | str | None = None,
    hints: Mapping[int, str] | None = None,
) -> Iterator[None]:
    """Turn an OSError raised inside the block into a KernelError (httpcore's map_exceptions).

    ``hints`` replaces the general hint for the errnos it names.
    """
    try:
        yield
    except KernelError:
        raise
    except OSError as exc:
        name = interface.name if isinstance(interface, Interface) else interface
        hint = hints.get(exc.errno) if hints is not None and exc.errno is not None else None
        raise KernelError.from_os_error(
            exc,
            operation=operation,
            group=None if group is None else str(group),
            interface=name,
            hint=hint,
        ) from exc


def _apply(sock: socket.socket, option: SocketOption) -> None:
    sock.setsockopt(option.level, option.name, option.value)


def create_socket(family: Family) -> socket.socket:
    """Create a non-blocking UDP socket of ``family``."""
    with os_errors("socket()"):
        sock = socket.socket(family, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setblocking(False)
    return sock


def adopt_socket(sock: object, family: Family | None) -> tuple[socket.socket, Family]:
    """Check a user's socket for multicast use (S3: SOCK_DGRAM only) and return its family.

    Raises:
        InvalidSocketError: not a socket, not SOCK_DGRAM, not IPv4/IPv6, or the wrong family.
    """
    if not isinstance(sock, socket.socket):
        raise InvalidSocketError(
            f"sock must be a socket.socket, not {type(sock).__name__}", value=sock
        )
    if sock.fileno() < 0:
        raise InvalidSocketError("sock is closed", value=sock)
    if sock.type != socket.SOCK_DGRAM:
        raise InvalidSocketError(
            f"sock is {sock.type!r}; multicast needs a connectionless SOCK_DGRAM socket (S3)",
            value=sock,
        )
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        raise InvalidSocketError(
            f"sock family {sock.family!r} is not AF_INET or AF_INET6", value=sock
        )
    sock_family = Family(sock.family)
    if family is not None and family is not sock_family:
        raise InvalidSocketError(
            f"sock is {sock_family.label} but the endpoint is {family.label}", value=sock
        )
    sock.setblocking(False)
    return sock, sock_family


def check_bind_address(address: object, family: Family) -> str:
    """Return ``address`` as text if it is a literal address of ``family`` (IPv6: %zone allowed).

    Names are refused: resolving them would block the event loop.

    Raises:
        InvalidArgumentError: not an address of the family.
    """
    if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
        address = str(address)
    if not isinstance(address, str):
        raise InvalidArgumentError(
            f"bind address {show(address)} must be an IP address string, "
            f"not {type(address).__name__}",
            value=address,
        )
    text = address.partition("%")[0] if family is Family.IPV6 else address
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgumentError(
            f"bind address {address!r} is not an {family.label} address (names are not resolved)",
            value=address,
        ) from None
    if parsed.version != (4 if family is Family.IPV4 else 6):
        raise InvalidArgumentError(
            f"bind address {address!r} is not an {family.label} address", value=address
        )
    return address


def _bind_scope(address: str, interface: Interface | None) -> tuple[str, int]:
    # An IPv6 address whose scope is the link or the interface (fe80::/10, ff01/ff02 and their
    # flagged forms) can only be bound with a scope id: Linux refuses it with EINVAL otherwise.
    text, _, zone = address.partition("%")
    parsed = ipaddress.IPv6Address(text)
    scoped = parsed.is_link_local or (parsed.is_multicast and (parsed.packed[1] & 0x0F) <= 0x2)
    if not scoped:
        return text, 0
    if zone:
        return text, resolve_interface(zone, Family.IPV6).index
    if interface is not None:
        return text, interface.index
    raise InvalidArgumentError(
        f"bind address {address!r} is link-scoped: give an interface (or a %zone)", value=address
    )


def prepare_receiver(sock: socket.socket, family: Family, *, reuse: bool) -> None:
    """Set the receive-side options: port sharing (``reuse``) and IP_MULTICAST_ALL off.

    Also applied to an adopted socket that is already bound, so that it too receives only the
    groups it joins.
    """
    with os_errors("setsockopt(SO_REUSEADDR)"):
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if PLATFORM in ("darwin", "freebsd") and hasattr(socket, "SO_REUSEPORT"):
                # untested on this platform
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    option = multicast_all_option(family)
    if option is not None:
        with contextlib.suppress(OSError):  # kernels before 4.20 lack IPV6_MULTICAST_ALL
            _apply(sock, option)


def bind(
    sock: socket.socket,
    family: Family,
    port: int,
    address: str | None,
    *,
    reuse: bool,
    interface: Interface | None = None,
) -> None:
    """Prepare ``sock`` to receive multicast on ``port`` and bind it.

    With ``reuse`` several receivers on one host share the port (SO_REUSEADDR, plus SO_REUSEPORT
    on the BSDs and macOS, where SO_REUSEADDR alone does not let multicast receivers share).
    On Linux IP_MULTICAST_ALL / IPV6_MULTICAST_ALL are turned off so that a wildcard-bound
    socket receives only the groups it joined itself. A link-scoped IPv6 ``address`` is bound
    with the scope id of ``interface`` (or of its ``%zone``).
    """
    prepare_receiver(sock, family, reuse=reuse)
    if address is not None:
        address = check_bind_address(address, family)
    target: tuple[str, int] | tuple[str, int, int, int]
    if family is Family.IPV4:
        host = address if address is not None else "0.0.0.0"
        target, where = (host, port), f"{host}:{port}"
    else:
        host, scope_id = _bind_scope(address, interface) if address is not None else ("::", 0)
        target, where = (host, port, 0, scope_id), f"[{host}]:{port}"
    with os_errors(f"bind({where})"):
        sock.bind(target)


def _ifaddr(interface: Interface | None) -> ipaddress.IPv4Address | None:
    return interface.ipv4[0] if interface is not None and interface.ipv4 else None


def join(sock: socket.socket, group: Group, interface: Interface | None) -> None:
    """Join ``group`` on ``interface`` (None: the kernel's choice by route) (S4, S5)."""
    index = interface.index if interface is not None else 0
    with os_errors("join", group, interface.name if interface else "default"):
        _apply(sock, join_option(group, index, _ifaddr(interface)))


def leave(sock: socket.socket, group: Group, interface: Interface | None) -> None:
    """Leave ``group`` on ``interface`` (S4, S5)."""
    index = interface.index if interface is not None else 0
    with os_errors("leave", group, interface.name if interface else "default"):
        _apply(sock, leave_option(group, index, _ifaddr(interface)))


# What the errnos of the source options mean, measured on Linux 6.18 (tests/sockets/test_ssm.py).
_SOURCE_HINTS: dict[str, dict[int, str]] = {
    "join source": {
        errno.EINVAL: (
            "the group is joined any-source on that interface with blocked sources; leave it "
            "first (with no blocked source Linux would silently turn it source-specific)"
        ),
        errno.EADDRNOTAVAIL: "the socket already joined that source of the group there",
    },
    "leave source": {
        errno.EINVAL: "the socket is not a member of that group on that interface",
        errno.EADDRNOTAVAIL: "the socket did not join that source of the group there",
    },
    "block source": {
        errno.EINVAL: (
            "blocking needs an any-source membership of the group on that interface; it is "
            "not joined there, or joined source-specifically"
        ),
        errno.EADDRNOTAVAIL: "that source is already blocked",
    },
    "unblock source": {
        errno.EINVAL: (
            "unblocking needs an any-source membership of the group on that interface; it is "
            "not joined there, or joined source-specifically"
        ),
        errno.EADDRNOTAVAIL: "that source is not blocked",
    },
}
_SOURCE_LIMIT_HINT = (
    "source limit reached: a socket may name at most net.ipv4.igmp_max_msf (default 10) "
    "sources per IPv4 group and net.ipv6.mld_max_msf (default 64) per IPv6 group; raise the "
    "sysctl or use more sockets"
)


def _source(
    action: Literal["join", "leave", "block", "unblock"],
    sock: socket.socket,
    group: Group,
    source: object,
    interface: Interface | None,
) -> None:
    operation = f"{action} source"
    option = source_option(action, group, source, interface.index if interface else 0)
    hints = {**_SOURCE_HINTS[operation], errno.ENOBUFS: _SOURCE_LIMIT_HINT}
    where = interface.name if interface else "default"
    with os_errors(f"{operation} {source}", group, where, hints):
        _apply(sock, option)


def join_source(
    sock: socket.socket, group: Group, source: object, interface: Interface | None
) -> None:
    """Join ``group`` for datagrams from ``source`` only (MCAST_JOIN_SOURCE_GROUP, IGMPv3/MLDv2).

    Several sources may be joined one by one; the membership is in INCLUDE mode.
    """
    _source("join", sock, group, source, interface)


def leave_source(
    sock: socket.socket, group: Group, source: object, interface: Interface | None
) -> None:
    """Leave one source of a source-specific membership; the last source leaves the group."""
    _source("leave", sock, group, source, interface)


def block_source(
    sock: socket.socket, group: Group, source: object, interface: Interface | None
) -> None:
    """Stop datagrams from ``source`` on an any-source membership (MCAST_BLOCK_SOURCE)."""
    _source("block", sock, group, source, interface)


def unblock_source(
    sock: socket.socket, group: Group, source: object, interface: Interface | None
) -> None:
    """Let a blocked source through again (MCAST_UNBLOCK_SOURCE)."""
    _source("unblock", sock, group, source, interface)


def set_ttl(sock: socket.socket, family: Family, ttl: int) -> None:
    """Set IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS for later sends (S7)."""
    with os_errors("set TTL"):
        _apply(sock, ttl_option(family, ttl))


def _get_int(sock: socket.socket, family: Family, v4: int, v6: int, operation: str) -> int:
    with os_errors(operation):
        if family is Family.IPV4:
            raw = sock.getsockopt(IPPROTO_IP, v4, 4)
        else:
            raw = sock.getsockopt(IPPROTO_IPV6, v6, 4)
    return decode_int_option(raw)


def get_ttl(sock: socket.socket, family: Family) -> int:
    """Read the multicast TTL / hop limit from the kernel."""
    numbers = option_numbers()
    return _get_int(sock, family, numbers.ip_multicast_ttl, numbers.ipv6_multicast_hops, "get TTL")


def set_loopback(sock: socket.socket, family: Family, on: bool) -> None:
    """Set IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP for later sends (S14)."""
    with os_errors("set loopback"):
        _apply(sock, loopback_option(family, on))


def get_loopback(sock: socket.socket, family: Family) -> bool:
    """Read the multicast loopback setting from the kernel."""
    numbers = option_numbers()
    return bool(
        _get_int(
            sock, family, numbers.ip_multicast_loop, numbers.ipv6_multicast_loop, "get loopback"
        )
    )


def set_interface(sock: socket.socket, family: Family, interface: Interface | None) -> None:
    """Set IP_MULTICAST_IF / IPV6_MULTICAST_IF; None restores the default (S13)."""
    name = interface.name if interface is not None else "default"
    with os_errors("set outgoing interface", interface=name):
        if family is Family.IPV4:
            option = ipv4_interface_option(
                _ifaddr(interface), interface.index if interface is not None else 0
            )
        else:
            option = ipv6_interface_option(interface.index if interface is not None else 0)
        _apply(sock, option)


def interface_index(sock: socket.socket, family: Family) -> int | None:
    """Read IPV6_MULTICAST_IF back from the kernel (IPv6 only; None for IPv4)."""
    if family is Family.IPV4:
        return None
    with os_errors("get outgoing interface"):
        raw = sock.getsockopt(IPPROTO_IPV6, option_numbers().ipv6_multicast_if, 4)
    return decode_int_option(raw)


SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
SO_MEMINFO = 55  # Linux 4.6+: struct { u32 meminfo[SK_MEMINFO_VARS] }
_SK_MEMINFO_DROPS = 8


def attach_filter(sock: socket.socket, program: bytes) -> None:
    """Attach a classic BPF program (8-byte instructions) to ``sock`` (Linux)."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("@HP", len(program) // 8, ctypes.addressof(buffer))
    with os_errors("setsockopt(SO_ATTACH_FILTER)"):
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def kernel_drops(sock: socket.socket) -> int:
    """Datagrams the kernel dropped for this socket (full buffer, refused by its filter).

    Linux only (SO_MEMINFO); 0 where it cannot be read.
    """
    if PLATFORM != "linux" or sock.fileno() < 0:
        return 0
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * 16)
    except OSError:
        return 0
    values = struct.unpack(f"@{len(raw) // 4}I", raw[: len(raw) // 4 * 4])
    return int(values[_SK_MEMINFO_DROPS]) if len(values) > _SK_MEMINFO_DROPS else 0


SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def set_receive_buffer(sock: socket.socket, size: int) -> int:
    """Request a receive buffer of ``size`` bytes; return what the kernel granted.

    SO_RCVBUF is capped by net.core.rmem_max; where the grant is short and the process has
    CAP_NET_ADMIN, SO_RCVBUFFORCE lifts the cap. Linux reports twice the requested size (it
    counts its bookkeeping), so a grant short of twice the request was capped.
    """
    with os_errors("setsockopt(SO_RCVBUF)"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if PLATFORM == "linux" and granted < 2 * size:
        with contextlib.suppress(PermissionError, OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return int(granted)


@final
class SocketKernel:
    """The membership calls of one socket, for a MembershipTable (_membership.Kernel)."""

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def join(self, group: Group, interface: Interface | None, source: str | None) -> None:
        """Join, any-source or from ``source``."""
        if source is None:
            join(self._sock, group, interface)
        else:
            join_source(self._sock, group, source, interface)

    def leave(self, group: Group, interface: Interface | None, source: str | None) -> None:
        """Leave, any-source or ``source``."""
        if source is None:
            leave(self._sock, group, interface)
        else:
            leave_source(self._sock, group, source, interface)

    def block(self, group: Group, interface: Interface | None, source: str) -> None:
        """Block ``source`` (MCAST_BLOCK_SOURCE)."""
        block_source(self._sock, group, source, interface)

    def unblock(self, group: Group, interface: Interface | None, source: str) -> None:
        """Unblock ``source`` (MCAST_UNBLOCK_SOURCE)."""
        unblock_source(self._sock, group, source, interface)
