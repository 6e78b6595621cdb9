"""Shared test helpers: links, root and capabilities, collecting datagrams, kernel checks.

Like h11's ConnectionPair, these build the common shapes once so tests state only what they
prove.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pathlib
import socket
import struct
import subprocess
import time

import pytest

import aiomcast
from aiomcast._interfaces import kernel_memberships
from aiomcast.testing import lab

IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)  # linux/in.h; Python does not export it

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclasses.dataclass(frozen=True)
class Link:
    """An interface to run a single-host test on, with its address and a test group."""

    family: str
    interface: str
    address: str
    group: str

    @property
    def fam(self) -> aiomcast.Family:
        return aiomcast.parse_family(self.family)

    def other_group(self, n: int = 1) -> str:
        """Another group of the same family and scope."""
        if self.family == "ipv4":
            return f"239.1.2.{3 + n}"
        return f"ff12::1:2:{3 + n:x}"


@dataclasses.dataclass(frozen=True)
class LinkPair:
    ipv4: Link
    ipv6: Link
    peer_name: str


def transport_for(fast: bool) -> str:
    """The openers' ``transport=`` for a test run with aiomcast's (fast) or the loop's transport."""
    return "batch" if fast else "loop"


def require_root(what: str) -> None:
    """Skip (or fail under CI) when namespaces cannot be built here."""
    ok, why = lab.lab_available()
    if ok:
        return
    message = f"{what} needs network namespaces: {why}"
    if IN_CI:
        pytest.fail(f"CI is set, so this must run: {message}")
    pytest.skip(message)


#: Capability bit numbers (linux/capability.h) of the capabilities tests ask about.
CAPABILITIES = {"CAP_NET_ADMIN": 12}


def has_capability(name: str) -> bool:
    """Whether the process holds capability ``name`` where the kernel's capable() looks.

    That is the effective set (CapEff in /proc/self/status) in the initial user namespace:
    a capability held only inside another user namespace (a rootless container) does not
    let a process past a capable() check, so it does not count.
    """
    status = pathlib.Path("/proc/self/status")
    uid_map = pathlib.Path("/proc/self/uid_map")
    try:
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        initial = uid_map.read_text().split() == ["0", "0", "4294967295"]
    except OSError:
        return False
    effective = int(fields.get("CapEff", "0").strip(), 16)
    return initial and bool(effective >> CAPABILITIES[name] & 1)


def require_capability(name: str, what: str) -> None:
    """Skip (or fail under CI) unless the process holds capability ``name``."""
    if has_capability(name):
        return
    message = f"{what} needs {name}, which this process does not hold"
    if IN_CI:
        pytest.fail(f"CI is set, so this must run: {message}")
    pytest.skip(message)


async def collect(
    rx: aiomcast.Receiver | aiomcast.Endpoint, count: int, timeout: float = 2.0
) -> list[aiomcast.Datagram]:
    """Receive up to ``count`` datagrams, stopping early after ``timeout`` seconds."""
    got: list[aiomcast.Datagram] = []
    try:
        async with asyncio.timeout(timeout):
            async for datagram in rx:
                got.append(datagram)
                if len(got) >= count:
                    break
    except TimeoutError:
        pass
    return got


async def nothing_arrives(rx: aiomcast.Receiver | aiomcast.Endpoint, wait: float = 0.3) -> bool:
    """True when no datagram arrives within ``wait`` seconds."""
    return not await collect(rx, 1, wait)


def member(family: str, interface: str, group: str) -> bool:
    """Whether the kernel lists a membership of ``group`` on ``interface`` (this namespace)."""
    found = kernel_memberships(aiomcast.parse_family(family))
    assert found is not None, "/proc/net/igmp(6) is not readable"
    normalized = str(aiomcast.Group(group).address)
    return (interface, normalized) in found


def ttl_probe(link: Link, group: str, port: int) -> socket.socket:
    """A plain socket joined to ``group`` that reports the received TTL / hop limit."""
    if link.family == "ipv4":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        index = socket.if_nametoindex(link.interface)
        mreqn = socket.inet_aton(group) + socket.inet_aton(link.address) + struct.pack("@i", index)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    else:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", port))
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        index = socket.if_nametoindex(link.interface)
        mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    sock.settimeout(2.0)
    return sock


def received_ttl(sock: socket.socket) -> tuple[bytes, int]:
    """Receive one datagram on a ttl_probe socket: (payload, TTL or hop limit)."""
    data, ancdata, _flags, _addr = sock.recvmsg(65535, socket.CMSG_SPACE(4))
    for level, kind, value in ancdata:
        if (level, kind) in (
            (socket.IPPROTO_IP, socket.IP_TTL),
            (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT),
        ):
            return data, int(struct.unpack("@i", value[:4])[0])
    raise AssertionError(f"no TTL in ancillary data {ancdata!r}")


def start_capture(
    host: lab.Host,
    interface: str,
    expression: str = "",
    *,
    verbosity: str = "-v",
    direction: str = "inout",
) -> subprocess.Popen[str]:
    """Start tcpdump on ``interface`` in ``host``; returns once the capture is live.

    ``verbosity`` "-vv" also prints the source lists of IGMPv3 / MLDv2 group records.
    ``direction`` "in" or "out" captures only what arrives or leaves (tcpdump's ``-Q``).
    """
    argv = ["tcpdump", "-i", interface, "-Q", direction, "-nn", "-l", "-U", "-p", verbosity]
    if expression:
        argv.append(expression)
    proc = subprocess.Popen(
        host.command(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    said = []
    for _ in range(5):  # "listening on IF, ..." once the capture is live
        line = proc.stderr.readline()
        said.append(line)
        if "listening on" in line:
            return proc
    proc.kill()
    proc.communicate()
    raise AssertionError(f"tcpdump did not start: {said}")


def stop_capture(proc: subprocess.Popen[str], settle: float = 0.5) -> list[str]:
    """Stop a capture after ``settle`` seconds; return its packet lines (verbose: joined)."""
    time.sleep(settle)
    proc.terminate()
    out, _err = proc.communicate(timeout=10)
    packets: list[str] = []
    for line in out.splitlines():
        if not line.strip():
            continue
        if line[:1].isspace() and packets:
            packets[-1] += " " + line.strip()  # tcpdump -v continues a packet indented
        else:
            packets.append(line)
    return packets


#: The datagram sizes at the edges, per family: empty, one byte, the largest unfragmented on a
#: 1500-byte MTU and one more, the largest a UDP datagram carries.
EDGES = {"ipv4": [0, 1, 1472, 1473, 65507], "ipv6": [0, 1, 1452, 1453, 65527]}


def sizes(family: str, stride: int = 1531) -> list[int]:
    """Every ``stride``-th datagram size up to the family's largest, plus the EDGES."""
    top = aiomcast.MAX_PAYLOAD_IPV4 if family == "ipv4" else aiomcast.MAX_PAYLOAD_IPV6
    return sorted(set(range(0, top + 1, stride)) | set(EDGES[family]))
