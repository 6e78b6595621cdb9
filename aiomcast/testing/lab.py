"""Network namespaces for tests and benchmarks: hosts on one machine, joined by veth pairs.

Multicast tests must not send anything out of the machine's own interfaces, not even a
membership report. This module builds private network namespaces with iproute2 and lets the
calling thread step into one (``setns``), so that sockets opened there belong to it::

    from aiomcast.testing import lab

    with lab.Lab() as net:
        a, b = net.host("a"), net.host("b")
        net.link(a, b, subnet=1)              # a:veth0 10.201.1.1  <->  b:veth0 10.201.1.2
        with b.entered():
            rx = await aiomcast.open_receiver("239.1.2.3", 5000, interface="veth0")
        with a.entered():
            tx = await aiomcast.open_sender("239.1.2.3", 5000, interface="veth0")

Everything it made is removed on exit, also when the body fails or is cancelled. It needs
root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and the ``ip`` command; ``lab_available()`` says
whether they are here and, if not, why.

Routers (``Lab.router``, ``routers`` in a description) forward multicast by static routes
through one of two engines, the kernel's multicast router or nftables rules on the ingress
hook; ``aiomcast.testing._routing`` describes them, and ``engine_report()`` says which this kernel
runs. Whatever the engine, a description means the same forwarding. Descriptions are read by
``parse_description`` (``aiomcast.testing._plan``), which builds nothing.

The addresses used are 10.201.N.0/24 and fd00:a10c:N::/64 inside the lab's namespaces only.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import ipaddress
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Final

from .._interfaces import network_namespace
from ._errors import LabError
from ._plan import Plan, RoutePlan, parse_description
from ._routing import (
    ENGINES,
    Engine,
    Port,
    Route,
    choose_engine,
    default_routes,
    engines_present,
)

__all__ = [
    "ENGINES",
    "Attachment",
    "Host",
    "Lab",
    "LabError",
    "LinkEnds",
    "Net",
    "Plan",
    "Route",
    "RoutePlan",
    "Router",
    "engine_report",
    "engines_present",
    "enter_private_network",
    "in_private_network",
    "lab_available",
    "leftover_namespaces",
    "parse_description",
    "sweep",
]

CLONE_NEWNET: Final = 0x40000000
_NETNS_DIR: Final = "/run/netns"
_counter = itertools.count(1)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def lab_available() -> tuple[bool, str]:
    """Return (True, "") when namespaces can be built here, else (False, the reason)."""
    if os.uname().sysname != "Linux":
        return False, "network namespaces need Linux"
    if os.geteuid() != 0:
        return False, "network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)"
    if shutil.which("ip") is None:
        return False, "the ip command (Debian package iproute2) is not installed"
    return True, ""


def _run(args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _namespace_inode(path: str) -> int:
    return os.stat(path).st_ino


#: The namespace enter_private_network() made, by inode (0: none yet).
_private_inode = 0


def in_private_network() -> bool:
    """True when the calling thread is not in the network namespace of PID 1.

    Where PID 1's namespace cannot be read (a container may forbid it even to root), True
    exactly when the thread is in the namespace enter_private_network() made.
    """
    here = _namespace_inode("/proc/thread-self/ns/net")
    try:
        return here != _namespace_inode("/proc/1/ns/net")
    except OSError:
        return bool(_private_inode) and here == _private_inode


def enter_private_network() -> None:
    """Move the calling thread into a new, empty network namespace with ``lo`` up.

    Nothing sent from it can reach the machine's own interfaces. Threads started later by
    this thread inherit the namespace; subprocesses too.
    """
    if _libc().unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise LabError(f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}")
    global _private_inode
    _private_inode = _namespace_inode("/proc/thread-self/ns/net")
    _run(["ip", "link", "set", "lo", "up"])
    _sysctls_for_tests(None)


def _sysctls_for_tests(namespace: str | None) -> None:
    # No duplicate address detection: IPv6 addresses are usable at once, not "tentative".
    # No router solicitations: the lab has no IPv6 router advertisements to ask for, and a
    # host's solicitations (sent again every few seconds after a link comes up, on Linux 6.x
    # without end) would be traffic that no test sent, seen by the captures (pinned in
    # tests/lab/test_safety.py).
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    for key in (
        "net.ipv6.conf.all.accept_dad",
        "net.ipv6.conf.default.accept_dad",
        "net.ipv6.conf.all.router_solicitations",
        "net.ipv6.conf.default.router_solicitations",
    ):
        _run([*prefix, "sysctl", "-qw", f"{key}=0"], check=False)


@dataclasses.dataclass(frozen=True)
class LinkEnds:
    """The two ends of a veth pair and their addresses."""

    a_name: str
    b_name: str
    a_ipv4: str
    b_ipv4: str
    a_ipv6: str
    b_ipv6: str


@dataclasses.dataclass(frozen=True)
class Attachment:
    """One host's interface on a numbered net."""

    host: Host
    net: int
    ifname: str
    ipv4: str
    ipv6: str
    threshold: int


