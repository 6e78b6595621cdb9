"""How the lab's routers forward multicast: two engines behind one description.

A lab router has ports (its interfaces, each with a TTL threshold) and static routes: from
one port, for a group or group prefix and optionally one source, to some of its other ports.
A datagram that arrives with TTL (IPv4) or hop limit (IPv6) N leaves an outgoing port whose
threshold is T only if N > T, and it leaves with N - 1: one decrement per router. Nothing is
sent back out of the port it came in on, and the link-local groups are never forwarded
(224.0.0.0/24; IPv6 scopes 0, 1 and 2).

Two engines carry that out, so that the lab works on every kernel it meets:

- ``ipmr``: the kernel's multicast router (``CONFIG_IP_MROUTE``, ``CONFIG_IPV6_MROUTE``),
  driven by smcroute's daemon. The kernel enforces IPv4 thresholds. Linux's IPv6 multicast
  router ignores them (pinned in tests/lab/test_lab.py), so an nftables rule on the forward hook
  drops what is below an IPv6 threshold.
- ``netfilter``: nftables rules on the ingress hook of each port (the netdev family,
  ``CONFIG_NF_TABLES_NETDEV`` and ``CONFIG_NF_DUP_NETDEV``), with no multicast routing in the
  kernel at all. One rule per arriving TTL takes one off (nftables has no arithmetic on a
  header field, so each value is its own rule) and goes on to the port's routes; a route
  copies the datagram out of each port whose threshold it passes (``dup to``), a layer-2
  frame as the kernel's router would send it.

The configuration each engine loads is made by pure functions of the ports and routes
(``smcroute_conf``, ``ip6_threshold_rules``, ``netfilter_ruleset``), tested from tables
without root. The engines themselves only start and stop what those functions describe,
inside the router's network namespace.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import ctypes.util
import dataclasses
import errno
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import ClassVar, Final, TypeVar

from ._errors import LabError

__all__ = [
    "ENGINES",
    "IP6_THRESHOLD_TABLE",
    "NETFILTER_TABLE",
    "Engine",
    "Ipmr",
    "LabError",
    "Netfilter",
    "Port",
    "Route",
    "choose_engine",
    "default_routes",
    "engines_present",
    "ip6_threshold_rules",
    "netfilter_ruleset",
    "smcroute_conf",
]

#: The nftables table (family ip6) with which the ipmr engine enforces IPv6 thresholds.
IP6_THRESHOLD_TABLE: Final = "aiomcast_scope"
#: The nftables table (family netdev) that holds the netfilter engine's routes.
NETFILTER_TABLE: Final = "aiomcast_forward"

# linux/mroute.h and linux/mroute6.h: the first option of each multicast routing API.
MRT_INIT: Final = 200
MRT6_INIT: Final = 200

Group = ipaddress.IPv4Network | ipaddress.IPv6Network
Source = ipaddress.IPv4Address | ipaddress.IPv6Address

ALL_IPV4: Final = ipaddress.IPv4Network("224.0.0.0/4")
ALL_IPV6: Final = ipaddress.IPv6Network("ff00::/8")


@dataclasses.dataclass(frozen=True)
class Port:
    """A router's interface: its name and TTL threshold (forwarded out only if TTL > it)."""

    name: str
    threshold: int


@dataclasses.dataclass(frozen=True)
class Route:
    """A static multicast route: (*,G) when ``source`` is None, (S,G) otherwise.

    ``group`` is one group or a prefix of groups (``239.0.0.0/8``), of the same family as
    ``source``. Datagrams for it that arrive on ``inbound`` leave through ``outbound``.
    """

    inbound: str
    group: Group
    outbound: tuple[str, ...]
    source: Source | None = None

    def __post_init__(self) -> None:
        if not self.group.is_multicast:
            raise LabError(f"route group {self.group} is not a multicast range")
        if self.source is not None and self.source.version != self.group.version:
            raise LabError(f"route source {self.source} is not of the family of {self.group}")
        if not self.outbound:
            raise LabError(f"route from {self.inbound} for {self.group} goes nowhere")
        if self.inbound in self.outbound:
            raise LabError(
                f"route for {self.group} would send back out of {self.inbound}, where it came in"
            )

    @property
    def specificity(self) -> tuple[int, int]:
        """Sort key: (S,G) routes before (*,G), longer group prefixes before shorter ones."""
        return (0 if self.source is not None else 1, -self.group.prefixlen)


