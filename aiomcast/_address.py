# Design: the pure address layer. Groups, address scopes, TTL scopes, ports and payload limits
# are plain values checked by plain functions; nothing here opens a socket or reads the host
# (h11's "contains no IO code whatsoever"). Every refusal names the value and the allowed range.
from __future__ import annotations

import enum
import ipaddress
import socket
from typing import Final, TypeAlias

from ._errors import (
    InvalidArgumentError,
    InvalidGroupError,
    InvalidPortError,
    InvalidTTLError,
    PayloadTooLargeError,
    show,
)

__all__ = [
    "DEFAULT_LOOPBACK",
    "DEFAULT_TTL",
    "MAX_PAYLOAD_IPV4",
    "MAX_PAYLOAD_IPV6",
    "AddressScope",
    "Family",
    "Group",
    "GroupLike",
    "TTLScope",
    "max_payload",
    "parse_family",
    "scope_of_ttl",
    "validate_port",
    "validate_ttl",
]

#: Default TTL / hop limit of multicast datagrams (S7: they never leave the subnet).
DEFAULT_TTL: Final = 1
#: Default of IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP (S14: own sends are looped back).
DEFAULT_LOOPBACK: Final = True
#: Largest UDP payload in one IPv4 datagram: 65535 - 20 (IP header) - 8 (UDP header).
MAX_PAYLOAD_IPV4: Final = 65507
#: Largest UDP payload in one IPv6 datagram without jumbograms: 65535 - 8 (UDP header).
MAX_PAYLOAD_IPV6: Final = 65527

_IPV4_MULTICAST: Final = ipaddress.IPv4Network("224.0.0.0/4")
_IPV4_LOCAL_CONTROL: Final = ipaddress.IPv4Network("224.0.0.0/24")
_IPV4_SSM: Final = ipaddress.IPv4Network("232.0.0.0/8")
_IPV4_ADMIN: Final = ipaddress.IPv4Network("239.0.0.0/8")
_IPV4_ADMIN_LOCAL: Final = ipaddress.IPv4Network("239.255.0.0/16")
_IPV4_ADMIN_ORG: Final = ipaddress.IPv4Network("239.192.0.0/14")
_IPV6_MULTICAST: Final = ipaddress.IPv6Network("ff00::/8")


class Family(enum.IntEnum):
    """Address family of a group or endpoint (values are the socket module's)."""

    IPV4 = socket.AF_INET
    IPV6 = socket.AF_INET6

    @property
    def label(self) -> str:
        """Return ``"IPv4"`` or ``"IPv6"``."""
        return "IPv4" if self is Family.IPV4 else "IPv6"


def parse_family(value: object) -> Family:
    """Turn ``4``, ``6``, ``"ipv4"``, ``"ipv6"``, ``AF_INET`` or ``AF_INET6`` into a Family."""
    if isinstance(value, Family):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("4", "ipv4", "inet", "v4"):
            return Family.IPV4
        if text in ("6", "ipv6", "inet6", "v6"):
            return Family.IPV6
    elif isinstance(value, int) and not isinstance(value, bool):
        if value in (4, socket.AF_INET):
            return Family.IPV4
        if value in (6, socket.AF_INET6):
            return Family.IPV6
    raise InvalidArgumentError(
        f"family {show(value)} is not one of 'ipv4', 'ipv6', 4, 6, AF_INET, AF_INET6", value=value
    )


class AddressScope(enum.IntEnum):
    """Reach of a group address: RFC 4291 scope values (IPv6), RFC 2365 ranges mapped (IPv4)."""

    INTERFACE_LOCAL = 0x1
    LINK_LOCAL = 0x2
    REALM_LOCAL = 0x3
    ADMIN_LOCAL = 0x4
    SITE_LOCAL = 0x5
    ORGANIZATION_LOCAL = 0x8
    GLOBAL = 0xE


class TTLScope(enum.IntEnum):
    """Conventional initial TTLs and the reach routers give them (S9).

    "Site" and "region" are not strictly defined and may be split locally.
    """

    HOST = 0
    SUBNET = 1
    SITE = 32
    REGION = 64
    CONTINENT = 128
    UNRESTRICTED = 255


def validate_ttl(value: object) -> int:
    """Return ``value`` as a TTL / hop limit in 0-255 (S7), accepting TTLScope names.

    Raises:
        InvalidTTLError: the value is not an integer in 0-255 nor a scope name.
    """
    if isinstance(value, TTLScope):
        return int(value)
    if isinstance(value, str):
        name = value.strip().upper()
        if name in TTLScope.__members__:
            return int(TTLScope[name])
        try:
            value = int(value, 10)
        except ValueError:
            raise InvalidTTLError(
                f"TTL {show(value)} is not an integer 0-255 nor one of the scopes "
                f"{', '.join(m.lower() for m in TTLScope.__members__)}",
                value=value,
            ) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTTLError(
            f"TTL {show(value)} is not an integer 0-255 (got {type(value).__name__})", value=value
        )
    if not 0 <= value <= 255:
        raise InvalidTTLError(f"TTL {show(value)} is outside 0-255", value=value)
    return value


def scope_of_ttl(ttl: int) -> TTLScope:
    """Return the S9 scope an initial TTL reaches across threshold-enforcing routers."""
    ttl = validate_ttl(ttl)
    for scope in TTLScope:
        if ttl <= scope:
            return scope
    raise AssertionError("unreachable: 255 is the last scope")  # pragma: no cover


def validate_port(value: object, *, allow_zero: bool) -> int:
    """Return ``value`` as a UDP port; 0 (any port) only where ``allow_zero`` is true.

    Raises:
        InvalidPortError: not an integer in range.
    """
    low = 0 if allow_zero else 1
    if isinstance(value, str):
        try:
            value = int(value, 10)
        except ValueError:
            raise InvalidPortError(
                f"port {show(value)} is not an integer {low}-65535", value=value
            ) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPortError(
            f"port {show(value)} is not an integer {low}-65535 (got {type(value).__name__})",
            value=value,
        )
    if not low <= value <= 65535:
        why = " (a sender needs a destination port)" if value == 0 else ""
        raise InvalidPortError(f"port {show(value)} is outside {low}-65535{why}", value=value)
    return value


def max_payload(family: object) -> int:
    """Return the largest UDP payload one datagram of ``family`` carries.

    Raises:
        InvalidArgumentError: ``family`` is not a family (see parse_family).
    """
    return MAX_PAYLOAD_IPV4 if parse_family(family) is Family.IPV4 else MAX_PAYLOAD_IPV6


