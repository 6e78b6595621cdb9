"""The membership table's rules, from tables, without a socket.

Each case is a script of calls on one MembershipTable and what each must do (a membership, or
the error it raises), then the socket calls the table made through its Kernel, in order. The
Kernel here records calls and answers with an errno when told to: the real kernel's answers
are pinned by tests/sockets/test_ssm.py, tests/sockets/test_errors.py and
tests/sockets/test_endpoint.py, which drive the same table through real sockets.
"""

from __future__ import annotations

import dataclasses
import errno
from typing import Any

import pytest

import aiomcast
from aiomcast._membership import MembershipTable

V4 = aiomcast.Family.IPV4
ETH0 = aiomcast.Interface(name="eth0", index=2)
ETH1 = aiomcast.Interface(name="eth1", index=3)
ASM = aiomcast.Group("239.1.2.3")
SSM = aiomcast.Group("232.1.2.3")
OTHER = aiomcast.Group("ff12::1")
S1, S2 = "10.0.0.1", "10.0.0.2"


@dataclasses.dataclass
class RecordingKernel:
    """A Kernel that records each call and answers the next call of an operation with an errno."""

    calls: list[tuple[str, str, str | None, str | None]] = dataclasses.field(default_factory=list)
    refuse: dict[str, int] = dataclasses.field(default_factory=dict)

    def _call(
        self, operation: str, group: aiomcast.Group, interface: Any, source: str | None
    ) -> None:
        self.calls.append((operation, str(group), interface.name if interface else None, source))
        code = self.refuse.pop(operation, None)
        if code is not None:
            raise aiomcast.KernelError(code, operation=operation, group=str(group))

    def join(self, group: aiomcast.Group, interface: Any, source: str | None) -> None:
        self._call("join", group, interface, source)

    def leave(self, group: aiomcast.Group, interface: Any, source: str | None) -> None:
        self._call("leave", group, interface, source)

    def block(self, group: aiomcast.Group, interface: Any, source: str) -> None:
        self._call("block", group, interface, source)

    def unblock(self, group: aiomcast.Group, interface: Any, source: str) -> None:
        self._call("unblock", group, interface, source)