def default_routes(ports: Sequence[Port]) -> list[Route]:
    """(*,G) routes for every IPv4 and IPv6 group, from each port to all the others."""
    routes = []
    for port in ports:
        others = tuple(p.name for p in ports if p.name != port.name)
        if others:
            routes.append(Route(port.name, ALL_IPV4, others))
            routes.append(Route(port.name, ALL_IPV6, others))
    return routes


def _prefix(group: Group) -> str:
    """A group as one address when it is one, else as a prefix."""
    full = group.max_prefixlen == group.prefixlen
    return str(group.network_address) if full else str(group)


def _check(ports: Sequence[Port], routes: Sequence[Route]) -> dict[str, int]:
    thresholds = {p.name: p.threshold for p in ports}
    for route in routes:
        for name in (route.inbound, *route.outbound):
            if name not in thresholds:
                raise LabError(f"route for {route.group} names {name}, not a port of the router")
    return thresholds


# -- ipmr: smcroute and the kernel ------------------------------------------------------------


def smcroute_conf(ports: Sequence[Port], routes: Sequence[Route]) -> str:
    """The smcroute configuration: every port enabled with its threshold, then the routes.

    Routes are written most specific first, the order in which the netfilter engine matches
    them, so that overlapping routes mean the same on both engines.
    """
    _check(ports, routes)
    lines = [f"phyint {p.name} enable ttl-threshold {p.threshold}" for p in ports]
    for route in sorted(routes, key=lambda r: r.specificity):
        source = f" source {route.source}" if route.source is not None else ""
        group = _prefix(route.group)
        lines.append(
            f"mroute from {route.inbound}{source} group {group} to {' '.join(route.outbound)}"
        )
    return "\n".join(lines) + "\n"


def ip6_threshold_rules(ports: Sequence[Port]) -> str:
    """The nftables rules (forward hook) dropping forwarded IPv6 multicast below each threshold.

    The forward hook sees the hop limit after the router decremented it, so "arrived with
    more than T" is "is at least T" there.
    """
    rules = [
        f'        oifname "{p.name}" ip6 daddr ff00::/8 ip6 hoplimit < {p.threshold} counter drop'
        for p in ports
        if p.threshold > 1
    ]
    body = "\n".join(rules)
    return (
        f"table ip6 {IP6_THRESHOLD_TABLE} {{\n"
        "    chain forward {\n"
        "        type filter hook forward priority 0; policy accept;\n"
        f"{body}\n"
        "    }\n"
        "}\n"
    )


# -- netfilter: nftables rules on each port's ingress hook ------------------------------------

# Per family: the header field that counts hops, the whole multicast range, and the rule that
# lets link-local groups through to the router's own stack without forwarding them.
_FAMILIES: Final = {
    4: ("ip", "ip ttl", "224.0.0.0/4", "ip daddr 224.0.0.0/24 accept"),
    6: (
        "ip6",
        "ip6 hoplimit",
        "ff00::/8",
        "ip6 daddr & ff0f:: == { ff00::, ff01::, ff02:: } accept",
    ),
}


