# Design: the one module that talks to the operating system's interface list, and the only
# importer of netifaces. Reading (list_interfaces) is separate from choosing (select_interface):
# select_interface is a pure function over a list of Interface values, tested from tables.
#
# Flags come from the SIOCGIFFLAGS ioctl (S13), not from /sys: /sys/class/net shows the network
# namespace that mounted sysfs, while netifaces (getifaddrs over netlink) and the ioctl follow
# the calling thread's namespace, which is what a socket created by the same thread sees.
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import fcntl
import ipaddress
import os
import socket
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final, TypeAlias

import netifaces

from ._address import Family, parse_family
from ._errors import InterfaceError, show
from ._options import PLATFORM

__all__ = [
    "Interface",
    "InterfaceFilter",
    "InterfaceLike",
    "kernel_memberships",
    "list_interfaces",
    "network_namespace",
    "plan_joins",
    "resolve_interface",
    "select_interface",
    "setns_net",
    "socket_namespace",
    "unusable_reason",
]

IFF_UP: Final = 0x1
IFF_LOOPBACK: Final = 0x8
IFF_RUNNING: Final = 0x40
IFF_MULTICAST: Final = 0x1000 if PLATFORM == "linux" else 0x8000

# SIOCGIFFLAGS: Linux 0x8913; the BSDs and macOS _IOWR('i', 17, struct ifreq) = 0xC0206911.
_SIOCGIFFLAGS: Final = 0x8913 if PLATFORM == "linux" else 0xC0206911


@dataclasses.dataclass(frozen=True, slots=True)
class Interface:
    """One network interface as the host sees it.

    Attributes:
        name: the interface name, such as ``"eth0"``.
        index: the kernel's interface index (never 0).
        ipv4: the interface's IPv4 addresses.
        ipv6: the interface's IPv6 addresses, without zone.
        up: IFF_UP is set.
        running: IFF_RUNNING is set (the link has carrier).
        multicast: IFF_MULTICAST is set (S13).
        loopback: IFF_LOOPBACK is set.
    """

    name: str
    index: int
    ipv4: tuple[ipaddress.IPv4Address, ...] = ()
    ipv6: tuple[ipaddress.IPv6Address, ...] = ()
    up: bool = True
    running: bool = True
    multicast: bool = True
    loopback: bool = False

    def addresses(
        self, family: Family
    ) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
        """Return the addresses of ``family``."""
        return self.ipv4 if family is Family.IPV4 else self.ipv6

    def supports(self, family: Family) -> bool:
        """Whether multicast of ``family`` works on this interface.

        IFF_MULTICAST must be set, with one exception: Linux delivers IPv4 multicast over the
        loopback interface (membership and outgoing interface on 127.0.0.1) although ``lo``
        lacks IFF_MULTICAST. IPv6 multicast is not looped back on ``lo``.
        """
        if self.multicast:
            return True
        return self.loopback and family is Family.IPV4 and PLATFORM == "linux"

    def to_json(self) -> dict[str, object]:
        """Return a JSON-ready dict (used by ``aiomcast interfaces --json``)."""
        return {
            "name": self.name,
            "index": self.index,
            "ipv4": [str(a) for a in self.ipv4],
            "ipv6": [str(a) for a in self.ipv6],
            "up": self.up,
            "running": self.running,
            "multicast": self.multicast,
            "loopback": self.loopback,
        }


InterfaceLike: TypeAlias = "Interface | str | int | ipaddress.IPv4Address | ipaddress.IPv6Address"


