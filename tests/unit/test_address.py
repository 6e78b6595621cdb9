"""The pure address layer from tables: groups, scopes, TTLs, ports, payload sizes, families.

Like h11's SIMPLE_CASES, each module-level table is the specification; the tests only walk it.
Seed facts are named as ``seed Sn``.
"""

from __future__ import annotations

import ipaddress
import pickle
import re
import socket

import pytest

import aiomcast
from aiomcast import (
    AddressScope,
    Family,
    Group,
    InvalidArgumentError,
    InvalidGroupError,
    InvalidPortError,
    InvalidTTLError,
    PayloadTooLargeError,
    TTLScope,
)
from aiomcast._address import check_payload


def assert_refusal(exc: BaseException, kind: type[InvalidArgumentError], value: object) -> None:
    """The refusal is exactly ``kind``, a ValueError and an AiomcastError, naming the value."""
    assert type(exc) is kind
    assert isinstance(exc, ValueError)
    assert isinstance(exc, aiomcast.AiomcastError)
    needle = repr(value) if value == "" else str(value)
    assert needle in str(exc), f"{needle!r} not in {str(exc)!r}"


# --------------------------------------------------------------------------------------------
# Groups: which addresses are groups (seed S2, S6)

# (text, family, str(Group(text)))
VALID_GROUPS: list[tuple[str, Family, str]] = [
    ("224.0.0.1", Family.IPV4, "224.0.0.1"),  # first IPv4 group
    ("224.0.0.255", Family.IPV4, "224.0.0.255"),
    ("224.0.1.1", Family.IPV4, "224.0.1.1"),
    ("232.1.2.3", Family.IPV4, "232.1.2.3"),
    ("239.1.2.3", Family.IPV4, "239.1.2.3"),
    ("239.255.255.255", Family.IPV4, "239.255.255.255"),  # last IPv4 group
    (" 239.1.2.3 ", Family.IPV4, "239.1.2.3"),  # surrounding blanks are ignored
    ("ff01::1", Family.IPV6, "ff01::1"),
    ("ff02::1", Family.IPV6, "ff02::1"),
    ("FF02:0:0:0:0:0:0:FB", Family.IPV6, "ff02::fb"),  # normalised
    ("ff05::1:3", Family.IPV6, "ff05::1:3"),
    ("ff0e::101", Family.IPV6, "ff0e::101"),
    ("ff12::1:2:3", Family.IPV6, "ff12::1:2:3"),
    ("ff3e::8000:1", Family.IPV6, "ff3e::8000:1"),
    ("fff2::1", Family.IPV6, "fff2::1"),  # every flag bit set: flags are not checked
    ("ff02::1%lo", Family.IPV6, "ff02::1%lo"),
    ("ff02::1%2", Family.IPV6, "ff02::1%2"),
]

# (value, why) - every one must raise InvalidGroupError naming the value.
INVALID_GROUPS: list[tuple[object, str]] = [
    ("10.0.0.1", "unicast"),
    ("127.0.0.1", "loopback unicast"),
    ("224.0.0.0", "reserved base address of 224.0.0.0/4"),
    ("223.255.255.255", "just below 224.0.0.0/4"),
    ("240.0.0.1", "class E, above 239.255.255.255"),
    ("255.255.255.255", "broadcast"),
    ("ff02::1:zz", "not hexadecimal"),
    ("not-an-ip", "not an address"),
    ("", "empty"),
    ("   ", "blank"),
    ("ff00::1", "reserved scope 0 (RFC 4291)"),
    ("ff10::1", "reserved scope 0 with the T flag"),
    ("ff0f::1", "reserved scope F (RFC 4291)"),
    ("ff1f::1", "reserved scope F with the T flag"),
    ("fe80::1", "link-local unicast"),
    ("::1", "IPv6 loopback"),
    ("::ffff:224.0.0.1", "IPv4-mapped: an IPv6 address outside ff00::/8"),
    ("ff02::1%", "empty zone"),
    ("239.1.2.3%lo", "IPv4 addresses have no zone"),
    ("239.1.2", "too few octets"),
    ("239.1.2.3.4", "too many octets"),
    (None, "not a string"),
    (3.5, "not a string"),
    (b"bytes", "bytes are not text"),
    (0xEFFFFFFF, "an integer, even that of 239.255.255.255"),
    (ipaddress.IPv4Address("10.0.0.1"), "unicast ipaddress object"),
    (ipaddress.IPv6Address("2001:db8::1"), "unicast ipaddress object"),
]