def netfilter_ruleset(ports: Sequence[Port], routes: Sequence[Route]) -> str:
    """The netfilter engine's nftables table for these ports and routes.

    Per port and family: a base chain on the port's ingress hook lets link-local groups and
    TTL 0-1 through unforwarded, takes one off every other TTL and goes to the port's route
    chain. That chain jumps to the first route that matches, (S,G) before (*,G) and longer
    prefixes first; a route's chain copies the datagram out of each outgoing port whose
    threshold the decremented TTL still reaches (arrived with N > T is N - 1 >= T).
    """
    thresholds = _check(ports, routes)
    # Chains are written before the chains that jump to them.
    chains: list[tuple[str, list[str]]] = []
    for port in ports:
        for version, (proto, hops, everything, local) in _FAMILIES.items():
            mine = sorted(
                (r for r in routes if r.inbound == port.name and r.group.version == version),
                key=lambda r: r.specificity,
            )
            if not mine:
                continue
            dispatch = f"v{version}_{port.name}"
            jumps = []
            for number, route in enumerate(mine):
                target = f"{dispatch}_route{number}"
                match = f"{proto} saddr {route.source} " if route.source is not None else ""
                jumps.append(f"{match}{proto} daddr {_prefix(route.group)} jump {target}")
                copies = [f'{hops} >= {thresholds[out]} dup to "{out}"' for out in route.outbound]
                chains.append((target, [*copies, "accept"]))
            chains.append((dispatch, jumps))
            base = [
                f'type filter hook ingress device "{port.name}" priority 0; policy accept;',
                local,
                f"{proto} daddr {everything} {hops} 0-1 accept",
            ]
            base += [
                f"{proto} daddr {everything} {hops} {n} {hops} set {n - 1} goto {dispatch}"
                for n in range(2, 256)
            ]
            chains.append((f"in{version}_{port.name}", base))
    text = [f"table netdev {NETFILTER_TABLE} {{"]
    for name, rules in chains:
        text.append(f"    chain {name} {{")
        text += [f"        {rule}" for rule in rules]
        text.append("    }")
    text.append("}")
    return "\n".join(text) + "\n"


# -- the engines -------------------------------------------------------------------------------


