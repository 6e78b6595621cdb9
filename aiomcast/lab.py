"""Network namespaces for tests and benchmarks: hosts on one machine, joined by veth pairs.

Multicast tests must not send anything out of the machine's own interfaces, not even a
membership report. This module builds private network namespaces with iproute2 and lets the
calling thread step into one (``setns``), so that sockets opened there belong to it::

    from aiomcast import lab

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

The addresses used are 10.201.N.0/24 and fd00:a10c:N::/64 inside the lab's namespaces only.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Final

from ._interfaces import setns_net

__all__ = [
    "Host",
    "Lab",
    "LabError",
    "LinkEnds",
    "enter_private_network",
    "in_private_network",
    "lab_available",
]

CLONE_NEWNET: Final = 0x40000000
_NETNS_DIR: Final = "/run/netns"
_counter = itertools.count(1)


class LabError(RuntimeError):
    """The lab could not build or remove a namespace, link or address."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


_setns = setns_net


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


def in_private_network() -> bool:
    """True when the calling thread is not in the network namespace of PID 1."""
    try:
        return _namespace_inode("/proc/thread-self/ns/net") != _namespace_inode("/proc/1/ns/net")
    except OSError:
        return False


def enter_private_network() -> None:
    """Move the calling thread into a new, empty network namespace with ``lo`` up.

    Nothing sent from it can reach the machine's own interfaces. Threads started later by
    this thread inherit the namespace; subprocesses too.
    """
    if _libc().unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise LabError(f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}")
    _run(["ip", "link", "set", "lo", "up"])
    _sysctls_for_tests(None)


def _sysctls_for_tests(namespace: str | None) -> None:
    # No duplicate address detection: IPv6 addresses are usable at once, not "tentative".
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    for key in ("net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"):
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


class Host:
    """One network namespace of a Lab (or the caller's own namespace, for ``Lab.local``)."""

    def __init__(self, name: str, netns: str | None, ifprefix: str = "veth") -> None:
        self.name = name
        self.netns = netns
        self._ifprefix = ifprefix
        self._links = itertools.count(0)

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
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(f"{_NETNS_DIR}/{self.netns}", os.O_RDONLY)
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(home)

    def __repr__(self) -> str:
        return f"<Host {self.name} netns={self.netns}>"


class Lab:
    """A set of namespaces and veth links, removed on exit."""

    def __init__(self, prefix: str = "amc") -> None:
        ok, why = lab_available()
        if not ok:
            raise LabError(why)
        number = next(_counter)
        self.tag = f"{prefix}{os.getpid()}x{number}"
        self.hosts: dict[str, Host] = {}
        #: The caller's own namespace; its interfaces are named l<lab>v<n> and removed on exit.
        self.local = Host("local", None, ifprefix=f"l{os.getpid() % 10000}x{number}v")
        self._local_links: list[str] = []
        self._subnets = itertools.count(1)

    def host(self, name: str) -> Host:
        """Create a namespace called ``name`` (unique within the lab) with ``lo`` up."""
        if name in self.hosts:
            raise LabError(f"host {name!r} exists")
        netns = f"{self.tag}-{name}"
        _run(["ip", "netns", "add", netns])
        host = Host(name, netns)
        self.hosts[name] = host
        host.ip("link", "set", "lo", "up")
        _sysctls_for_tests(netns)
        return host

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
        # Create both ends with temporary names in the caller's namespace, then move them:
        # this works whichever of a and b is the caller's own namespace.
        serial = next(_counter)
        tmp_a, tmp_b = f"amctmp{serial}a", f"amctmp{serial}b"
        _run(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b])
        for tmp, host, final in ((tmp_a, a, a_if), (tmp_b, b, b_if)):
            if host.netns is not None:
                _run(["ip", "link", "set", tmp, "netns", host.netns])
            host.ip("link", "set", tmp, "name", final)
            if not multicast:
                host.ip("link", "set", final, "multicast", "off")
        for host, name in ((a, a_if), (b, b_if)):
            if host.netns is None:
                self._local_links.append(name)
        ends = LinkEnds(
            a_if,
            b_if,
            f"10.201.{n}.1",
            f"10.201.{n}.2",
            f"fd00:a10c:{n:x}::1",
            f"fd00:a10c:{n:x}::2",
        )
        for host, name, v4, v6 in (
            (a, a_if, ends.a_ipv4, ends.a_ipv6),
            (b, b_if, ends.b_ipv4, ends.b_ipv6),
        ):
            if ipv4:
                host.ip("addr", "add", f"{v4}/24", "dev", name)
            if ipv6:
                host.ip("addr", "add", f"{v6}/64", "dev", name, "nodad")
            else:
                host.run("sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1", check=False)
            host.ip("link", "set", name, "up")
        return ends

    def close(self) -> None:
        """Delete every namespace of the lab (their links go with them)."""
        errors = []
        for name in self._local_links:
            # Deleting one end of a veth pair deletes both; the other may be gone already.
            _run(["ip", "link", "del", name], check=False)
        self._local_links.clear()
        for host in self.hosts.values():
            result = _run(["ip", "netns", "del", str(host.netns)], check=False)
            if result.returncode != 0 and "No such file" not in result.stderr:
                errors.append(result.stderr.strip())
        self.hosts.clear()
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


def leftover_namespaces(prefix: str = "amc") -> list[str]:
    """Names of namespaces under /run/netns that start with ``prefix`` (for clean-up checks)."""
    try:
        return sorted(n for n in os.listdir(_NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []
