# Design: the send side's checks, pure: what send and send_many accept, and where they send,
# before anything reaches a transport. The hot path of send() checks its payload inline
# (Sender.send); everything else comes here, and every refusal names the value.
from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeGuard

from ._address import (
    AddressScope,
    Family,
    Group,
    GroupLike,
    check_payload,
    max_payload,
    validate_port,
)
from ._errors import InvalidArgumentError, InvalidGroupError, InvalidTTLError, show

__all__ = [
    "check_ipv6_host_scope",
    "check_iterable",
    "check_payloads",
    "destination_address",
    "unicast_address",
]

_BYTES_ONLY: Final = {bytes}


def check_iterable(payloads: object) -> None:
    """Refuse what is not an iterable of datagrams (bytes and str are one value, not many)."""
    if not isinstance(payloads, Iterable) or isinstance(payloads, bytes | bytearray | str):
        raise InvalidArgumentError(
            f"payloads must be an iterable of bytes-like datagrams, not {type(payloads).__name__}",
            value=type(payloads).__name__,
        )


def _only_bytes(
    payloads: list[Any] | tuple[Any, ...],
) -> TypeGuard[list[bytes] | tuple[bytes, ...]]:
    """True when every payload is exactly ``bytes`` (one C-level pass)."""
    return set(map(type, payloads)) == _BYTES_ONLY


def check_payloads(payloads: Iterable[object], family: Family) -> tuple[Sequence[bytes], int]:
    """The datagrams of ``payloads`` as bytes, and their one size when they share it (else 0).

    Raises:
        PayloadTooLargeError: a payload is larger than one datagram of ``family`` carries.
        InvalidArgumentError: a payload is not bytes-like.
    """
    limit = max_payload(family)
    # Fast path, the high-rate sender's case: a non-empty list or tuple of bytes, checked with
    # C-level passes (their types, their lengths) and used as they are; ``uniform`` is their
    # one size when they share it (the transport then skips its own look at the sizes).
    uniform = 0
    items: Sequence[bytes]
    if isinstance(payloads, list | tuple) and _only_bytes(payloads):
        items = payloads
        sizes = set(map(len, items))
        if max(sizes) > limit:
            items = [bytes(check_payload(p, family)) for p in items]  # raises, naming it
        if len(sizes) == 1:
            uniform = sizes.pop()
    else:
        # Anything else goes through the full check, which names what is wrong; bytes within
        # the limit are used as they are (no copy).
        items = [
            p if type(p) is bytes and len(p) <= limit else bytes(check_payload(p, family))
            for p in payloads
        ]
    return items, uniform


def check_ipv6_host_scope(group: str) -> None:
    """Refuse hop limit 0 to an IPv6 group wider than interface-local (InvalidTTLError)."""
    if Group(group).scope is not AddressScope.INTERFACE_LOCAL:
        raise InvalidTTLError(
            f"hop limit 0 (host scope) to {group}: Linux would transmit it on the "
            "interface anyway; use an interface-local group (ff01::/16, ff11::/16) for "
            "host-only traffic, or a hop limit of 1 or more",
            value=0,
        )


def destination_address(
    group: GroupLike | None,
    port: int | None,
    default: tuple[Group, int] | None,
    family: Family,
    zone_index: Callable[[str], int],
) -> tuple[Any, ...]:
    """The socket address to send to: ``group`` and ``port``, each defaulting to ``default``.

    ``zone_index`` gives the interface index of an IPv6 group's zone (``ff02::1%eth0``).

    Raises:
        InvalidArgumentError: a part is missing and there is no default.
        InvalidGroupError: not a group, or of the other family.
        InvalidPortError: not a port 1-65535.
    """
    if (group is None or port is None) and default is None:
        raise InvalidArgumentError(
            "this endpoint has no default destination: give group and port", value=None
        )
    if group is not None:
        target = Group(group)
    else:
        assert default is not None
        target = default[0]
    if port is not None:
        dport = validate_port(port, allow_zero=False)
    else:
        assert default is not None
        dport = default[1]
    if target.family is not family:
        raise InvalidGroupError(
            f"group {target} is {target.family.label} but the endpoint is {family.label}",
            value=str(target),
        )
    host = str(target.address)
    if family is Family.IPV6:
        scope_id = zone_index(target.zone) if target.zone is not None else 0
        return (host, dport, 0, scope_id)
    return (host, dport)


def unicast_address(
    address: object, port: object, family: Family, zone_index: Callable[[str], int]
) -> tuple[Any, ...]:
    """The socket address of a unicast peer: ``address`` (text or ipaddress) and ``port``.

    An IPv6 address may carry its zone (``fe80::1%eth0``, or an interface index), which
    ``zone_index`` turns into the scope id a link-local peer needs.

    Raises:
        InvalidArgumentError: not an address of the family, a multicast address (send() is
            for groups), or the unspecified address.
        InvalidPortError: not a port 1-65535.
        InterfaceError: the zone names no interface.
    """
    text = (
        str(address)
        if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)
        else address
    )
    if not isinstance(text, str):
        raise InvalidArgumentError(
            f"address must be an IP address as text, not {type(address).__name__}",
            value=show(address),
        )
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgumentError(f"{show(text)} is not an IP address", value=text) from None
    if parsed.version != (4 if family is Family.IPV4 else 6):
        raise InvalidArgumentError(
            f"{show(text)} is IPv{parsed.version} but the endpoint is {family.label}", value=text
        )
    if parsed.is_multicast:
        raise InvalidArgumentError(
            f"{show(text)} is a multicast group: send_to is for unicast peers, send() for groups",
            value=text,
        )
    if parsed.is_unspecified:
        raise InvalidArgumentError(f"{show(text)} is the unspecified address", value=text)
    dport = validate_port(port, allow_zero=False)
    if isinstance(parsed, ipaddress.IPv6Address):
        zone = parsed.scope_id
        host = str(parsed).split("%", 1)[0]
        return (host, dport, 0, zone_index(zone) if zone else 0)
    return (str(parsed), dport)
