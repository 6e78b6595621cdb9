"""Property tests of the pure layer: every input is either accepted or refused cleanly.

"Cleanly" means with the library's own exception (InvalidGroupError, InvalidTTLError, ...),
never another one; accepted values round-trip. Seed facts are named as ``seed Sn``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import aiomcast
from aiomcast import (
    Family,
    Group,
    InvalidArgumentError,
    InvalidGroupError,
    InvalidPortError,
    InvalidTTLError,
    TTLScope,
)

EXAMPLES = settings(max_examples=300, deadline=None)

T = TypeVar("T")


def outcome(call: Callable[[], T]) -> T | aiomcast.AiomcastError:
    """The result of ``call``, or the library error it raised; any other exception escapes."""
    try:
        return call()
    except aiomcast.AiomcastError as exc:
        return exc


FIRST_GROUP = int(ipaddress.IPv4Address("224.0.0.1"))
LAST_GROUP = int(ipaddress.IPv4Address("239.255.255.255"))

# Text that looks like an address often enough to reach the interesting branches.
address_like = st.text(alphabet="0123456789abcdefABCDEF:.% ", max_size=45)
ipv6_with_zone = st.builds(
    lambda address, zone: f"{address}%{zone}",
    st.ip_addresses(v=6, network="ff00::/8").map(str),
    st.text(max_size=8),
)
group_text = st.one_of(
    st.text(),
    address_like,
    st.ip_addresses().map(str),
    ipv6_with_zone,
)


@EXAMPLES
@given(group_text)
@example("224.0.0.0")
@example("ff02::1%")
@example("ff02::1%%")
@example("ff02::1% x")
@example("239.1.2.3%lo")
@example("::ffff:239.1.2.3")
@example("ff02::1.2.3.4")
def test_group_from_any_text(text: str) -> None:
    # seed S2: a group is 224.0.0.1-239.255.255.255 or in ff00::/8; everything else is refused
    # with InvalidGroupError (any other exception fails this test).
    group = outcome(lambda: Group(text))
    if isinstance(group, aiomcast.AiomcastError):
        assert type(group) is InvalidGroupError
        assert group.value == text
        return
    again = Group(str(group))
    assert again == group
    assert hash(again) == hash(group)
    assert str(again) == str(group)
    assert again.zone == group.zone
    assert group.address.is_multicast
    assert group.family is (Family.IPV4 if group.address.version == 4 else Family.IPV6)


@EXAMPLES
@given(st.integers(min_value=0, max_value=2**32 - 1))
@example(FIRST_GROUP - 2)
@example(FIRST_GROUP - 1)  # 224.0.0.0
@example(FIRST_GROUP)
@example(LAST_GROUP)
@example(LAST_GROUP + 1)  # 240.0.0.0
def test_every_ipv4_group_and_nothing_else(number: int) -> None:
    # seed S2, S6: IPv4 groups are exactly 224.0.0.1-239.255.255.255.
    address = ipaddress.IPv4Address(number)
    is_group = FIRST_GROUP <= number <= LAST_GROUP
    for value in (str(address), address):
        if is_group:
            group = Group(value)
            assert group.address == address
            assert group.family is Family.IPV4
            # seed S11: exactly 224.0.0.0/24 is never forwarded by routers
            assert group.forwarded_by_routers is (number > FIRST_GROUP + 254)
        else:
            with pytest.raises(InvalidGroupError):
                Group(value)


@EXAMPLES
@given(st.ip_addresses(v=4))
def test_ipv4_addresses_special_ranges(address: ipaddress.IPv4Address) -> None:
    # Hypothesis favours special networks (loopback, private, reserved, multicast).
    if FIRST_GROUP <= int(address) <= LAST_GROUP:
        assert Group(str(address)).address == address
    else:
        with pytest.raises(InvalidGroupError):
            Group(str(address))


@EXAMPLES
@given(st.ip_addresses(v=6, network="ff00::/8"))
@example(ipaddress.IPv6Address("ff00::"))
@example(ipaddress.IPv6Address("ff0f::1"))
@example(ipaddress.IPv6Address("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
@example(ipaddress.IPv6Address("ff01::"))
def test_every_ipv6_group_with_a_valid_scope(address: ipaddress.IPv6Address) -> None:
    # seed S2: ff00::/8, except the reserved scopes 0 and F (RFC 4291).
    scope = address.packed[1] & 0x0F
    if scope in (0x0, 0xF):
        with pytest.raises(InvalidGroupError, match="reserved scope"):
            Group(str(address))
        return
    group = Group(str(address))
    assert group.address == address
    assert group.scope_value == scope
    assert int(group.scope) >= scope  # unassigned scopes map upward
    assert group.flags == address.packed[1] >> 4
    assert group.is_link_local is (scope <= 2)
    assert Group(address) == group


@EXAMPLES
@given(st.ip_addresses(v=6).filter(lambda a: not a.is_multicast))
def test_ipv6_outside_ff00_is_refused(address: ipaddress.IPv6Address) -> None:
    with pytest.raises(InvalidGroupError, match="not an IPv6 multicast address"):
        Group(str(address))


# --------------------------------------------------------------------------------------------
# TTL (seed S7, S9)

SCOPE_NAMES = st.sampled_from(list(TTLScope.__members__)).flatmap(
    lambda name: st.sampled_from([name, name.lower(), name.title(), f" {name.lower()} "])
)


@EXAMPLES
@given(
    st.one_of(
        st.integers(),
        st.text(),
        st.floats(),
        st.booleans(),
        st.none(),
        st.integers().map(str),
        SCOPE_NAMES,
    )
)
def test_validate_ttl_any_value(value: object) -> None:
    # seed S7: a TTL is 0-255; seed S9: or a scope name.
    ttl = outcome(lambda: aiomcast.validate_ttl(value))
    if isinstance(ttl, aiomcast.AiomcastError):
        assert type(ttl) is InvalidTTLError
        if isinstance(value, int) and not isinstance(value, bool):
            assert not 0 <= value <= 255
        return
    assert type(ttl) is int
    assert 0 <= ttl <= 255
    assert not isinstance(value, bool | float)
    if isinstance(value, int):
        assert ttl == value
    assert aiomcast.scope_of_ttl(ttl) >= ttl  # the scope a TTL reaches is its threshold


@EXAMPLES
@given(st.integers(min_value=-(2**70), max_value=2**70))
@example(-1)
@example(0)
@example(255)
@example(256)
def test_validate_ttl_integers(value: int) -> None:
    if 0 <= value <= 255:
        assert aiomcast.validate_ttl(value) == value
        assert aiomcast.validate_ttl(str(value)) == value
    else:
        with pytest.raises(InvalidTTLError, match=str(value)):
            aiomcast.validate_ttl(value)
        with pytest.raises(InvalidTTLError):
            aiomcast.validate_ttl(str(value))


@EXAMPLES
@given(st.integers(min_value=0, max_value=255))
def test_scope_of_ttl_is_the_smallest_threshold_reached(ttl: int) -> None:
    # seed S9: the scope is the smallest conventional TTL at least as large as the TTL.
    scope = aiomcast.scope_of_ttl(ttl)
    assert ttl <= scope
    assert all(other < ttl for other in TTLScope if other < scope)


# --------------------------------------------------------------------------------------------
# Ports


@EXAMPLES
@given(
    st.one_of(
        st.integers(),
        st.text(),
        st.floats(),
        st.booleans(),
        st.none(),
        st.integers(min_value=-10, max_value=70000).map(str),
    ),
    st.booleans(),
)
@example(0, False)
@example(0, True)
@example(65535, False)
@example(65536, True)
def test_validate_port_any_value(value: object, allow_zero: bool) -> None:
    port = outcome(lambda: aiomcast.validate_port(value, allow_zero=allow_zero))
    if isinstance(port, aiomcast.AiomcastError):
        assert type(port) is InvalidPortError
        if isinstance(value, int) and not isinstance(value, bool):
            assert not (0 if allow_zero else 1) <= value <= 65535
        return
    assert type(port) is int
    assert (0 if allow_zero else 1) <= port <= 65535
    assert not isinstance(value, bool | float)
    if isinstance(value, int):
        assert port == value


# --------------------------------------------------------------------------------------------
# Families


@EXAMPLES
@given(
    st.one_of(
        st.text(),
        st.integers(),
        st.booleans(),
        st.none(),
        st.floats(),
        st.sampled_from(["ipv4", "IPv6", " inet6 ", "v4", "4", "6"]),
    )
)
@example(int(socket.AF_INET))
@example(int(socket.AF_INET6))
def test_parse_family_any_value(value: object) -> None:
    family = outcome(lambda: aiomcast.parse_family(value))
    if isinstance(family, aiomcast.AiomcastError):
        assert type(family) is InvalidArgumentError
        return
    assert family in (Family.IPV4, Family.IPV6)
    if isinstance(value, int):
        assert value in (4, 6, socket.AF_INET, socket.AF_INET6)
        assert (family is Family.IPV4) is (value in (4, socket.AF_INET))
    else:
        assert isinstance(value, str)
        assert value.strip().lower() in ("4", "6", "ipv4", "ipv6", "inet", "inet6", "v4", "v6")


# --------------------------------------------------------------------------------------------
# Integers too long to print: Python refuses str() of an int with more than 4300 digits
# (sys.get_int_max_str_digits), so a refusal that formats the value must not format it raw.

HUGE = 10**5000

REFUSERS: list[tuple[str, Callable[[object], object], type[InvalidArgumentError]]] = [
    ("validate_ttl", aiomcast.validate_ttl, InvalidTTLError),
    ("scope_of_ttl", lambda v: aiomcast.scope_of_ttl(v), InvalidTTLError),  # type: ignore[arg-type]
    ("validate_port", lambda v: aiomcast.validate_port(v, allow_zero=True), InvalidPortError),
    ("parse_family", aiomcast.parse_family, InvalidArgumentError),
    ("Group", lambda v: Group(v), InvalidGroupError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("refuse", "kind"), [pytest.param(f, k, id=name) for name, f, k in REFUSERS]
)
def test_huge_integer_is_refused_with_the_library_error(
    refuse: Callable[[object], object], kind: type[InvalidArgumentError]
) -> None:
    with pytest.raises(kind):
        refuse(HUGE)