@pytest.mark.parametrize(("text", "family", "shown"), VALID_GROUPS)
def test_group_accepts(text: str, family: Family, shown: str) -> None:
    # seed S2: IPv4 groups are 224.0.0.1-239.255.255.255, IPv6 groups are ff00::/8.
    # seed S6: these are the destinations a sender gives to sendto.
    group = Group(text)
    assert group.family is family
    assert str(group) == shown
    assert len(group.packed) == (4 if family is Family.IPV4 else 16)
    assert group.packed == group.address.packed


@pytest.mark.parametrize(("value", "why"), INVALID_GROUPS)
def test_group_refuses(value: object, why: str) -> None:
    # seed S2: anything outside 224.0.0.1-239.255.255.255 and ff00::/8 is not a group.
    with pytest.raises(InvalidGroupError) as info:
        Group(value)  # type: ignore[arg-type]
    assert_refusal(info.value, InvalidGroupError, value)
    assert info.value.value == value


def test_group_bounds_match_the_socket_module_constants() -> None:
    # seed S2, S11: the C headers' INADDR_UNSPEC_GROUP (224.0.0.0, not a group),
    # INADDR_ALLHOSTS_GROUP (224.0.0.1, the first group) and INADDR_MAX_LOCAL_GROUP
    # (224.0.0.255, the last never-forwarded group).
    with pytest.raises(InvalidGroupError):
        Group(str(ipaddress.IPv4Address(socket.INADDR_UNSPEC_GROUP)))
    first = Group(str(ipaddress.IPv4Address(socket.INADDR_ALLHOSTS_GROUP)))
    last_local = Group(str(ipaddress.IPv4Address(socket.INADDR_MAX_LOCAL_GROUP)))
    assert str(first) == "224.0.0.1"
    assert first.is_link_local
    assert last_local.is_link_local
    assert not Group(str(ipaddress.IPv4Address(socket.INADDR_MAX_LOCAL_GROUP + 1))).is_link_local


# --------------------------------------------------------------------------------------------
# IPv6 scope and flag fields (RFC 4291, RFC 7346)

# (group, scope, raw scope field)
IPV6_SCOPES: list[tuple[str, AddressScope, int]] = [
    ("ff01::1", AddressScope.INTERFACE_LOCAL, 0x1),
    ("ff02::1", AddressScope.LINK_LOCAL, 0x2),
    ("ff03::1", AddressScope.REALM_LOCAL, 0x3),
    ("ff04::1", AddressScope.ADMIN_LOCAL, 0x4),
    ("ff05::1", AddressScope.SITE_LOCAL, 0x5),
    # unassigned scopes map upward, to the next assigned scope
    ("ff06::1", AddressScope.ORGANIZATION_LOCAL, 0x6),
    ("ff07::1", AddressScope.ORGANIZATION_LOCAL, 0x7),
    ("ff08::1", AddressScope.ORGANIZATION_LOCAL, 0x8),
    ("ff09::1", AddressScope.GLOBAL, 0x9),
    ("ff0a::1", AddressScope.GLOBAL, 0xA),
    ("ff0b::1", AddressScope.GLOBAL, 0xB),
    ("ff0c::1", AddressScope.GLOBAL, 0xC),
    ("ff0d::1", AddressScope.GLOBAL, 0xD),
    ("ff0e::1", AddressScope.GLOBAL, 0xE),
    # the flags do not change the scope
    ("ff15::1", AddressScope.SITE_LOCAL, 0x5),
    ("ff3e::1", AddressScope.GLOBAL, 0xE),
    ("ff72::1", AddressScope.LINK_LOCAL, 0x2),
]


@pytest.mark.parametrize(("text", "scope", "raw"), IPV6_SCOPES)
def test_ipv6_scope_field(text: str, scope: AddressScope, raw: int) -> None:
    group = Group(text)
    assert group.scope is scope
    assert group.scope_value == raw