@dataclasses.dataclass
class Net:
    """A numbered subnet: a veth pair (two members) or a bridge (three or more)."""

    number: int
    members: list[Attachment]

    def of(self, host: Host) -> Attachment:
        """The attachment of ``host`` to this net."""
        for attachment in self.members:
            if attachment.host is host:
                return attachment
        raise LabError(f"{host.name} is not on net {self.number}")


class Host:
    """One network namespace of a Lab (or the caller's own namespace, for ``Lab.local``)."""

    def __init__(self, name: str, netns: str | None, ifprefix: str = "veth") -> None:
        self.name = name
        self.netns = netns
        self._ifprefix = ifprefix
        self._links = itertools.count(0)
        #: This host's interfaces on the lab's numbered nets, by net number.
        self.attachments: dict[int, Attachment] = {}

    @property
    def is_router(self) -> bool:
        """True for hosts made with Lab.router (they forward multicast)."""
        return False

    def iface(self, net: int) -> str:
        """The name of this host's interface on net ``net`` (always ``n<net>``)."""
        return self._attachment(net).ifname

    def address(self, net: int, family: str = "ipv4") -> str:
        """This host's address on net ``net``: ``family`` is "ipv4" or "ipv6"."""
        attachment = self._attachment(net)
        return attachment.ipv4 if family in ("ipv4", "4") else attachment.ipv6

    def _attachment(self, net: int) -> Attachment:
        try:
            return self.attachments[net]
        except KeyError:
            raise LabError(f"{self.name} is not on net {net}") from None

    def next_ifname(self) -> str:
        """A fresh interface name in this host: veth0, veth1, ..."""
        return f"{self._ifprefix}{next(self._links)}"

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``ip`` in this host's namespace."""
        prefix = ["ip", "-n", self.netns] if self.netns else ["ip"]
        return _run([*prefix, *args], check=check)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command in this host's namespace and wait for it."""
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return _run([*prefix, *args], check=check)

    def command(self, *args: str) -> list[str]:
        """Return the argv that runs ``args`` in this host's namespace (for Popen)."""
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [*prefix, *args]

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the body with the calling thread in this host's namespace.

        Sockets and interface look-ups made in the body belong to this host; sockets keep
        their namespace after the body ends. Keep bodies short: other tasks of the same
        event loop that run meanwhile are in this namespace too.
        """
        if self.netns is None:
            yield
            return
        target = os.open(f"{_NETNS_DIR}/{self.netns}", os.O_RDONLY)
        try:
            with network_namespace(target):
                yield
        finally:
            os.close(target)

    def __repr__(self) -> str:
        return f"<Host {self.name} netns={self.netns}>"


class Router(Host):
    """A host that forwards multicast between its interfaces, by static routes.

    Each of its interfaces has a TTL threshold: a datagram is forwarded out of the interface
    only if the TTL (IPv4) or hop limit (IPv6) it arrived with is greater than the threshold,
    and it leaves with one less. Without routes of its own (``Lab.route``) a router forwards
    every group from each of its interfaces to all the others. Routers never forward
    224.0.0.0/24 or link-local IPv6 groups (S11), nor back out of the incoming interface.
    The lab's forwarding engine (``Lab.engine``) does the forwarding: see aiomcast.testing._routing.
    """

    def __init__(self, name: str, netns: str) -> None:
        super().__init__(name, netns)
        #: The routes given with Lab.route, in order (none: every group everywhere).
        self.routes: list[Route] = []
        #: The running engine, from Lab.start_routing on.
        self.engine: Engine | None = None

    @property
    def is_router(self) -> bool:
        """Always True."""
        return True

    @property
    def ports(self) -> list[Port]:
        """This router's interfaces with their thresholds, by net number."""
        return [Port(a.ifname, a.threshold) for _, a in sorted(self.attachments.items())]

    def effective_routes(self) -> list[Route]:
        """The routes given, or else (*,G) routes for every group between all interfaces."""
        return list(self.routes) if self.routes else default_routes(self.ports)

    def stop_forwarding(self) -> None:
        """Stop the engine: the router forwards nothing until ``start_forwarding``."""
        if self.engine is None:
            raise LabError(f"{self.name} is not routing: call Lab.start_routing first")
        self.engine.stop()

    def start_forwarding(self) -> None:
        """Start the engine again after ``stop_forwarding``, with the same routes."""
        if self.engine is None:
            raise LabError(f"{self.name} is not routing: call Lab.start_routing first")
        if not self.engine.running:
            self.engine.start()