def check_payload(payload: object, family: Family) -> bytes | bytearray | memoryview:
    """Return ``payload`` if it is a bytes-like datagram that fits one UDP datagram of the family.

    Raises:
        InvalidArgumentError: not bytes-like.
        PayloadTooLargeError: too large for one datagram.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise InvalidArgumentError(
            f"payload must be bytes, bytearray or memoryview, not {type(payload).__name__}"
            + (" (encode text first, e.g. text.encode())" if isinstance(payload, str) else ""),
            value=type(payload).__name__,
        )
    try:
        size = payload.nbytes if isinstance(payload, memoryview) else len(payload)
    except ValueError:  # a released memoryview
        raise InvalidArgumentError("payload is a released memoryview", value=None) from None
    limit = max_payload(family)
    if size > limit:
        raise PayloadTooLargeError(
            f"payload of {size} bytes exceeds the {family.label} UDP limit of {limit} bytes",
            value=size,
        )
    return payload


IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


class Group:
    """A validated multicast group address (S2).

    IPv4 groups are 224.0.0.1-239.255.255.255; IPv6 groups are in ff00::/8 with the flag and
    scope fields of RFC 4291 decoded. An IPv6 zone (``ff02::1%eth0``) is kept in ``zone``.
    Groups are immutable, hashable and compare by address and zone.

    Raises:
        InvalidGroupError: the value is not a multicast group address.
    """

    __slots__ = ("_address", "_zone")

    _address: IPAddress
    _zone: str | None

    def __init__(self, value: GroupLike) -> None:
        if isinstance(value, Group):
            self._address, self._zone = value._address, value._zone
            return
        zone: str | None = None
        address: IPAddress
        if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
            address = value
        elif isinstance(value, str):
            text = value.strip()
            if "%" in text:
                text, zone = text.split("%", 1)
                if not zone:
                    raise InvalidGroupError(f"group {value!r} has an empty zone", value=value)
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise InvalidGroupError(
                    f"group {value!r} is not an IP address; multicast groups are "
                    "224.0.0.1-239.255.255.255 (IPv4) or ff00::/8 (IPv6)",
                    value=value,
                ) from None
        else:
            raise InvalidGroupError(
                f"group {show(value)} must be a string or an ipaddress object, "
                f"not {type(value).__name__}",
                value=value,
            )
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            zone = zone or address.scope_id
            address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv4Address):
            if zone is not None:
                raise InvalidGroupError(
                    f"group {value!r}: IPv4 addresses have no zone", value=value
                )
            if address not in _IPV4_MULTICAST:
                raise InvalidGroupError(
                    f"group {value!r} is not an IPv4 multicast address (224.0.0.1-239.255.255.255)",
                    value=value,
                )
            if address == _IPV4_MULTICAST.network_address:
                raise InvalidGroupError(
                    f"group {value!r} is the reserved base address 224.0.0.0, not a group "
                    "(224.0.0.1-239.255.255.255)",
                    value=value,
                )
        else:
            if address not in _IPV6_MULTICAST:
                raise InvalidGroupError(
                    f"group {value!r} is not an IPv6 multicast address (ff00::/8)", value=value
                )
            scope = address.packed[1] & 0x0F
            if scope in (0x0, 0xF):
                raise InvalidGroupError(
                    f"group {value!r} has the reserved scope value {scope:#x} (RFC 4291)",
                    value=value,
                )
        self._address = address
        self._zone = zone

    @property
    def address(self) -> IPAddress:
        """The group as an ``ipaddress`` object (without zone)."""
        return self._address

    @property
    def zone(self) -> str | None:
        """The IPv6 zone (interface name or index) given with ``%``, else None."""
        return self._zone

    @property
    def family(self) -> Family:
        """Family.IPV4 or Family.IPV6."""
        return Family.IPV4 if self._address.version == 4 else Family.IPV6

    @property
    def packed(self) -> bytes:
        """The 4 or 16 address bytes in network order."""
        return self._address.packed

    @property
    def scope(self) -> AddressScope:
        """How far the group address reaches.

        IPv6: the scope field. IPv4 (RFC 2365/5771): 224.0.0.0/24 link-local,
        239.255.0.0/16 site-local, 239.192.0.0/14 organization-local, the rest of
        239.0.0.0/8 admin-local, everything else global.
        """
        addr = self._address
        if isinstance(addr, ipaddress.IPv6Address):
            return _scope_from_raw(addr.packed[1] & 0x0F)
        if addr in _IPV4_LOCAL_CONTROL:
            return AddressScope.LINK_LOCAL
        if addr in _IPV4_ADMIN_LOCAL:
            return AddressScope.SITE_LOCAL
        if addr in _IPV4_ADMIN_ORG:
            return AddressScope.ORGANIZATION_LOCAL
        if addr in _IPV4_ADMIN:
            return AddressScope.ADMIN_LOCAL
        return AddressScope.GLOBAL

    @property
    def scope_value(self) -> int:
        """The raw 4-bit scope (IPv6), or the mapped AddressScope value (IPv4)."""
        if isinstance(self._address, ipaddress.IPv6Address):
            return self._address.packed[1] & 0x0F
        return int(self.scope)

    @property
    def flags(self) -> int:
        """The 4-bit flags field of an IPv6 group (0 for IPv4)."""
        if isinstance(self._address, ipaddress.IPv6Address):
            return self._address.packed[1] >> 4
        return 0

    @property
    def is_transient(self) -> bool:
        """Whether the IPv6 T flag is set (a dynamically assigned, not well-known, group)."""
        return bool(self.flags & 0x1)

    @property
    def is_prefix_based(self) -> bool:
        """Whether the IPv6 P flag is set (a unicast-prefix-based group, RFC 3306)."""
        return bool(self.flags & 0x2)

    @property
    def has_embedded_rp(self) -> bool:
        """Whether the IPv6 R flag is set (the rendezvous point address is embedded, RFC 3956)."""
        return bool(self.flags & 0x4)

    @property
    def is_source_specific(self) -> bool:
        """True for the SSM ranges 232.0.0.0/8 and ff3x::/32 (RFC 4607)."""
        addr = self._address
        if isinstance(addr, ipaddress.IPv4Address):
            return addr in _IPV4_SSM
        packed = addr.packed
        return (packed[1] >> 4) == 0x3 and packed[2:4] == b"\0\0"  # ff3x::/32

    @property
    def is_link_local(self) -> bool:
        """Whether routers never forward the group (S11); 224.0.0.0/24, ff01::/16, ff02::/16."""
        return self.scope <= AddressScope.LINK_LOCAL

    @property
    def forwarded_by_routers(self) -> bool:
        """False for groups that routers never forward whatever the TTL (S11)."""
        return not self.is_link_local

    def __str__(self) -> str:
        return f"{self._address}%{self._zone}" if self._zone else str(self._address)

    def __repr__(self) -> str:
        return f"Group({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Group):
            return self._address == other._address and self._zone == other._zone
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._address, self._zone))

    def __reduce__(self) -> tuple[type[Group], tuple[str]]:
        return (Group, (str(self),))


def _scope_from_raw(value: int) -> AddressScope:
    # An assigned scope maps to itself; an unassigned one (RFC 7346: 6, 7, 9-13) to the next
    # assigned scope above it, since reach is ordered by value.
    for scope in AddressScope:
        if value <= scope:
            return scope
    return AddressScope.GLOBAL  # pragma: no cover


GroupLike: TypeAlias = "Group | str | ipaddress.IPv4Address | ipaddress.IPv6Address"
