"""Where the traffic flows: the namespaces, CPUs and receive buffers of a run."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from children import kill_children

from aiomcast.testing import lab

#: The group and first port of the benchmark's traffic (inside the lab's namespaces only).
GROUP: Final = "239.77.0.1"
FIRST_PORT: Final = 42000


# -- where the traffic flows ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Side:
    """One end of the benchmark: how to start a process there, and its interface."""

    prefix: tuple[str, ...]  # runs a command in the namespace ("ip netns exec NS") or nothing
    cpu: int
    interface: str
    address: str

    def command(self, *argv: str) -> list[str]:
        """The argv that runs ``argv`` on this side, pinned to this side's CPU."""
        pin = ("taskset", "-c", str(self.cpu)) if shutil.which("taskset") else ()
        return [*self.prefix, *pin, *argv]


@dataclasses.dataclass(frozen=True)
class Setup:
    """The sender's side, the receiver's side and what the run is like."""

    sender: Side
    receiver: Side
    mode: str  # "lab" or "loopback"
    notes: tuple[str, ...]
    #: Moves the receiving veth's kernel path to the receiver's CPU (True, RPS) or leaves it
    #: on the sender's (False); None over lo, where there is no such choice.
    set_rps: Callable[[bool], None] | None = None
    #: The receivers' layout (the sender rows always run with RPS: see measure_sender).
    receiver_rps: bool = False
    #: Takes the receiving end of the veth pair down (True) or up again; None over lo.
    set_peer_down: Callable[[bool], None] | None = None

    @contextlib.contextmanager
    def peer_down(self) -> Iterator[bool]:
        """The receiving end down for a block (yields False where there is none to take down).

        With its peer down a veth drops what it is given at once (counted as transmit drops):
        the sender's CPU then carries its own path only, as when a NIC takes the frame.
        """
        if self.set_peer_down is None:
            yield False
            return
        self.set_peer_down(True)
        try:
            yield True
        finally:
            self.set_peer_down(False)

    @contextlib.contextmanager
    def rps(self, on: bool) -> Iterator[None]:
        """RPS ``on`` for a block, then the receivers' layout again."""
        if self.set_rps is None:
            yield
            return
        self.set_rps(on)
        try:
            yield
        finally:
            self.set_rps(self.receiver_rps)


def cpus_for_sides() -> tuple[int, int, str | None]:
    """CPUs for the sender and the receiver: 0 and 1 where this process may use both."""
    allowed = sorted(os.sched_getaffinity(0))
    if 0 in allowed and 1 in allowed:
        return 0, 1, None
    if len(allowed) >= 2:
        return allowed[0], allowed[1], f"CPUs 0 and 1 are not available: using {allowed[:2]}"
    return allowed[0], allowed[0], f"one CPU only ({allowed[0]}): sender and receiver share it"


