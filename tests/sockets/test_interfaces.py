"""Interfaces: choosing one is pure (tables of Interface values); reading them is real.

select_interface is tested from a table of made-up interfaces, without touching the host.
Then list_interfaces / resolve_interface / kernel_memberships are checked against the loopback
interface and, as root, against veth links that a fresh lab builds (``netlab`` fixture).
Seed facts are named as ``seed Sn``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import ipaddress
import json
import socket
import struct

import pytest

import aiomcast
from aiomcast import Family, Interface, InterfaceError, _interfaces
from aiomcast._interfaces import kernel_memberships, select_interface
from aiomcast._options import Platform
from aiomcast.testing.lab import Lab

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address

LO = Interface("lo", 1, ipv4=(V4("127.0.0.1"),), ipv6=(V6("::1"),), multicast=False, loopback=True)
ETH0 = Interface("eth0", 2, ipv4=(V4("192.0.2.10"),), ipv6=(V6("fe80::1"), V6("2001:db8::10")))
ETH1 = Interface("eth1", 3, ipv4=(V4("198.51.100.7"), V4("198.51.100.8")), ipv6=(V6("fe80::2"),))
V6ONLY = Interface("v6only", 4, ipv6=(V6("fd00::4"),))
NOMC = Interface("nomc0", 5, ipv4=(V4("203.0.113.5"),), ipv6=(V6("fd00::5"),), multicast=False)
SEVEN = Interface("7", 9, ipv4=(V4("10.7.7.7"),))  # a name that looks like an index

HOST: list[Interface] = [LO, ETH0, ETH1, V6ONLY, NOMC, SEVEN]

# (spec, family, name of the interface chosen)
SELECT: list[tuple[object, Family | None, str]] = [
    # by name
    ("eth0", None, "eth0"),
    ("eth0", Family.IPV4, "eth0"),
    ("eth0", Family.IPV6, "eth0"),
    (" eth1 ", Family.IPV4, "eth1"),
    ("v6only", Family.IPV6, "v6only"),
    ("nomc0", None, "nomc0"),  # without a family nothing is checked
    ("7", None, "7"),  # a name wins over an index
    # by index, or an index as text
    (2, None, "eth0"),
    (3, Family.IPV4, "eth1"),
    (4, Family.IPV6, "v6only"),
    ("3", Family.IPV6, "eth1"),
    (" 2 ", None, "eth0"),
    ("9", None, "7"),
    # by local address, text or ipaddress object, either family
    ("192.0.2.10", Family.IPV4, "eth0"),
    ("198.51.100.8", None, "eth1"),
    (V4("198.51.100.7"), Family.IPV4, "eth1"),
    ("2001:db8::10", Family.IPV6, "eth0"),
    ("fe80::2", Family.IPV6, "eth1"),
    ("fe80::2%eth1", Family.IPV6, "eth1"),  # a zone is ignored
    (V6("fe80::1"), Family.IPV6, "eth0"),
    ("fd00::4", Family.IPV6, "v6only"),
    # by Interface value, matched by index
    (ETH1, Family.IPV4, "eth1"),
    (dataclasses.replace(ETH0, name="renamed"), None, "eth0"),
    # the loopback interface carries IPv4 multicast on Linux although IFF_MULTICAST is unset
    ("lo", None, "lo"),
    ("lo", Family.IPV4, "lo"),
    (1, Family.IPV4, "lo"),
    ("127.0.0.1", Family.IPV4, "lo"),
]


@pytest.mark.parametrize(("spec", "family", "name"), SELECT)
def test_select_interface(spec: object, family: Family | None, name: str) -> None:
    chosen = select_interface(HOST, spec, family)  # type: ignore[arg-type]
    assert chosen.name == name
    assert chosen in HOST


# (spec, family, texts the message must contain)
REFUSE: list[tuple[object, Family | None, tuple[str, ...]]] = [
    ("nope0", None, ("'nope0'", "does not exist", "eth0 (#2)")),
    ("", Family.IPV4, ("''", "does not exist")),
    (0, None, ("index 0", "not a positive index")),
    ("0", None, ("index 0", "not a positive index")),
    (-1, None, ("index -1", "not a positive index")),
    (999, None, ("#999", "does not exist")),
    ("999", Family.IPV4, ("#999", "does not exist")),
    (dataclasses.replace(ETH0, name="ghost", index=77), None, ("'ghost'", "does not exist")),
    # an address that no interface has
    ("10.0.0.1", Family.IPV4, ("'10.0.0.1'", "not an address of any local interface")),
    (V4("10.0.0.1"), None, ("10.0.0.1", "not an address of any local interface")),
    ("2001:db8::99", Family.IPV6, ("'2001:db8::99'", "not an address of any local interface")),
    # an address of the other family
    ("2001:db8::10", Family.IPV4, ("'2001:db8::10'", "not an IPv4 address")),
    (V6("fd00::4"), Family.IPV4, ("fd00::4", "not an IPv4 address")),
    ("192.0.2.10", Family.IPV6, ("'192.0.2.10'", "not an IPv6 address")),
    # an interface without IFF_MULTICAST (seed S13)
    ("nomc0", Family.IPV4, ("'nomc0'", "IPv4", "IFF_MULTICAST is not set")),
    ("nomc0", Family.IPV6, ("'nomc0'", "IPv6", "IFF_MULTICAST is not set")),
    (5, Family.IPV4, ("'nomc0'", "IFF_MULTICAST")),
    ("203.0.113.5", Family.IPV4, ("'nomc0'", "IFF_MULTICAST")),
    # IPv6 multicast is not looped back on lo
    ("lo", Family.IPV6, ("'lo'", "IPv6", "loop back")),
    ("::1", Family.IPV6, ("'lo'", "loop back")),
    # IPv4 multicast needs an IPv4 address
    ("v6only", Family.IPV4, ("'v6only'", "no IPv4 address")),
    (4, Family.IPV4, ("'v6only'", "no IPv4 address")),
    # wrong types
    (3.5, None, ("3.5", "float")),
    (True, None, ("True", "not a name, index or address")),
    (False, Family.IPV4, ("False", "not a name, index or address")),
    (None, None, ("None", "NoneType")),
    (b"eth0", None, ("b'eth0'", "bytes")),
    # a Unicode digit that int() cannot read is text, not an index
    ("\N{SUPERSCRIPT TWO}", None, ("does not exist",)),
]


@pytest.mark.parametrize(("spec", "family", "says"), REFUSE)
def test_select_interface_refuses(
    spec: object, family: Family | None, says: tuple[str, ...]
) -> None:
    with pytest.raises(InterfaceError) as info:
        select_interface(HOST, spec, family)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, aiomcast.AiomcastError)
    for text in says:
        assert text in str(info.value), f"{text!r} not in {str(info.value)!r}"
    assert str(info.value.value) == str(spec)  # the value (an index given as text: parsed)


def test_select_from_no_interfaces() -> None:
    with pytest.raises(InterfaceError, match=r"interfaces: none"):
        select_interface([], "eth0", None)


# (multicast flag, loopback flag, family, platform, multicast works)
SUPPORTS: list[tuple[bool, bool, Family, Platform, bool]] = [
    (True, False, Family.IPV4, "linux", True),
    (True, False, Family.IPV6, "linux", True),
    (False, False, Family.IPV4, "linux", False),
    (False, False, Family.IPV6, "linux", False),
    (False, True, Family.IPV4, "linux", True),  # Linux loops IPv4 multicast on lo
    (False, True, Family.IPV6, "linux", False),
    (True, True, Family.IPV6, "linux", True),
    (False, True, Family.IPV4, "darwin", False),
    (False, True, Family.IPV4, "freebsd", False),
    (False, True, Family.IPV4, "windows", False),
    (True, True, Family.IPV4, "darwin", True),
    (True, False, Family.IPV6, "freebsd", True),
    (False, False, Family.IPV4, "darwin", False),
]


@pytest.mark.parametrize(("multicast", "loopback", "family", "platform", "works"), SUPPORTS)
def test_interface_supports(
    monkeypatch: pytest.MonkeyPatch,
    multicast: bool,
    loopback: bool,
    family: Family,
    platform: Platform,
    works: bool,
) -> None:
    # seed S13: IFF_MULTICAST tells whether an interface supports multicast.
    monkeypatch.setattr(_interfaces, "PLATFORM", platform)
    interface = Interface("x0", 7, ipv4=(V4("10.0.0.7"),), multicast=multicast, loopback=loopback)
    assert interface.supports(family) is works


def test_interface_addresses() -> None:
    assert ETH1.addresses(Family.IPV4) == (V4("198.51.100.7"), V4("198.51.100.8"))
    assert ETH1.addresses(Family.IPV6) == (V6("fe80::2"),)
    assert V6ONLY.addresses(Family.IPV4) == ()


def test_interface_to_json() -> None:
    shape = ETH0.to_json()
    assert shape == {
        "name": "eth0",
        "index": 2,
        "ipv4": ["192.0.2.10"],
        "ipv6": ["fe80::1", "2001:db8::10"],
        "up": True,
        "running": True,
        "multicast": True,
        "loopback": False,
    }
    assert list(shape) == [
        "name",
        "index",
        "ipv4",
        "ipv6",
        "up",
        "running",
        "multicast",
        "loopback",
    ]
    assert json.loads(json.dumps(shape)) == shape
    assert LO.to_json()["multicast"] is False
    assert LO.to_json()["loopback"] is True


def test_interface_is_frozen_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ETH0.index = 3  # type: ignore[misc]
    assert len({ETH0, dataclasses.replace(ETH0)}) == 1
    assert dataclasses.replace(ETH0, index=3) != ETH0


# --------------------------------------------------------------------------------------------
# /proc/net/igmp and /proc/net/igmp6 parsing, from the kernel's own text

IGMP = (
    "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
    "1\tlo        :     2      V3\n"
    "\t\t\t\t030201EF     1 0:00000000\t\t0\n"
    "\t\t\t\t010000E0     1 0:00000000\t\t0\n"
    "7\tveth0     :     1      V3\n"
    "\t\t\t\t010000E0     1 0:00000000\t\t0\n"
)
IGMP6 = (
    "1    lo              ff020000000000000000000000000001     1 0000000C 0\n"
    "1    lo              ff010000000000000000000000000001     1 00000008 0\n"
    "7    veth0           ff120000000000000000000100020003     1 00000004 0\n"
)


def test_kernel_memberships_parses_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    # /proc/net/igmp prints each group as a host-order 32-bit hex number.
    host_order = struct.unpack("=I", bytes([239, 1, 2, 3]))[0]
    igmp = IGMP.replace("030201EF", f"{host_order:08X}").replace(
        "010000E0", f"{struct.unpack('=I', bytes([224, 0, 0, 1]))[0]:08X}"
    )
    texts = {"igmp": igmp, "igmp6": IGMP6}
    monkeypatch.setattr(_interfaces, "_proc_net", texts.get)
    assert kernel_memberships(Family.IPV4) == {
        ("lo", "239.1.2.3"),
        ("lo", "224.0.0.1"),
        ("veth0", "224.0.0.1"),
    }
    assert kernel_memberships(Family.IPV6) == {
        ("lo", "ff02::1"),
        ("lo", "ff01::1"),
        ("veth0", "ff12::1:2:3"),
    }
    monkeypatch.setattr(_interfaces, "_proc_net", lambda name: None)
    assert kernel_memberships(Family.IPV4) is None
    assert kernel_memberships(Family.IPV6) is None


# --------------------------------------------------------------------------------------------
# The host's interfaces

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_MULTICAST = 0x1000  # linux/if.h
SIOCGIFFLAGS = 0x8913  # linux/sockios.h


def ioctl_flags(name: str) -> int:
    """SIOCGIFFLAGS, read here independently of aiomcast (seed S13)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        result = fcntl.ioctl(probe.fileno(), SIOCGIFFLAGS, struct.pack("16sH14x", name.encode(), 0))
    return int(struct.unpack("16sH14x", result)[1])