OK = None
# (name, [(call, group, interface, source, errno the kernel answers or 0, expected)], calls)
# ``expected``: OK, or the exception class the call raises.
CASES: list[tuple[str, list[tuple[Any, ...]], list[tuple[Any, ...]]]] = [
    (
        "join, join again, leave, leave again",
        [
            ("join", ASM, ETH0, None, 0, OK),
            ("join", ASM, ETH0, None, 0, aiomcast.AlreadyJoinedError),
            ("leave", ASM, ETH0, None, 0, OK),
            ("leave", ASM, ETH0, None, 0, aiomcast.NotJoinedError),
        ],
        [("join", "239.1.2.3", "eth0", None), ("leave", "239.1.2.3", "eth0", None)],
    ),
    (
        "one group on two interfaces and on the default one",
        [
            ("join", ASM, ETH0, None, 0, OK),
            ("join", ASM, ETH1, None, 0, OK),
            ("join", ASM, None, None, 0, OK),
        ],
        [
            ("join", "239.1.2.3", "eth0", None),
            ("join", "239.1.2.3", "eth1", None),
            ("join", "239.1.2.3", None, None),
        ],
    ),
    (
        "the kernel holds it under another spelling (EADDRINUSE)",
        [("join", ASM, None, None, errno.EADDRINUSE, aiomcast.AlreadyJoinedError)],
        [("join", "239.1.2.3", None, None)],
    ),
    (
        "any other refusal stays a KernelError and holds nothing",
        [
            ("join", ASM, ETH0, None, errno.ENOBUFS, aiomcast.KernelError),
            ("leave", ASM, ETH0, None, 0, aiomcast.NotJoinedError),
        ],
        [("join", "239.1.2.3", "eth0", None)],
    ),
    (
        "an SSM group needs a source; with one it joins",
        [
            ("join", SSM, ETH0, None, 0, aiomcast.InvalidGroupError),
            ("join", SSM, ETH0, S1, 0, OK),
            ("join", SSM, ETH0, S2, 0, OK),
            ("join", SSM, ETH0, S1, 0, aiomcast.AlreadyJoinedError),
        ],
        [("join", "232.1.2.3", "eth0", S1), ("join", "232.1.2.3", "eth0", S2)],
    ),
    (
        "a group of the other family",
        [("join", OTHER, ETH0, None, 0, aiomcast.InvalidGroupError)],
        [],
    ),
    (
        "any-source and source-specific do not mix on one interface",
        [
            ("join", ASM, ETH0, None, 0, OK),
            ("join", ASM, ETH0, S1, 0, aiomcast.SourceFilterError),
            ("join", ASM, ETH1, S1, 0, OK),  # another interface: fine
            ("join", ASM, ETH1, None, 0, aiomcast.SourceFilterError),
        ],
        [("join", "239.1.2.3", "eth0", None), ("join", "239.1.2.3", "eth1", S1)],
    ),
    (
        "the kernel's answers to a source join",
        [
            ("join", ASM, ETH0, S1, errno.EADDRNOTAVAIL, aiomcast.AlreadyJoinedError),
            ("join", ASM, ETH0, S1, errno.EINVAL, aiomcast.SourceFilterError),
        ],
        [("join", "239.1.2.3", "eth0", S1), ("join", "239.1.2.3", "eth0", S1)],
    ),
    (
        "leaving what vanished with its interface is no error",
        [
            ("join", ASM, ETH0, None, 0, OK),
            ("leave", ASM, ETH0, None, errno.ENODEV, OK),
            ("join", ASM, ETH1, S1, 0, OK),
            ("leave", ASM, ETH1, S1, errno.EADDRNOTAVAIL, OK),
            ("join", ASM, ETH0, None, 0, OK),
            ("leave", ASM, ETH0, None, errno.EPERM, aiomcast.KernelError),
        ],
        [
            ("join", "239.1.2.3", "eth0", None),
            ("leave", "239.1.2.3", "eth0", None),
            ("join", "239.1.2.3", "eth1", S1),
            ("leave", "239.1.2.3", "eth1", S1),
            ("join", "239.1.2.3", "eth0", None),
            ("leave", "239.1.2.3", "eth0", None),
        ],
    ),
    (
        "block and unblock on an any-source membership",
        [
            ("block", ASM, ETH0, S1, 0, aiomcast.NotJoinedError),
            ("join", ASM, ETH0, None, 0, OK),
            ("block", ASM, ETH0, S1, 0, OK),
            ("block", ASM, ETH0, S1, 0, aiomcast.SourceFilterError),
            ("unblock", ASM, ETH0, S2, 0, aiomcast.SourceFilterError),
            ("unblock", ASM, ETH0, S1, 0, OK),
            ("unblock", ASM, ETH0, S1, 0, aiomcast.SourceFilterError),
        ],
        [
            ("join", "239.1.2.3", "eth0", None),
            ("block", "239.1.2.3", "eth0", S1),
            ("unblock", "239.1.2.3", "eth0", S1),
        ],
    ),
    (
        "no blocks on a source-specific membership; a refused block blocks nothing",
        [
            ("join", ASM, ETH0, S1, 0, OK),
            ("block", ASM, ETH0, S2, 0, aiomcast.SourceFilterError),
            ("join", ASM, ETH1, None, 0, OK),
            ("block", ASM, ETH1, S2, errno.ENOBUFS, aiomcast.KernelError),
            ("unblock", ASM, ETH1, S2, 0, aiomcast.SourceFilterError),
        ],
        [
            ("join", "239.1.2.3", "eth0", S1),
            ("join", "239.1.2.3", "eth1", None),
            ("block", "239.1.2.3", "eth1", S2),
        ],
    ),
]