@contextlib.contextmanager
def traffic_setup(interface: str | None, rps: bool, rcvbuf: int = 0) -> Iterator[Setup]:
    """Build where the traffic flows: the lab (root) or the loopback interface.

    ``rcvbuf``: the SO_RCVBUF the receivers will ask for. net.core.rmem_max caps it; a
    namespace sees the host's value read-only (Linux 6.18, pinned in
    tests/sockets/test_fastpath.py), so the harness cannot raise it for its own namespaces:
    its receivers get ``rcvbuf`` past it with SO_RCVBUFFORCE instead (root), and the notes say
    when that was needed.
    """
    tx_cpu, rx_cpu, cpu_note = cpus_for_sides()
    notes = [cpu_note] if cpu_note else []
    notes += rmem_max_note(rcvbuf)
    root = os.geteuid() == 0
    if interface not in (None, "lo"):
        raise SystemExit(
            f"--interface {interface!r}: only 'lo' is allowed; benchmark traffic never uses a "
            "real interface (by default it flows between namespaces the harness builds)"
        )
    if interface == "lo" or not root:
        why = "--interface lo" if interface == "lo" else "not root, so no namespaces"
        if root:
            lab.enter_private_network()  # a private lo: still nothing reaches a real interface
            why += ", in a private network namespace"
        notes.append(
            f"loopback interface ({why}): sender and receiver share the kernel path of lo, "
            "so the numbers are not those of two hosts"
        )
        local = Side((), tx_cpu, "lo", "127.0.0.1")
        try:
            yield Setup(local, dataclasses.replace(local, cpu=rx_cpu), "loopback", tuple(notes))
        finally:
            kill_children()
        return
    ok, why = lab.lab_available()
    if not ok:
        raise SystemExit(f"cannot build the namespaces: {why}")
    lab.enter_private_network()
    try:
        with lab.Lab(prefix="amcb") as net:
            net.build("hosts tx rx\nnet 1 tx rx\n")
            tx, rx = net["tx"], net["rx"]
            # A veth pair delivers on the sending CPU. Receivers run without RPS by default:
            # the receiving side's IP and UDP work then runs on the sender's CPU, and the
            # receiver's CPU does the receiver's own work only (the layout of the targets'
            # table). Senders run with RPS, which moves that work to the receiver's CPU, so
            # the sender's CPU does the sender's own work only (measure_sender).
            mask = f"{1 << rx_cpu:x}"

            def set_rps(on: bool) -> None:
                path = "/sys/class/net/n1/queues/rx-0/rps_cpus"
                rx.run("sh", "-c", f"echo {mask if on else 0} > {path}")

            set_rps(rps)

            # Taking a link down deletes its routes, and its IPv6 addresses unless they are
            # kept: keep them, and put the group route back when it comes up.
            rx.run("sysctl", "-qw", "net.ipv6.conf.n1.keep_addr_on_down=1")

            def set_peer_down(down: bool) -> None:
                rx.ip("link", "set", "n1", "down" if down else "up")
                if not down:
                    rx.ip("route", "replace", "224.0.0.0/4", "dev", "n1")

            if rps:
                notes.append(
                    "--rps: the receiving kernel path (IP, UDP, socket buffer) runs on the "
                    f"receiver's CPU {rx_cpu}, as on a receiving host whose interrupts land on "
                    "the application's CPU; the receiver's rusage includes the part of it that "
                    "interrupted the receiver"
                )
            else:
                notes.append(
                    f"receivers: the receiving kernel path runs on the sender's CPU {tx_cpu} "
                    "(veth's default); receiver CPU is the receiver's own work only"
                )
            notes.append(
                "senders: RPS on the receiving veth moves the receiving kernel path to CPU "
                f"{rx_cpu}, so the sender's CPU {tx_cpu} does the sender's own work only"
            )
            try:
                yield Setup(
                    Side(tuple(tx.command()), tx_cpu, "n1", tx.address(1)),
                    Side(tuple(rx.command()), rx_cpu, "n1", rx.address(1)),
                    "lab",
                    tuple(notes),
                    set_rps,
                    rps,
                    set_peer_down,
                )
            finally:
                kill_children()  # nothing may keep a namespace alive
    finally:
        lab.sweep()  # the safety net: namespaces of this process that are still there


def rmem_max_note(rcvbuf: int) -> list[str]:
    """A note when ``rcvbuf`` is above net.core.rmem_max (the host's; see traffic_setup)."""
    try:
        limit = int(Path("/proc/sys/net/core/rmem_max").read_text())
    except (OSError, ValueError):
        return []
    if rcvbuf <= limit:
        return []
    if os.geteuid() != 0:
        return [
            f"--rcvbuf {rcvbuf} is above net.core.rmem_max ({limit}) and this is not root: "
            f"every receiver is capped at {limit}"
        ]
    return [
        f"--rcvbuf {rcvbuf} is above net.core.rmem_max ({limit}): the receivers get it "
        "with SO_RCVBUFFORCE (root), except iperf2, whose -w stays capped at the limit"
    ]