def by_name(name: str) -> Interface:
    found = [i for i in aiomcast.list_interfaces() if i.name == name]
    assert len(found) == 1, f"{name} in {aiomcast.list_interfaces()}"
    return found[0]


def test_list_interfaces_has_loopback() -> None:
    # seed S13: SIOCGIFFLAGS; lo is up and loopback, without IFF_MULTICAST.
    interfaces = aiomcast.list_interfaces()
    assert [i.index for i in interfaces] == sorted(i.index for i in interfaces)
    assert len({i.name for i in interfaces}) == len(interfaces)
    lo = by_name("lo")
    assert lo.index == socket.if_nametoindex("lo")
    assert V4("127.0.0.1") in lo.ipv4
    assert lo.loopback is True
    assert lo.multicast is False
    assert lo.up is True
    flags = ioctl_flags("lo")
    assert lo.multicast is bool(flags & IFF_MULTICAST) is False
    assert lo.loopback is bool(flags & IFF_LOOPBACK) is True
    assert lo.up is bool(flags & IFF_UP) is True


@pytest.mark.parametrize("spec", ["lo", "127.0.0.1", V4("127.0.0.1"), " lo "])
def test_resolve_loopback(spec: str | ipaddress.IPv4Address) -> None:
    assert aiomcast.resolve_interface(spec).name == "lo"
    assert aiomcast.resolve_interface(spec, Family.IPV4).name == "lo"