def test_address_scope_values_are_rfc_4291() -> None:
    assert {s.name: s.value for s in AddressScope} == {
        "INTERFACE_LOCAL": 0x1,
        "LINK_LOCAL": 0x2,
        "REALM_LOCAL": 0x3,
        "ADMIN_LOCAL": 0x4,
        "SITE_LOCAL": 0x5,
        "ORGANIZATION_LOCAL": 0x8,
        "GLOBAL": 0xE,
    }


# (group, flags, transient T, prefix-based P, embedded RP R)
IPV6_FLAGS: list[tuple[str, int, bool, bool, bool]] = [
    ("ff02::1", 0x0, False, False, False),
    ("ff12::1", 0x1, True, False, False),
    ("ff32::1", 0x3, True, True, False),
    ("ff72::1", 0x7, True, True, True),
    ("ff42::1", 0x4, False, False, True),
    ("ff22::1", 0x2, False, True, False),
    ("fff2::1", 0xF, True, True, True),
    ("239.1.2.3", 0x0, False, False, False),  # IPv4 has no flags
]


@pytest.mark.parametrize(("text", "flags", "t", "p", "r"), IPV6_FLAGS)
def test_ipv6_flags(text: str, flags: int, t: bool, p: bool, r: bool) -> None:
    group = Group(text)
    assert group.flags == flags
    assert (group.is_transient, group.is_prefix_based, group.has_embedded_rp) == (t, p, r)


# (group, source-specific): 232.0.0.0/8 and ff3x::/32 (RFC 4607)
SOURCE_SPECIFIC: list[tuple[str, bool]] = [
    ("232.0.0.1", True),
    ("232.255.255.255", True),
    ("231.255.255.255", False),
    ("233.0.0.1", False),
    ("239.1.2.3", False),
    ("224.0.0.1", False),
    ("ff32::8000:1", True),
    ("ff3e::1234", True),
    ("ff35::1", True),
    ("ff3e:0:0:0:0:1::1", True),  # inside ff3x::/32 (bytes 2-3 zero), outside ff3x::/96
    ("ff3e:0:ffff::1", True),  # inside ff3x::/32
    ("ff3e:30:2001:db8::1", False),  # P flag with a 48-bit prefix: outside ff3x::/32
    ("ff3e:1::1", False),  # bytes 2-3 not zero: outside ff3x::/32
    ("ff1e::1", False),  # T only
    ("ff7e::1", False),  # embedded RP
    ("ff0e::1", False),
]


@pytest.mark.parametrize(("text", "ssm"), SOURCE_SPECIFIC)
def test_source_specific_ranges(text: str, ssm: bool) -> None:
    assert Group(text).is_source_specific is ssm


# --------------------------------------------------------------------------------------------
# IPv4 scopes (RFC 2365 / RFC 5771 mapped onto the IPv6 scope values) and router forwarding

# (group, scope, link-local i.e. never forwarded by routers)
IPV4_SCOPES: list[tuple[str, AddressScope, bool]] = [
    ("224.0.0.1", AddressScope.LINK_LOCAL, True),  # all hosts
    ("224.0.0.22", AddressScope.LINK_LOCAL, True),  # IGMPv3 reports
    ("224.0.0.251", AddressScope.LINK_LOCAL, True),  # mDNS
    ("224.0.0.255", AddressScope.LINK_LOCAL, True),
    ("224.0.1.0", AddressScope.GLOBAL, False),
    ("224.0.1.1", AddressScope.GLOBAL, False),  # NTP
    ("225.1.2.3", AddressScope.GLOBAL, False),
    ("232.1.2.3", AddressScope.GLOBAL, False),
    ("238.255.255.255", AddressScope.GLOBAL, False),
    ("239.0.0.1", AddressScope.ADMIN_LOCAL, False),
    ("239.1.2.3", AddressScope.ADMIN_LOCAL, False),
    ("239.191.255.255", AddressScope.ADMIN_LOCAL, False),
    ("239.192.0.0", AddressScope.ORGANIZATION_LOCAL, False),
    ("239.195.255.255", AddressScope.ORGANIZATION_LOCAL, False),
    ("239.196.0.0", AddressScope.ADMIN_LOCAL, False),
    ("239.254.255.255", AddressScope.ADMIN_LOCAL, False),
    ("239.255.0.0", AddressScope.SITE_LOCAL, False),
    ("239.255.255.250", AddressScope.SITE_LOCAL, False),  # SSDP
    ("239.255.255.255", AddressScope.SITE_LOCAL, False),
]