def _in_namespace(netns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", netns, *args]


def _nft(netns: str, ruleset: str, *flags: str) -> None:
    result = subprocess.run(
        _in_namespace(netns, "nft", *flags, "-f", "-"),
        input=ruleset,
        text=True,
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise LabError(f"nft in {netns} failed: {result.stderr.strip()[:2000]}")


T = TypeVar("T")
CLONE_NEWNET: Final = 0x40000000


def in_fresh_network(probe: Callable[[], T]) -> T:
    """Run ``probe`` in a thread of its own moved into a new, empty network namespace.

    The engines' kernel probes run here, so that asking for a multicast routing socket never
    touches the caller's namespace (it may be the host's own). Subprocesses the probe starts
    are in that namespace too. Where the thread cannot move (no CAP_SYS_ADMIN), the probe
    runs where it is: it changes nothing that lasts.
    """
    found: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.unshare(CLONE_NEWNET)  # the namespace goes with the thread
        try:
            found.append(probe())
        except BaseException as exc:  # handed to the caller below
            failed.append(exc)

    thread = threading.Thread(target=run, name="aiomcast-lab-probe")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return found[0]


def _need(programs: Sequence[tuple[str, str]]) -> None:
    for program, package in programs:
        if shutil.which(program) is None:
            raise LabError(f"{program} (Debian package {package}) is not installed")


class Engine(abc.ABC):
    """One router's forwarding, started and stopped in the router's namespace."""

    #: The name by which a lab chooses the engine.
    name: ClassVar[str]
    #: The kernel options it needs, for messages.
    kernel_options: ClassVar[str]
    #: (program, Debian package) pairs it runs.
    programs: ClassVar[tuple[tuple[str, str], ...]]

    def __init__(self, netns: str, ports: Sequence[Port], routes: Sequence[Route]) -> None:
        _check(ports, routes)
        self.netns = netns
        self.ports = tuple(ports)
        self.routes = tuple(routes)

    @classmethod
    @abc.abstractmethod
    def missing(cls) -> str:
        """Why this kernel cannot run the engine, or "" when it can (programs aside)."""

    @abc.abstractmethod
    def start(self) -> None:
        """Start forwarding; returns once the routes are in place."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop forwarding: afterwards the router forwards nothing until started again."""

    @abc.abstractmethod
    def release(self) -> None:
        """The router's namespace is about to go, and its rulesets with it: end the rest."""

    @property
    @abc.abstractmethod
    def running(self) -> bool:
        """True between start and stop."""


class Ipmr(Engine):
    """The kernel's multicast router, driven by smcrouted with the lab's configuration."""

    name = "ipmr"
    kernel_options = "CONFIG_IP_MROUTE and CONFIG_IPV6_MROUTE"
    programs = (("smcrouted", "smcroute"), ("nft", "nftables"))

    def __init__(self, netns: str, ports: Sequence[Port], routes: Sequence[Route]) -> None:
        super().__init__(netns, ports, routes)
        self.daemon: subprocess.Popen[bytes] | None = None
        self.workdir: str | None = None
        self._thresholds = False  # the IPv6 threshold table is loaded

    @classmethod
    def missing(cls) -> str:
        """Ask the kernel: MRT_INIT and MRT6_INIT on raw sockets (refused: no such option).

        Needs CAP_NET_RAW. Asked in a new network namespace (``in_fresh_network``); another
        multicast router there (EADDRINUSE, where the thread could not move) proves the option
        exists.
        """
        return in_fresh_network(cls._ask)

    @staticmethod
    def _ask() -> str:
        probes = (
            (socket.AF_INET, socket.IPPROTO_IGMP, socket.IPPROTO_IP, MRT_INIT, "CONFIG_IP_MROUTE"),
            (
                socket.AF_INET6,
                socket.IPPROTO_ICMPV6,
                socket.IPPROTO_IPV6,
                MRT6_INIT,
                "CONFIG_IPV6_MROUTE",
            ),
        )
        for family, protocol, level, option, config in probes:
            try:
                with socket.socket(family, socket.SOCK_RAW, protocol) as probe:
                    probe.setsockopt(level, option, 1)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                if exc.errno == errno.ENOPROTOOPT:
                    return f"the kernel has no multicast routing ({config} is not set)"
                return f"cannot ask the kernel for multicast routing: {exc}"
        return ""

    def start(self) -> None:
        """Write the configuration, load the IPv6 threshold rules and start smcrouted."""
        _need(self.programs)
        if any(p.threshold > 1 for p in self.ports):
            _nft(self.netns, ip6_threshold_rules(self.ports))
            self._thresholds = True
        self.workdir = tempfile.mkdtemp(prefix=f"{self.netns}-")
        conf, sock, pid, log = (
            os.path.join(self.workdir, f) for f in ("r.conf", "r.sock", "r.pid", "r.log")
        )
        with open(conf, "w", encoding="ascii") as handle:
            handle.write(smcroute_conf(self.ports, self.routes))
        with open(log, "wb") as out:
            self.daemon = subprocess.Popen(
                _in_namespace(
                    self.netns,
                    *("smcrouted", "-n", "-N", "-f", conf, "-u", sock, "-P", pid, "-l", "info"),
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise LabError(f"smcrouted in {self.netns} exited: {_tail(log)}")
            if os.path.exists(pid):
                return
            time.sleep(0.02)
        raise LabError(f"smcrouted in {self.netns} did not start: {_tail(log)}")

    def stop(self) -> None:
        """Stop smcrouted (closing its routing socket flushes the kernel's routes)."""
        self.release()
        if self._thresholds:
            _nft(self.netns, f"delete table ip6 {IP6_THRESHOLD_TABLE}\n")
            self._thresholds = False

    def release(self) -> None:
        """Stop smcrouted and remove its files."""
        if self.daemon is not None:
            self.daemon.terminate()
            try:
                self.daemon.wait(5)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(5)
            self.daemon = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    @property
    def running(self) -> bool:
        """True while smcrouted runs."""
        return self.daemon is not None and self.daemon.poll() is None


#: What the netfilter probe asks the kernel to accept (``nft --check``, nothing is loaded).
_NETFILTER_PROBE: Final = (
    f"table netdev {NETFILTER_TABLE}_probe {{\n"
    "    chain probe {\n"
    '        type filter hook ingress device "lo" priority 0; policy accept;\n'
    '        ip daddr 224.0.0.0/4 ip ttl 2 ip ttl set 1 dup to "lo"\n'
    '        ip6 daddr ff00::/8 ip6 hoplimit 2 ip6 hoplimit set 1 dup to "lo"\n'
    "    }\n"
    "}\n"
)


class Netfilter(Engine):
    """Forwarding by nftables rules on each port's ingress hook (no kernel multicast routing)."""

    name = "netfilter"
    kernel_options = "CONFIG_NF_TABLES_NETDEV and CONFIG_NF_DUP_NETDEV"
    programs = (("nft", "nftables"),)

    def __init__(self, netns: str, ports: Sequence[Port], routes: Sequence[Route]) -> None:
        super().__init__(netns, ports, routes)
        self._loaded = False

    @classmethod
    def missing(cls) -> str:
        """Ask the kernel to check an ingress chain that rewrites the TTL and duplicates.

        Without ``nft`` the kernel cannot be asked: the engine counts as present, and
        starting it then fails, naming the package.
        """
        if shutil.which("nft") is None:
            return ""
        result = in_fresh_network(
            lambda: subprocess.run(
                ["nft", "--check", "-f", "-"],
                input=_NETFILTER_PROBE,
                text=True,
                capture_output=True,
                check=False,
            )
        )
        if result.returncode != 0:
            return (
                f"the kernel refuses netdev ingress rules ({cls.kernel_options}): "
                f"{result.stderr.strip()[:300]}"
            )
        return ""

    def start(self) -> None:
        """Load the table."""
        _need(self.programs)
        _nft(self.netns, netfilter_ruleset(self.ports, self.routes))
        self._loaded = True

    def stop(self) -> None:
        """Delete the table: every route goes at once."""
        if self._loaded:
            _nft(self.netns, f"delete table netdev {NETFILTER_TABLE}\n")
            self._loaded = False

    def release(self) -> None:
        """Nothing runs outside the kernel: the table goes with the namespace."""
        self._loaded = False

    @property
    def running(self) -> bool:
        """True while the table is loaded."""
        return self._loaded


#: The engines by name, in the order ``choose_engine`` prefers them.
ENGINES: Final[dict[str, type[Engine]]] = {Ipmr.name: Ipmr, Netfilter.name: Netfilter}


def engines_present() -> dict[str, str]:
    """Each engine's name and why this kernel cannot run it ("" when it can)."""
    return {name: engine.missing() for name, engine in ENGINES.items()}


def choose_engine(name: str | None) -> type[Engine]:
    """The engine called ``name``, or with None the first this kernel runs (ipmr first).

    Raises:
        LabError: an unknown name, or an engine this kernel cannot run, with the reason.
    """
    if name is not None:
        if name not in ENGINES:
            raise LabError(f"forwarding engine {name!r} is not one of {', '.join(ENGINES)}")
        why = ENGINES[name].missing()
        if why:
            raise LabError(f"forwarding engine {name!r} cannot run here: {why}")
        return ENGINES[name]
    reasons = []
    for candidate in ENGINES.values():
        why = candidate.missing()
        if not why:
            return candidate
        reasons.append(f"{candidate.name}: {why}")
    raise LabError("no forwarding engine can run here: " + "; ".join(reasons))


def _tail(path: str, lines: int = 5) -> str:
    with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as handle:
        return " | ".join(handle.read().splitlines()[-lines:])
    return "(no log)"