def test_resolve_loopback_by_index() -> None:
    index = socket.if_nametoindex("lo")
    assert aiomcast.resolve_interface(index).name == "lo"
    assert aiomcast.resolve_interface(str(index)).name == "lo"
    assert aiomcast.resolve_interface(1).index == 1  # lo is always index 1 on Linux


def test_resolve_refusals_on_this_host() -> None:
    with pytest.raises(InterfaceError, match="loop back"):
        aiomcast.resolve_interface("lo", Family.IPV6)
    with pytest.raises(InterfaceError, match="'nope0' does not exist"):
        aiomcast.resolve_interface("nope0")
    with pytest.raises(InterfaceError, match="not an address of any local interface"):
        aiomcast.resolve_interface("192.0.2.254")


def test_kernel_memberships_of_loopback() -> None:
    # Every up interface with IPv4 is a member of the all-hosts group 224.0.0.1.
    v4 = kernel_memberships(Family.IPV4)
    assert v4 is not None
    assert ("lo", "224.0.0.1") in v4
    v6 = kernel_memberships(Family.IPV6)
    assert v6 is not None
    assert all(aiomcast.Group(group).family is Family.IPV6 for _name, group in v6)


def test_link_without_multicast(netlab: Lab) -> None:
    # seed S13: an interface without IFF_MULTICAST cannot carry multicast; one with it can.
    h = netlab.host("x")
    off = netlab.link(netlab.local, h, multicast=False)
    on = netlab.link(netlab.local, h)
    quiet, normal = by_name(off.a_name), by_name(on.a_name)
    assert quiet.multicast is False
    assert bool(ioctl_flags(off.a_name) & IFF_MULTICAST) is False
    assert normal.multicast is True
    assert bool(ioctl_flags(on.a_name) & IFF_MULTICAST) is True
    assert quiet.up is True
    assert quiet.loopback is False
    assert V4(off.a_ipv4) in quiet.ipv4
    for family in Family:
        with pytest.raises(InterfaceError, match="IFF_MULTICAST") as info:
            aiomcast.resolve_interface(off.a_name, family)
        assert off.a_name in str(info.value)
        assert aiomcast.resolve_interface(on.a_name, family).name == on.a_name
    with pytest.raises(InterfaceError, match="IFF_MULTICAST"):
        aiomcast.resolve_interface(off.a_ipv4, Family.IPV4)
    assert aiomcast.resolve_interface(off.a_name).index == quiet.index  # no family: no check


def test_link_without_ipv4(netlab: Lab) -> None:
    h = netlab.host("x")
    ends = netlab.link(netlab.local, h, ipv4=False)
    interface = by_name(ends.a_name)
    assert interface.ipv4 == ()
    assert V6(ends.a_ipv6) in interface.ipv6
    assert interface.multicast is True
    with pytest.raises(InterfaceError, match="no IPv4 address") as info:
        aiomcast.resolve_interface(ends.a_name, Family.IPV4)
    assert ends.a_name in str(info.value)
    assert aiomcast.resolve_interface(ends.a_name, Family.IPV6).name == ends.a_name
    assert aiomcast.resolve_interface(ends.a_ipv6, Family.IPV6).name == ends.a_name
