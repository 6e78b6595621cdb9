# Design: one root exception, AiomcastError, and subclasses by meaning, after anyio and httpcore:
#   - bad input refused at the boundary (InvalidArgumentError and its children, which are also
#     ValueError so that code catching ValueError keeps working);
#   - a join or leave that contradicts the endpoint's memberships (MembershipError);
#   - "you closed it" (EndpointClosedError) versus "something outside broke it"
#     (BrokenEndpointError);
#   - two tasks reading one endpoint (BusyError);
#   - the kernel said no (KernelError, also an OSError, carrying errno, operation, group,
#     interface and a hint). Every KernelError is raised `from` the OSError it wraps.
from __future__ import annotations

import errno as _errno
from typing import Final

__all__ = [
    "AiomcastError",
    "AlreadyJoinedError",
    "BrokenEndpointError",
    "BusyError",
    "EndpointClosedError",
    "InterfaceError",
    "InvalidArgumentError",
    "InvalidGroupError",
    "InvalidPortError",
    "InvalidSocketError",
    "InvalidTTLError",
    "KernelError",
    "MembershipError",
    "NotJoinedError",
    "PayloadTooLargeError",
]


class AiomcastError(Exception):
    """Root of every exception that aiomcast raises on purpose."""


class InvalidArgumentError(AiomcastError, ValueError):
    """A value given to aiomcast was refused before it reached the kernel."""

    def __init__(self, message: str, *, value: object = None) -> None:
        super().__init__(message)
        self.value = value


class InvalidGroupError(InvalidArgumentError):
    """The value is not a usable multicast group address."""


class InvalidPortError(InvalidArgumentError):
    """The value is not a usable UDP port."""


class InvalidTTLError(InvalidArgumentError):
    """The value is not a TTL / hop limit in 0-255 or a known scope name."""


class InterfaceError(InvalidArgumentError):
    """The interface does not exist, cannot do multicast, or lacks an address of the family."""


class PayloadTooLargeError(InvalidArgumentError):
    """The payload is larger than one UDP datagram of the family can carry."""


class InvalidSocketError(InvalidArgumentError):
    """The socket given with ``sock=`` cannot carry multicast (not SOCK_DGRAM, wrong family)."""


class MembershipError(AiomcastError):
    """A join or leave contradicts the memberships the endpoint holds."""


class AlreadyJoinedError(MembershipError):
    """The endpoint is already a member of this group on this interface."""


class NotJoinedError(MembershipError):
    """The endpoint is not a member of this group on this interface."""


class EndpointClosedError(AiomcastError):
    """The endpoint was closed by its owner; it cannot be used any more."""


class BrokenEndpointError(AiomcastError):
    """The endpoint stopped working because of something outside (the socket broke)."""


class BusyError(AiomcastError):
    """Another task is already receiving from this endpoint."""


_HINTS: Final[dict[int, str]] = {
    _errno.ENODEV: (
        "no such interface, or no interface was given and the kernel has no route for the group "
        "(give interface=, or add a multicast route: 'ip route add 224.0.0.0/4 dev IF' for "
        "IPv4, 'ip -6 route add multicast ff00::/8 dev IF table local' for IPv6)"
    ),
    _errno.EADDRNOTAVAIL: (
        "the interface has no address of this family, or the socket is not a member of that "
        "group on that interface"
    ),
    _errno.ENOBUFS: (
        "membership limit reached: IPv4 allows net.ipv4.igmp_max_memberships joins per socket "
        "(default 20); IPv6 is bounded by net.core.optmem_max; raise the sysctl or use more sockets"
    ),
    _errno.EADDRINUSE: (
        "address in use: another socket holds the port without SO_REUSEADDR, or the membership "
        "already exists"
    ),
    _errno.EPERM: "not permitted: needs more privilege (CAP_NET_ADMIN) or a firewall refused it",
    _errno.EACCES: "permission denied: needs more privilege or a firewall refused it",
    _errno.ENETUNREACH: (
        "no route to the group: set an outgoing interface (interface=) or add a multicast route"
    ),
    _errno.ENOPROTOOPT: "this kernel does not support the option",
    _errno.EINVAL: "the kernel refused the value as invalid for this option or socket",
    _errno.EMSGSIZE: "the datagram is larger than the interface or the socket allows",
}


def show(value: object) -> str:
    """Return ``repr(value)`` for an error message, safe for any value.

    ``repr`` of an int with more than 4300 digits raises ValueError; such values are
    described by their size instead, so refusing them raises the library's own error.
    """
    try:
        return repr(value)
    except ValueError:
        if isinstance(value, int):
            return f"<int of {value.bit_length()} bits>"
        return f"<{type(value).__name__}>"


def hint_for(code: int | None) -> str:
    """Return a one-line hint for an errno seen on multicast sockets ('' when none is known)."""
    if code is None:
        return ""
    return _HINTS.get(code, "")


class KernelError(AiomcastError, OSError):
    """The kernel refused an operation; carries errno, operation, group, interface and a hint."""

    def __init__(
        self,
        code: int | None,
        *,
        operation: str,
        group: str | None = None,
        interface: str | None = None,
        detail: str | None = None,
    ) -> None:
        reason = detail if detail is not None else (_errno_text(code))
        hint = hint_for(code)
        parts = [f"{operation} failed"]
        if group is not None:
            parts.append(f"group {group}")
        if interface is not None:
            parts.append(f"interface {interface}")
        name = _errno.errorcode.get(code, "?") if code is not None else "?"
        message = f"{', '.join(parts)}: [{name}] {reason}"
        if hint:
            message += f" (hint: {hint})"
        super().__init__(code, message)
        self.operation = operation
        self.group = group
        self.interface = interface
        self.hint = hint

    def __str__(self) -> str:
        return str(self.strerror)


def _errno_text(code: int | None) -> str:
    import os

    return os.strerror(code) if code is not None else "unknown error"