@pytest.mark.parametrize(("text", "scope", "link_local"), IPV4_SCOPES)
def test_ipv4_scope_mapping(text: str, scope: AddressScope, link_local: bool) -> None:
    # seed S11: routers never forward 224.0.0.0-224.0.0.255, whatever the TTL.
    group = Group(text)
    assert group.scope is scope
    assert group.scope_value == int(scope)
    assert group.is_link_local is link_local
    assert group.forwarded_by_routers is (not link_local)


# (group, never forwarded by routers)
IPV6_FORWARDING: list[tuple[str, bool]] = [
    ("ff01::1", True),  # interface-local
    ("ff02::1", True),  # link-local
    ("ff02::1:ff00:1", True),  # solicited-node
    ("ff12::1:2:3", True),
    ("ff03::1", False),  # realm-local
    ("ff05::1", False),  # site-local
    ("ff08::1", False),
    ("ff0e::1", False),
]


@pytest.mark.parametrize(("text", "link_local"), IPV6_FORWARDING)
def test_ipv6_forwarding(text: str, link_local: bool) -> None:
    # seed S11 (IPv6 counterpart): link-scope groups stay on the link.
    group = Group(text)
    assert group.is_link_local is link_local
    assert group.forwarded_by_routers is (not link_local)


# --------------------------------------------------------------------------------------------
# Zones, identity, pickling

# (value given, address, zone, str)
ZONES: list[tuple[object, str, str | None, str]] = [
    ("ff02::1%lo", "ff02::1", "lo", "ff02::1%lo"),
    ("ff02::1%eth0", "ff02::1", "eth0", "ff02::1%eth0"),
    ("ff02::1%7", "ff02::1", "7", "ff02::1%7"),
    ("ff02::1", "ff02::1", None, "ff02::1"),
    (" ff12::1:2:3%veth0 ", "ff12::1:2:3", "veth0", "ff12::1:2:3%veth0"),
    (ipaddress.IPv6Address("ff02::fb%eth1"), "ff02::fb", "eth1", "ff02::fb%eth1"),
    (ipaddress.IPv6Address("ff02::fb"), "ff02::fb", None, "ff02::fb"),
    (ipaddress.IPv4Address("239.1.2.3"), "239.1.2.3", None, "239.1.2.3"),
]


@pytest.mark.parametrize(("value", "address", "zone", "shown"), ZONES)
def test_zone(value: object, address: str, zone: str | None, shown: str) -> None:
    group = Group(value)  # type: ignore[arg-type]
    assert group.zone == zone
    assert str(group.address) == address
    assert "%" not in str(group.address)  # the address itself carries no zone
    assert str(group) == shown