class Lab:
    """A set of namespaces and veth links, removed on exit.

    ``engine`` names the routers' forwarding engine, "ipmr" or "netfilter" (``ENGINES``);
    None takes the first this kernel runs, ipmr before netfilter. A named engine that the
    kernel cannot run is refused when routing starts, with the reason.
    """

    def __init__(self, prefix: str = "amc", *, engine: str | None = None) -> None:
        ok, why = lab_available()
        if not ok:
            raise LabError(why)
        if engine is not None and engine not in ENGINES:
            raise LabError(f"forwarding engine {engine!r} is not one of {', '.join(ENGINES)}")
        self._engine_asked = engine
        self._engine: type[Engine] | None = None
        number = next(_counter)
        self.tag = f"{prefix}{os.getpid()}x{number}"
        self.hosts: dict[str, Host] = {}
        #: The caller's own namespace; its interfaces are named l<lab>v<n> and removed on exit.
        self.local = Host("local", None, ifprefix=f"l{os.getpid() % 10000}x{number}v")
        self._local_links: list[str] = []
        self._namespaces: list[str] = []
        self._subnets = itertools.count(1)
        self.nets: dict[int, Net] = {}

    def host(self, name: str) -> Host:
        """Create a namespace called ``name`` (unique within the lab) with ``lo`` up."""
        host = Host(name, self._namespace(name))
        self.hosts[name] = host
        return host

    def router(self, name: str) -> Router:
        """Create a namespace that forwards multicast (started by ``start_routing``)."""
        router = Router(name, self._namespace(name))
        self.hosts[name] = router
        for key in (
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        ):
            router.run("sysctl", "-qw", key)
        return router

    def _namespace(self, name: str) -> str:
        if name in self.hosts:
            raise LabError(f"host {name!r} exists")
        if not name.replace("_", "").isalnum() or len(name) > 12:
            raise LabError(f"host name {name!r}: letters, digits and _ only, at most 12")
        netns = f"{self.tag}-{name}"
        _run(["ip", "netns", "add", netns])
        self._namespaces.append(netns)
        _run(["ip", "-n", netns, "link", "set", "lo", "up"])
        _sysctls_for_tests(netns)
        return netns

    def __getitem__(self, name: str) -> Host:
        """The host or router called ``name``."""
        try:
            return self.hosts[name]
        except KeyError:
            raise LabError(f"no host {name!r} in the lab") from None

    def net(self, number: int, *members: Host | tuple[Router, int]) -> Net:
        """Put ``members`` on subnet ``number``: 10.201.N.0/24 and fd00:a10c:N::/64.

        Every member's interface on it is called ``n<number>`` and gets the address ending
        in its position (1, 2, ...). A member given as ``(router, threshold)`` sets the TTL
        threshold of that router's interface (default 1). Two members are joined by a veth
        pair; three or more by a bridge (without multicast snooping) in a namespace of its own.
        """
        if not 0 < number < 256:
            raise LabError(f"net {number} is outside 1-255")
        if number in self.nets:
            raise LabError(f"net {number} exists")
        if len(members) < 2:
            raise LabError(f"net {number} needs at least two members")
        ifname = f"n{number}"
        attachments: list[Attachment] = []
        for position, member in enumerate(members, start=1):
            host, threshold = member if isinstance(member, tuple) else (member, 1)
            if threshold != 1 and not host.is_router:
                raise LabError(f"{host.name} is not a router: it has no TTL threshold")
            if not 1 <= threshold <= 255:
                raise LabError(f"threshold {threshold} of {host.name} is outside 1-255")
            if number in host.attachments:
                raise LabError(f"{host.name} is on net {number} twice")
            attachments.append(
                Attachment(
                    host,
                    number,
                    ifname,
                    f"10.201.{number}.{position}",
                    f"fd00:a10c:{number:x}::{position:x}",
                    threshold,
                )
            )
        if len(attachments) == 2:
            self._veth(attachments[0].host, ifname, attachments[1].host, ifname)
        else:
            switch = self._namespace(f"sw{number}")
            _run(
                ["ip", "-n", switch, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"]
            )
            _run(["ip", "-n", switch, "link", "set", "br0", "up"])
            switch_host = Host(f"sw{number}", switch)
            for index, attachment in enumerate(attachments):
                port = f"p{index}"
                self._veth(attachment.host, ifname, switch_host, port)
                _run(["ip", "-n", switch, "link", "set", port, "master", "br0", "up"])
        for attachment in attachments:
            self._address(attachment.host, ifname, attachment.ipv4, attachment.ipv6, True, True)
            attachment.host.attachments[number] = attachment
        net = Net(number, attachments)
        self.nets[number] = net
        return net

    def _veth(self, a: Host, a_if: str, b: Host, b_if: str) -> None:
        # Create both ends with temporary names in the caller's namespace, then move them:
        # this works whichever of a and b is the caller's own namespace.
        serial = next(_counter)
        tmp_a, tmp_b = f"amctmp{serial}a", f"amctmp{serial}b"
        _run(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b])
        try:
            for tmp, host, final in ((tmp_a, a, a_if), (tmp_b, b, b_if)):
                if host.netns is not None:
                    _run(["ip", "link", "set", tmp, "netns", host.netns])
                host.ip("link", "set", tmp, "name", final)
                if host.netns is None:
                    self._local_links.append(final)
        except LabError:
            # Do not strand an end: deleting either end deletes the pair, wherever it is.
            for tmp, host in ((tmp_a, a), (tmp_b, b)):
                host.ip("link", "del", tmp, check=False)
                _run(["ip", "link", "del", tmp], check=False)
            raise

    @staticmethod
    def _address(host: Host, name: str, v4: str, v6: str, ipv4: bool, ipv6: bool) -> None:
        if ipv4:
            host.ip("addr", "add", f"{v4}/24", "dev", name)
        if ipv6:
            host.ip("addr", "add", f"{v6}/64", "dev", name, "nodad")
        else:
            host.run("sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1", check=False)
        host.ip("link", "set", name, "up")

    @property
    def engine(self) -> str | None:
        """The routers' forwarding engine, once routing started (None before)."""
        return self._engine.name if self._engine is not None else None

    def route(
        self,
        router: Router,
        inbound: int,
        outbound: Sequence[int],
        group: str,
        source: str | Host | None = None,
    ) -> Route:
        """Give ``router`` a static route, before ``start_routing``.

        Datagrams for ``group`` (one group, or a prefix such as ``239.0.0.0/8``) that arrive
        on the router's interface on net ``inbound`` leave through its interfaces on the nets
        ``outbound``. With ``source`` (an address, or a host: its address in the group's
        family) the route is (S,G) and takes only that source's datagrams; (S,G) routes are
        matched before (*,G) routes. A router given routes forwards nothing else.
        """
        if router.engine is not None:
            raise LabError(f"{router.name} is routing already: give routes before start_routing")
        try:
            network = ipaddress.ip_network(group)
        except ValueError:
            raise LabError(f"route group {group!r} is not a group or group prefix") from None
        family = "ipv4" if network.version == 4 else "ipv6"
        if isinstance(source, Host):
            source = self._source_address(source, inbound, family)
        address = None
        if source is not None:
            try:
                address = ipaddress.ip_address(source)
            except ValueError:
                raise LabError(f"route source {source!r} is not an address") from None
            if address.is_multicast or address.is_unspecified:
                raise LabError(f"route source {source!r} is not a unicast address")
        route = Route(
            router.iface(inbound),
            network,
            tuple(router.iface(number) for number in outbound),
            address,
        )
        router.routes.append(route)
        return route

    @staticmethod
    def _source_address(host: Host, inbound: int, family: str) -> str:
        if inbound in host.attachments:
            return host.address(inbound, family)
        if len(host.attachments) == 1:
            (attachment,) = host.attachments.values()
            return attachment.ipv4 if family == "ipv4" else attachment.ipv6
        raise LabError(
            f"{host.name} is on several nets, none of them {inbound}: give its address instead"
        )

    def start_routing(self) -> None:
        """Give single-homed hosts their routes and start every router's forwarding.

        A host on one net sends multicast (and IPv4/IPv6 unicast by default) into that net,
        towards its first router. The engine is chosen here (see ``Lab``). Returns once every
        router's routes are in place.
        """
        for host in self.hosts.values():
            if host.is_router or len(host.attachments) != 1:
                continue
            (attachment,) = host.attachments.values()
            net = self.nets[attachment.net]
            host.ip("route", "add", "224.0.0.0/4", "dev", attachment.ifname)
            gateway = next((m for m in net.members if m.host.is_router), None)
            if gateway is not None:
                host.ip("route", "add", "default", "via", gateway.ipv4)
                host.ip("-6", "route", "add", "default", "via", gateway.ipv6)
        routers = [h for h in self.hosts.values() if isinstance(h, Router) and h.attachments]
        if not routers:
            return
        if self._engine is None:
            self._engine = choose_engine(self._engine_asked)
        for router in routers:
            assert router.netns is not None
            router.engine = self._engine(router.netns, router.ports, router.effective_routes())
            router.engine.start()

    def build(self, description: str) -> Lab:
        """Build a topology from a short description and start its routers.

        One statement per line; ``#`` starts a comment::

            routers r1 r2
            hosts src h1 h2
            net 1 src h1 r1          # src, h1 and r1 share subnet 1 (a bridge)
            net 2 r1/1 h2 r2         # r1's interface on net 2 has TTL threshold 1
            net 3 r2/31 h3           # forwarded into net 3 only if it arrived with TTL > 31
            route r2 from 2 to 3 group 232.1.1.1 source src    # an (S,G) route (Lab.route)
            route r2 from 2 to 3 group 239.0.0.0/8             # a (*,G) route

        Nets and routers must form a tree (no forwarding loops). A router without ``route``
        statements forwards every group between all its interfaces; one with them forwards
        only what they say. The whole description is read (``parse_description``) before
        anything is built. Returns the lab.
        """
        plan = parse_description(description)
        for name in plan.order:
            if name in plan.routers:
                self.router(name)
            else:
                self.host(name)
        for net_number, members in plan.nets:
            resolved: list[Host | tuple[Router, int]] = []
            for name, threshold in members:
                host = self.hosts[name]
                if threshold is None:
                    resolved.append(host)
                elif isinstance(host, Router):
                    resolved.append((host, threshold))
                else:
                    raise LabError(f"{name} is not a router: it has no TTL threshold")
            self.net(net_number, *resolved)
        for route in plan.routes:
            router = self.hosts[route.router]
            assert isinstance(router, Router)
            source: str | Host | None = route.source
            if route.source is not None and route.source in self.hosts:
                source = self.hosts[route.source]
            self.route(router, route.inbound, route.outbound, route.group, source)
        self.start_routing()
        return self

    def link(
        self,
        a: Host,
        b: Host,
        *,
        subnet: int | None = None,
        a_name: str | None = None,
        b_name: str | None = None,
        multicast: bool = True,
        ipv4: bool = True,
        ipv6: bool = True,
    ) -> LinkEnds:
        """Join ``a`` and ``b`` with a veth pair addressed 10.201.N.1-2/24, fd00:a10c:N::1-2/64."""
        n = subnet if subnet is not None else next(self._subnets)
        if not 0 < n < 256:
            raise LabError(f"subnet {n} is outside 1-255")
        a_if = a_name or a.next_ifname()
        b_if = b_name or b.next_ifname()
        self._veth(a, a_if, b, b_if)
        if not multicast:
            a.ip("link", "set", a_if, "multicast", "off")
            b.ip("link", "set", b_if, "multicast", "off")
        ends = LinkEnds(
            a_if,
            b_if,
            f"10.201.{n}.1",
            f"10.201.{n}.2",
            f"fd00:a10c:{n:x}::1",
            f"fd00:a10c:{n:x}::2",
        )
        self._address(a, a_if, ends.a_ipv4, ends.a_ipv6, ipv4, ipv6)
        self._address(b, b_if, ends.b_ipv4, ends.b_ipv6, ipv4, ipv6)
        return ends

    def close(self) -> None:
        """Stop every router's engine and delete every namespace and link the lab made."""
        errors = []
        for host in self.hosts.values():
            if isinstance(host, Router) and host.engine is not None:
                # Daemons end here; rulesets end with the router's namespace below.
                host.engine.release()
                host.engine = None
        for name in self._local_links:
            # Deleting one end of a veth pair deletes both; the other may be gone already.
            _run(["ip", "link", "del", name], check=False)
        self._local_links.clear()
        for netns in self._namespaces:
            result = _run(["ip", "netns", "del", netns], check=False)
            if result.returncode != 0 and "No such file" not in result.stderr:
                errors.append(result.stderr.strip())
        self._namespaces.clear()
        self.hosts.clear()
        self.nets.clear()
        if errors:
            raise LabError("; ".join(errors))

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def engine_report() -> str:
    """One line naming each forwarding engine and whether this kernel runs it, or why not."""
    return "; ".join(f"{name}: {why or 'present'}" for name, why in engines_present().items())


def leftover_namespaces(prefix: str = "amc") -> list[str]:
    """Names of namespaces under /run/netns that start with ``prefix`` (for clean-up checks)."""
    try:
        return sorted(n for n in os.listdir(_NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def sweep(owner_pid: int | None = None) -> list[str]:
    """Remove namespaces a lab of process ``owner_pid`` (default: this one) left behind.

    Kills what still runs inside them (router daemons, captures) first. Returns their names.
    Labs remove themselves on exit; this is the safety net for a process that was killed.
    """
    pid = os.getpid() if owner_pid is None else owner_pid
    pattern = re.compile(rf"^amc[a-z]*{pid}x\d+-")
    removed = []
    for name in leftover_namespaces("amc"):
        if not pattern.match(name):
            continue
        pids = _run(["ip", "netns", "pids", name], check=False).stdout.split()
        for victim in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(victim), 9)
        _run(["ip", "netns", "del", name], check=False)
        removed.append(name)
    return removed