def _flags(name: str) -> int:
    ifreq = struct.pack("16sH14x", name.encode()[:15], 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        result = fcntl.ioctl(probe.fileno(), _SIOCGIFFLAGS, ifreq)
    return int(struct.unpack("16sH14x", result)[1])


def _addresses(name: str, family: int) -> list[str]:
    try:
        entries = netifaces.ifaddresses(name).get(family, [])
    except ValueError:  # the interface vanished between interfaces() and ifaddresses()
        return []
    return [str(entry["addr"]).split("%", 1)[0] for entry in entries if entry.get("addr")]


def list_interfaces() -> list[Interface]:
    """List the host's interfaces (in the calling thread's network namespace), by index.

    Interfaces that disappear while being read are left out.
    """
    result: list[Interface] = []
    # Names and indexes from the C library's if_nameindex, not netifaces.interfaces(): that
    # leaks about 184 bytes per call (netifaces-plus 0.12.5), and endpoints list the
    # interfaces on every open and join (tests/sockets/test_local_reliability.py counts the memory).
    for index, name in socket.if_nameindex():
        try:
            flags = _flags(name)
        except OSError:
            continue
        v4 = tuple(ipaddress.IPv4Address(a) for a in _addresses(name, netifaces.AF_INET))
        v6 = tuple(ipaddress.IPv6Address(a) for a in _addresses(name, netifaces.AF_INET6))
        result.append(
            Interface(
                name=name,
                index=index,
                ipv4=v4,
                ipv6=v6,
                up=bool(flags & IFF_UP),
                running=bool(flags & IFF_RUNNING),
                multicast=bool(flags & IFF_MULTICAST),
                loopback=bool(flags & IFF_LOOPBACK),
            )
        )
    result.sort(key=lambda i: i.index)
    return result


def _describe(interfaces: Iterable[Interface]) -> str:
    names = [f"{i.name} (#{i.index})" for i in interfaces]
    return ", ".join(names) if names else "none"


def select_interface(
    interfaces: Sequence[Interface], spec: InterfaceLike, family: Family | None
) -> Interface:
    """Choose one interface from ``interfaces`` by name, index or local address (pure).

    With ``family`` given, the interface must support multicast of that family and, for IPv4,
    have an IPv4 address.

    Raises:
        InterfaceError: unknown, without multicast, or without an address of the family.
    """
    found: Interface | None = None
    if isinstance(spec, Interface):
        found = next((i for i in interfaces if i.index == spec.index), None)
        label = spec.name
    elif isinstance(spec, bool):
        raise InterfaceError(f"interface {show(spec)} is not a name, index or address", value=spec)
    elif isinstance(spec, int):
        label = f"#{show(spec)}"
        if spec <= 0:
            raise InterfaceError(
                f"interface index {show(spec)} is not a positive index", value=spec
            )
        found = next((i for i in interfaces if i.index == spec), None)
    elif isinstance(spec, ipaddress.IPv4Address | ipaddress.IPv6Address | str):
        label = str(spec)
        text = str(spec).strip()
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
        if isinstance(spec, str):
            found = next((i for i in interfaces if i.name == text), None)
            if found is None and text.isascii() and text.isdecimal():
                return select_interface(interfaces, int(text), family)
            if found is None:
                with contextlib.suppress(ValueError):
                    address = ipaddress.ip_address(text.split("%", 1)[0])
        else:
            address = spec
        if address is not None:
            found = next((i for i in interfaces if address in i.ipv4 or address in i.ipv6), None)
            if found is None:
                raise InterfaceError(
                    f"interface address {label!r} is not an address of any local interface "
                    f"(interfaces: {_describe(interfaces)})",
                    value=spec,
                )
            if family is not None and address.version != (4 if family is Family.IPV4 else 6):
                raise InterfaceError(
                    f"interface address {label!r} is not an {family.label} address",
                    value=spec,
                )
    else:
        raise InterfaceError(
            f"interface {show(spec)} must be a name, an index or a local address, "
            f"not {type(spec).__name__}",
            value=spec,
        )
    if found is None:
        raise InterfaceError(
            f"interface {label!r} does not exist (interfaces: {_describe(interfaces)})",
            value=spec,
        )
    if family is not None:
        if not found.supports(family):
            why = (
                "IPv6 multicast does not loop back on the loopback interface; use another"
                if found.loopback
                else "IFF_MULTICAST is not set"
            )
            raise InterfaceError(
                f"interface {found.name!r} cannot carry {family.label} multicast: {why}",
                value=spec,
            )
        if family is Family.IPV4 and not found.ipv4:
            raise InterfaceError(
                f"interface {found.name!r} has no IPv4 address, needed for IPv4 multicast",
                value=spec,
            )
    return found


def resolve_interface(
    spec: InterfaceLike, family: object = None, *, sock: socket.socket | None = None
) -> Interface:
    """Resolve a name, an index or a local address to one of the host's interfaces.

    With ``sock``, the interfaces are those of the socket's network namespace (which differs
    from the calling thread's only when the socket was opened inside another namespace).

    Raises:
        InterfaceError: see select_interface.
        InvalidArgumentError: ``family`` is not a family.
    """
    chosen = None if family is None else parse_family(family)
    with socket_namespace(sock):
        interfaces = list_interfaces()
    return select_interface(interfaces, spec, chosen)


CLONE_NEWNET: Final = 0x40000000
_SIOCGSKNS: Final = 0x894C  # Linux 4.9+: a file descriptor for the socket's network namespace


def setns_net(fd: int) -> None:
    """Move the calling thread into the network namespace behind ``fd`` (Linux)."""
    if hasattr(os, "setns"):  # Python 3.12+
        os.setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def network_namespace(fd: int) -> Iterator[None]:
    """Run the body in the network namespace behind ``fd``, then return the thread (Linux)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        setns_net(fd)
        try:
            yield
        finally:
            setns_net(home)
    finally:
        os.close(home)


@contextlib.contextmanager
def socket_namespace(sock: socket.socket | None) -> Iterator[None]:
    """Run the body in the network namespace of ``sock`` when it is not the thread's own.

    Interface names, indexes and addresses belong to a network namespace; a socket opened
    inside another namespace (as the lab does) must resolve them there. Where the namespaces
    are the same, or on platforms without them, the body simply runs.
    """
    if sock is None or PLATFORM != "linux" or sock.fileno() < 0:
        yield
        return
    try:
        target = fcntl.ioctl(sock.fileno(), _SIOCGSKNS)
    except OSError:
        yield
        return
    try:
        here = os.stat("/proc/thread-self/ns/net")
        there = os.fstat(target)
        if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
            yield
            return
        with network_namespace(target):
            yield
    finally:
        os.close(target)


def _proc_net(name: str) -> str | None:
    # /proc/thread-self/net follows the calling thread's network namespace (also after setns).
    for base in ("/proc/thread-self/net", "/proc/self/net"):
        try:
            with open(f"{base}/{name}", encoding="ascii") as handle:
                return handle.read()
        except OSError:
            continue
    return None


def kernel_memberships(family: Family) -> set[tuple[str, str]] | None:
    """Read the host's group memberships from the kernel as (interface name, group) pairs.

    Linux only (/proc/net/igmp and /proc/net/igmp6); None where they cannot be read.
    """
    if family is Family.IPV4:
        text = _proc_net("igmp")
        if text is None:
            return None
        found: set[tuple[str, str]] = set()
        device = ""
        for line in text.splitlines()[1:]:
            if not line.strip():
                continue
            if not line.startswith("\t"):
                # "1\tlo        :     2      V3"
                device = line.split("\t", 1)[1].split(":", 1)[0].strip()
                continue
            word = line.split()[0]
            group = ipaddress.IPv4Address(struct.pack("=I", int(word, 16)))
            found.add((device, str(group)))
        return found
    text = _proc_net("igmp6")
    if text is None:
        return None
    found = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            found.add((fields[1], str(ipaddress.IPv6Address(bytes.fromhex(fields[2])))))
    return found


def loopback_index() -> int | None:
    """The index of the loopback interface in the calling thread's namespace, if any."""
    for interface in list_interfaces():
        if interface.loopback:
            return interface.index
    return None


# -- choosing interfaces for join_all_interfaces (pure) -------------------------------------

#: Which interfaces ``join_all_interfaces`` joins on: None (every multicast-capable one), a
#: predicate over Interface values, or names / indexes / addresses / Interface values.
InterfaceFilter: TypeAlias = (
    "Callable[[Interface], bool] | Iterable[InterfaceLike] | InterfaceLike | None"
)


def unusable_reason(interface: Interface, family: Family) -> str | None:
    """Why ``interface`` is not joined by ``join_all_interfaces`` (None: it is joined).

    An interface is joined when it can carry multicast of ``family``, is up (IFF_UP) and has
    an address of ``family``. The kernel itself accepts joins on a down or address-less
    interface (pinned in tests/sockets/test_watch.py); aiomcast waits for them to be usable instead
    and, when following interfaces, joins them then.
    """
    if not interface.supports(family):
        why = (
            "IPv6 multicast does not loop back on it" if interface.loopback else "no IFF_MULTICAST"
        )
        return f"cannot carry {family.label} multicast ({why})"
    if not interface.up:
        return "is down"
    if not interface.addresses(family):
        return f"has no {family.label} address"
    return None


def _single(spec: object) -> bool:
    return isinstance(spec, Interface | str | int | ipaddress.IPv4Address | ipaddress.IPv6Address)


def plan_joins(
    interfaces: Sequence[Interface], family: Family, spec: InterfaceFilter
) -> list[tuple[str, Interface | None, InterfaceError | None]]:
    """Choose the interfaces a join on every interface goes to (pure).

    Returns one (name, interface, error) per candidate, in index order for None and a
    predicate, in the given order for a list: ``error`` is None for an interface to join and
    says why not otherwise (unknown, no multicast, down, no address of the family). With None
    or a predicate, interfaces that cannot carry multicast of ``family`` are not candidates.

    Raises:
        InterfaceError: ``spec`` is none of the accepted shapes.
    """
    if spec is None or (callable(spec) and not isinstance(spec, Interface)):
        chosen = [i for i in interfaces if i.supports(family)]
        if spec is not None:
            chosen = [i for i in chosen if spec(i)]
        return [_planned(i, family) for i in chosen]
    items: Iterable[Any]
    if _single(spec):
        items = [spec]
    elif isinstance(spec, Iterable) and not isinstance(spec, bytes | bytearray):
        items = spec
    else:
        raise InterfaceError(
            f"interfaces {show(spec)} must be None, a predicate, or names / indexes / addresses",
            value=spec,
        )
    plan: list[tuple[str, Interface | None, InterfaceError | None]] = []
    seen: set[int] = set()
    for item in items:
        try:
            found = select_interface(interfaces, item, None)
        except InterfaceError as exc:
            plan.append((str(item), None, exc))
            continue
        if found.index not in seen:
            seen.add(found.index)
            plan.append(_planned(found, family))
    return plan


def _planned(
    interface: Interface, family: Family
) -> tuple[str, Interface | None, InterfaceError | None]:
    reason = unusable_reason(interface, family)
    if reason is None:
        return interface.name, interface, None
    error = InterfaceError(f"interface {interface.name!r} {reason}", value=interface.name)
    return interface.name, None, error