def run_step(table: MembershipTable, kernel: RecordingKernel, step: tuple[Any, ...]) -> None:
    call, group, interface, source, code, expected = step
    if code:
        kernel.refuse[call] = code
    if call in ("block", "unblock"):
        action: Any = lambda: table.filter(call == "block", group, interface, source)  # noqa: E731
    else:
        action = lambda: getattr(table, call)(group, interface, source)  # noqa: E731
    if expected is OK:
        action()
    else:
        with pytest.raises(expected):
            action()


@pytest.mark.parametrize(("name", "steps", "calls"), CASES, ids=[c[0] for c in CASES])
def test_table(name: str, steps: list[tuple[Any, ...]], calls: list[tuple[Any, ...]]) -> None:
    kernel = RecordingKernel()
    table = MembershipTable(V4, kernel)
    for step in steps:
        run_step(table, kernel, step)
    assert kernel.calls == calls
    assert kernel.refuse == {}  # every errno was asked for


def test_what_the_table_holds() -> None:
    table = MembershipTable(V4, RecordingKernel())
    m0 = table.join(ASM, ETH0, None)
    m1 = table.join(ASM, ETH1, S1)
    assert m0 == aiomcast.Membership(ASM, ETH0, None)
    assert table.memberships == frozenset({m0, m1})
    assert table.held(ASM, 3, S1) == m1
    assert table.held(ASM, 3, None) is None
    assert table.on_interface(2) == [m0]
    table.filter(True, ASM, ETH0, S2)
    assert table.blocked == {m0: frozenset({S2})}
    table.leave(ASM, ETH0, None)  # leaving forgets the blocked sources
    assert table.blocked == {}


def test_forgotten_memberships_wait_to_be_rejoined() -> None:
    # An interface deleted: its memberships are left (the socket counts them until then),
    # whatever the kernel answers, and wait under the interface's name.
    kernel = RecordingKernel(refuse={"leave": errno.ENODEV})
    table = MembershipTable(V4, kernel)
    membership = table.join(ASM, ETH0, S1)
    table.forget(membership)
    assert table.memberships == frozenset()
    assert table.waiting == frozenset({(ASM, S1, "eth0")})
    table.rejoined((ASM, S1, "eth0"))
    assert table.waiting == frozenset()
    assert kernel.calls[-1] == ("leave", "239.1.2.3", "eth0", S1)


def test_leaving_everywhere_keeps_the_other_sources() -> None:
    # leave_everywhere(group, source) leaves that source's memberships, drops its target and
    # stops waiting to rejoin it, and leaves the group's other sources alone.
    table = MembershipTable(V4, RecordingKernel())
    table.join_everywhere(ASM, S1, None)
    table.join_everywhere(ASM, S2, None)
    kept = table.join(ASM, ETH0, S2)
    table.forget(table.join(ASM, ETH1, S1))
    table.forget(table.join(ASM, ETH1, S2))
    left_on_eth0 = table.join(ASM, ETH0, S1)
    assert table.leave_everywhere(ASM, S1) == (left_on_eth0,)
    assert table.memberships == frozenset({kept})
    assert table.targets == {(ASM, S2): None}
    assert table.waiting == frozenset({(ASM, S2, "eth1")})
    table.discard_waiting(ASM, "eth1")
    assert table.waiting == frozenset()


def test_close_leaves_everything_whatever_the_kernel_says() -> None:
    kernel = RecordingKernel()
    table = MembershipTable(V4, kernel)
    table.join(ASM, ETH0, None)
    table.join(SSM, ETH1, S1)
    kernel.refuse["leave"] = errno.ENODEV
    table.close()
    assert table.memberships == frozenset()
    assert [c[0] for c in kernel.calls] == ["join", "join", "leave", "leave"]
