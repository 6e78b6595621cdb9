# Design: one root exception, AiomcastError, and subclasses by meaning, after anyio and httpcore:
#   - bad input refused at the boundary (InvalidArgumentError and its children, which are also
#     ValueError so that code catching ValueError keeps working);
#   - a join or leave that contradicts the endpoint's memberships (MembershipError);
#   - "you closed it" (EndpointClosedError) versus "something outside broke it"
#     (BrokenEndpointError), also anyio's ClosedResourceError and BrokenResourceError;
#   - two tasks reading one endpoint (BusyError, also anyio's BusyResourceError);
#   - the kernel said no (KernelError, also an OSError, carrying errno, operation, group,
#     interface and a hint). Every KernelError is raised `from` the OSError it wraps.
from __future__ import annotations

import errno as _errno
from typing import Final

import anyio

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
    "InvalidSourceError",
    "InvalidTTLError",
    "KernelError",
    "MembershipError",
    "NotJoinedError",
    "PayloadTooLargeError",
    "SourceFilterError",
    "TransportOptionError",
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


class InvalidSourceError(InvalidArgumentError):
    """The value is not a usable source address (a unicast address of the endpoint's family)."""


class InvalidSocketError(InvalidArgumentError):
    """The socket given with ``sock=`` cannot carry multicast (not SOCK_DGRAM, wrong family)."""


class TransportOptionError(InvalidArgumentError):
    """The chosen transport cannot honour an option given with it (both are named)."""


class MembershipError(AiomcastError):
    """A join or leave contradicts the memberships the endpoint holds."""


class AlreadyJoinedError(MembershipError):
    """The endpoint is already a member of this group on this interface."""


class NotJoinedError(MembershipError):
    """The endpoint is not a member of this group on this interface."""


class SourceFilterError(MembershipError):
    """A source join, block or unblock contradicts the group's filter mode or blocked sources."""


class EndpointClosedError(AiomcastError, anyio.ClosedResourceError):
    """The endpoint was closed by its owner; it cannot be used any more."""


class BrokenEndpointError(AiomcastError, anyio.BrokenResourceError):
    """The endpoint stopped working because of something outside (the socket broke)."""


class BusyError(AiomcastError, anyio.BusyResourceError):
    """Another task is already receiving from this endpoint."""

    def __init__(self, message: str) -> None:
        # anyio's BusyResourceError takes an action and words the message itself.
        Exception.__init__(self, message)


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
        "no buffer space: for a join, the socket's membership limit (IPv4: "
        "net.ipv4.igmp_max_memberships, default 20; IPv6: net.core.optmem_max)"
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


# Joins have limits per socket, measured on Linux 6.18 (tests/sockets/test_errors.py): IPv4 counts
# memberships against net.ipv4.igmp_max_memberships (ENOBUFS on the 21st by default) and their
# memory (48 bytes each) against net.core.optmem_max (ENOBUFS too); IPv6 has no count, only
# the memory (56 bytes each) against net.core.optmem_max, and says ENOMEM.
_JOIN_HINTS: Final[dict[tuple[int, int], str]] = {
    (4, _errno.ENOBUFS): (
        "membership limit reached: an IPv4 socket may hold net.ipv4.igmp_max_memberships "
        "memberships (default 20; their memory also counts against net.core.optmem_max); "
        "raise it (sysctl -w net.ipv4.igmp_max_memberships=N) or spread the groups over more "
        "sockets"
    ),
    (6, _errno.ENOMEM): (
        "membership limit reached: an IPv6 socket has no membership count, but each "
        "membership takes 56 bytes of the socket's option memory, net.core.optmem_max "
        "(default 131072: about 2300 memberships); raise it (sysctl -w net.core.optmem_max=N) "
        "or spread the groups over more sockets"
    ),
    (6, _errno.ENOBUFS): (
        "membership limit reached: the socket's option memory, net.core.optmem_max, is used "
        "up; raise it or spread the groups over more sockets"
    ),
}


def hint_for(code: int | None, operation: str | None = None, group: str | None = None) -> str:
    """Return a one-line hint for an errno seen on multicast sockets ('' when none is known).

    For a join (``operation`` starting with "join") the hint names the family's limit on
    memberships per socket: the sysctl that sets it.
    """
    if code is None:
        return ""
    if operation is not None and operation.startswith("join") and group is not None:
        hint = _JOIN_HINTS.get((6 if ":" in group else 4, code))
        if hint is not None:
            return hint
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
        hint: str | None = None,
    ) -> None:
        reason = detail if detail is not None else (_errno_text(code))
        hint = hint if hint is not None else hint_for(code, operation, group)
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

    @classmethod
    def from_os_error(
        cls,
        exc: OSError,
        *,
        operation: str,
        group: str | None = None,
        interface: str | None = None,
        hint: str | None = None,
    ) -> KernelError:
        """The KernelError for an OSError of ``operation``: the one place that maps errnos.

        Raise it ``from exc``.
        """
        return cls(
            exc.errno,
            operation=operation,
            group=group,
            interface=interface,
            detail=exc.strerror,
            hint=hint,
        )


def _errno_text(code: int | None) -> str:
    import os

    return os.strerror(code) if code is not None else "unknown error"