ROUND_TRIP: list[str] = [
    "224.0.0.1",
    "239.255.255.255",
    "ff02::1",
    "ff02::1%lo",
    "ff3e::8000:1",
    "ff12::1:2:3%veth0",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_group_round_trips(text: str) -> None:
    group = Group(text)
    assert Group(str(group)) == group
    assert Group(group) == group
    assert Group(group).zone == group.zone
    assert repr(group) == f"Group({text!r})"
    assert eval(repr(group), {"Group": Group}) == group
    copy = pickle.loads(pickle.dumps(group))
    assert copy == group
    assert copy.zone == group.zone
    assert hash(copy) == hash(group)


# (a, b, equal)
EQUALITY: list[tuple[object, object, bool]] = [
    ("239.1.2.3", "239.1.2.3", True),
    ("239.1.2.3", ipaddress.IPv4Address("239.1.2.3"), True),
    ("FF02::1", "ff02:0::1", True),
    ("ff02::1%lo", "ff02::1%lo", True),
    ("ff02::1%lo", ipaddress.IPv6Address("ff02::1%lo"), True),
    ("ff02::1", "ff02::1%lo", False),  # a zone makes a different group
    ("ff02::1%lo", "ff02::1%eth0", False),
    ("239.1.2.3", "239.1.2.4", False),
    ("ff02::1", "ff05::1", False),
]


@pytest.mark.parametrize(("a", "b", "equal"), EQUALITY)
def test_group_equality_and_hash(a: object, b: object, equal: bool) -> None:
    ga, gb = Group(a), Group(b)  # type: ignore[arg-type]
    assert (ga == gb) is equal
    assert (ga != gb) is (not equal)
    if equal:
        assert hash(ga) == hash(gb)
        assert len({ga, gb}) == 1


def test_group_is_not_equal_to_its_text() -> None:
    group = Group("239.1.2.3")
    assert group != "239.1.2.3"
    assert group != ipaddress.IPv4Address("239.1.2.3")
    assert group.__eq__("239.1.2.3") is NotImplemented


def test_group_is_immutable() -> None:
    group = Group("239.1.2.3")
    with pytest.raises(AttributeError):
        group.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        group.address = ipaddress.IPv4Address("239.1.2.4")  # type: ignore[misc]
    assert str(group) == "239.1.2.3"


# --------------------------------------------------------------------------------------------
# TTL scopes and TTL validation (seed S7, S9)


def test_ttl_scope_values() -> None:
    # seed S9: 0 same host; 1 same subnet; 32 same site; 64 same region; 128 same continent;
    # 255 unrestricted.
    assert [(s.name, s.value) for s in TTLScope] == [
        ("HOST", 0),
        ("SUBNET", 1),
        ("SITE", 32),
        ("REGION", 64),
        ("CONTINENT", 128),
        ("UNRESTRICTED", 255),
    ]


def test_defaults_match_the_c_headers() -> None:
    # seed S7: TTL 1 by default; seed S14: looped back by default. The kernel headers agree.
    assert aiomcast.DEFAULT_TTL == socket.IP_DEFAULT_MULTICAST_TTL == 1
    assert aiomcast.DEFAULT_LOOPBACK is True
    assert socket.IP_DEFAULT_MULTICAST_LOOP == 1


# (value, TTL)
VALID_TTLS: list[tuple[object, int]] = [
    (0, 0),
    (1, 1),
    (2, 2),
    (32, 32),
    (127, 127),
    (254, 254),
    (255, 255),
    ("0", 0),
    ("255", 255),
    (" 64 ", 64),
    ("host", 0),
    ("HOST", 0),
    ("subnet", 1),
    ("Site", 32),
    ("region", 64),
    ("conTinent", 128),
    ("unrestricted", 255),
    (" site ", 32),
    (TTLScope.HOST, 0),
    (TTLScope.SUBNET, 1),
    (TTLScope.SITE, 32),
    (TTLScope.REGION, 64),
    (TTLScope.CONTINENT, 128),
    (TTLScope.UNRESTRICTED, 255),
]


@pytest.mark.parametrize(("value", "ttl"), VALID_TTLS)
def test_validate_ttl_accepts(value: object, ttl: int) -> None:
    # seed S7: any TTL from 0 to 255; seed S9: the conventional scopes by name.
    result = aiomcast.validate_ttl(value)
    assert result == ttl
    assert type(result) is int


INVALID_TTLS: list[object] = [
    -1,
    256,
    1000,
    "x",
    "",
    "-1",
    "256",
    "0x10",
    "1.5",
    "world",
    1.5,
    1.0,
    True,
    False,
    None,
    b"1",
    [1],
]


@pytest.mark.parametrize("value", INVALID_TTLS)
def test_validate_ttl_refuses(value: object) -> None:
    # seed S7: only 0-255.
    with pytest.raises(InvalidTTLError) as info:
        aiomcast.validate_ttl(value)
    assert_refusal(info.value, InvalidTTLError, value)


def test_validate_ttl_refusal_names_the_range_and_the_scopes() -> None:
    with pytest.raises(InvalidTTLError, match="outside 0-255"):
        aiomcast.validate_ttl(256)
    scopes = "host, subnet, site, region, continent, unrestricted"
    with pytest.raises(InvalidTTLError, match=scopes):
        aiomcast.validate_ttl("galaxy")


# (TTL, scope it reaches): thresholds of seed S9
SCOPE_OF_TTL: list[tuple[int, TTLScope]] = [
    (0, TTLScope.HOST),
    (1, TTLScope.SUBNET),
    (2, TTLScope.SITE),
    (16, TTLScope.SITE),
    (31, TTLScope.SITE),
    (32, TTLScope.SITE),
    (33, TTLScope.REGION),
    (63, TTLScope.REGION),
    (64, TTLScope.REGION),
    (65, TTLScope.CONTINENT),
    (100, TTLScope.CONTINENT),
    (128, TTLScope.CONTINENT),
    (129, TTLScope.UNRESTRICTED),
    (200, TTLScope.UNRESTRICTED),
    (254, TTLScope.UNRESTRICTED),
    (255, TTLScope.UNRESTRICTED),
]


@pytest.mark.parametrize(("ttl", "scope"), SCOPE_OF_TTL)
def test_scope_of_ttl(ttl: int, scope: TTLScope) -> None:
    # seed S9
    assert aiomcast.scope_of_ttl(ttl) is scope


def test_scope_of_ttl_covers_every_ttl_monotonically() -> None:
    # seed S9: a larger initial TTL never reaches less far.
    scopes = [aiomcast.scope_of_ttl(ttl) for ttl in range(256)]
    assert scopes == sorted(scopes)
    assert set(scopes) == set(TTLScope)
    for scope in TTLScope:
        assert aiomcast.scope_of_ttl(int(scope)) is scope


@pytest.mark.parametrize("ttl", [-1, 256])
def test_scope_of_ttl_refuses_out_of_range(ttl: int) -> None:
    with pytest.raises(InvalidTTLError) as info:
        aiomcast.scope_of_ttl(ttl)
    assert_refusal(info.value, InvalidTTLError, ttl)


# --------------------------------------------------------------------------------------------
# Ports

# (value, allow_zero, port)
VALID_PORTS: list[tuple[object, bool, int]] = [
    (0, True, 0),  # a receiver may bind any port
    (1, False, 1),
    (1, True, 1),
    (5000, False, 5000),
    (65535, False, 65535),
    (65535, True, 65535),
    ("5353", False, 5353),
    (" 80 ", False, 80),
    ("0", True, 0),
]


@pytest.mark.parametrize(("value", "allow_zero", "port"), VALID_PORTS)
def test_validate_port_accepts(value: object, allow_zero: bool, port: int) -> None:
    result = aiomcast.validate_port(value, allow_zero=allow_zero)
    assert result == port
    assert type(result) is int


# (value, allow_zero, text the message must contain besides the value)
INVALID_PORTS: list[tuple[object, bool, str]] = [
    (0, False, "a sender needs a destination port"),
    ("0", False, "a sender needs a destination port"),
    (-1, True, "0-65535"),
    (-1, False, "1-65535"),
    (65536, True, "0-65535"),
    (70000, False, "1-65535"),
    ("x", True, "0-65535"),
    ("", False, "1-65535"),
    ("70000", True, "0-65535"),
    (True, True, "bool"),
    (False, True, "bool"),
    (5000.0, False, "float"),
    (None, False, "NoneType"),
]


@pytest.mark.parametrize(("value", "allow_zero", "says"), INVALID_PORTS)
def test_validate_port_refuses(value: object, allow_zero: bool, says: str) -> None:
    with pytest.raises(InvalidPortError) as info:
        aiomcast.validate_port(value, allow_zero=allow_zero)
    assert_refusal(info.value, InvalidPortError, value)
    assert says in str(info.value)


# --------------------------------------------------------------------------------------------
# Payload limits


def test_max_payload() -> None:
    # 65535 - 20 (IPv4 header) - 8 (UDP header); 65535 - 8 (IPv6 payload length covers UDP).
    assert aiomcast.max_payload(Family.IPV4) == aiomcast.MAX_PAYLOAD_IPV4 == 65507
    assert aiomcast.max_payload(Family.IPV6) == aiomcast.MAX_PAYLOAD_IPV6 == 65527


# (payload, family) - accepted and returned unchanged
FITTING_PAYLOADS: list[tuple[bytes | bytearray | memoryview, Family]] = [
    (b"", Family.IPV4),
    (b"x", Family.IPV6),
    (bytes(65507), Family.IPV4),
    (bytearray(65507), Family.IPV4),
    (memoryview(bytes(65507)), Family.IPV4),
    (bytes(65527), Family.IPV6),
    (memoryview(bytes(65527)), Family.IPV6),
]


@pytest.mark.parametrize(("payload", "family"), FITTING_PAYLOADS)
def test_check_payload_accepts(payload: bytes | bytearray | memoryview, family: Family) -> None:
    assert check_payload(payload, family) is payload


# (payload, family, size named)
OVERSIZED_PAYLOADS: list[tuple[bytes | bytearray | memoryview, Family, int]] = [
    (bytes(65508), Family.IPV4, 65508),
    (bytearray(65527), Family.IPV4, 65527),
    (bytes(65528), Family.IPV6, 65528),
    (memoryview(bytes(70000)), Family.IPV6, 70000),
    # a memoryview counts bytes, not items: 16385 four-byte items are 65540 bytes
    (memoryview(bytes(65540)).cast("I"), Family.IPV4, 65540),
]


@pytest.mark.parametrize(("payload", "family", "size"), OVERSIZED_PAYLOADS)
def test_check_payload_refuses_oversized(
    payload: bytes | bytearray | memoryview, family: Family, size: int
) -> None:
    with pytest.raises(PayloadTooLargeError) as info:
        check_payload(payload, family)
    assert_refusal(info.value, PayloadTooLargeError, size)
    assert str(aiomcast.max_payload(family)) in str(info.value)
    assert family.label in str(info.value)


# (payload, type name the message names, extra text)
NOT_BYTES: list[tuple[object, str, str]] = [
    ("text", "str", "encode"),
    (None, "NoneType", "bytes"),
    (42, "int", "bytes"),
    ([1, 2], "list", "bytes"),
]


@pytest.mark.parametrize(("payload", "kind", "says"), NOT_BYTES)
def test_check_payload_refuses_non_bytes(payload: object, kind: str, says: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_payload(payload, Family.IPV4)
    assert_refusal(info.value, InvalidArgumentError, kind)
    assert says in str(info.value)


# --------------------------------------------------------------------------------------------
# Families

PARSE_FAMILY: list[tuple[object, Family]] = [
    (Family.IPV4, Family.IPV4),
    (Family.IPV6, Family.IPV6),
    (4, Family.IPV4),
    (6, Family.IPV6),
    (socket.AF_INET, Family.IPV4),
    (socket.AF_INET6, Family.IPV6),
    (int(socket.AF_INET), Family.IPV4),
    (int(socket.AF_INET6), Family.IPV6),
    ("4", Family.IPV4),
    ("6", Family.IPV6),
    ("ipv4", Family.IPV4),
    ("IPv6", Family.IPV6),
    (" IPV4 ", Family.IPV4),
    ("inet", Family.IPV4),
    ("inet6", Family.IPV6),
    ("v4", Family.IPV4),
    ("V6", Family.IPV6),
]


@pytest.mark.parametrize(("value", "family"), PARSE_FAMILY)
def test_parse_family(value: object, family: Family) -> None:
    assert aiomcast.parse_family(value) is family


INVALID_FAMILIES: list[object] = [
    5,
    0,
    -4,
    "ipv5",
    "",
    "inet4",
    True,
    False,
    None,
    4.0,
    b"4",
    socket.AF_UNIX,
]


@pytest.mark.parametrize("value", INVALID_FAMILIES)
def test_parse_family_refuses(value: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        aiomcast.parse_family(value)
    assert_refusal(info.value, InvalidArgumentError, value)


def test_family_values_and_labels() -> None:
    assert int(Family.IPV4) == int(socket.AF_INET)
    assert int(Family.IPV6) == int(socket.AF_INET6)
    assert (Family.IPV4.label, Family.IPV6.label) == ("IPv4", "IPv6")


def test_the_ipv6_hop_limit_0_refusal_names_no_internal_label() -> None:
    from aiomcast._send import check_ipv6_host_scope

    with pytest.raises(aiomcast.InvalidTTLError) as caught:
        check_ipv6_host_scope("ff12::1")
    message = str(caught.value)
    assert message.startswith("hop limit 0 (host scope) to ff12::1: ")
    assert not re.search(r"\bS\d+\b", message)
    check_ipv6_host_scope("ff11::1")  # interface-local: it stays on the host
