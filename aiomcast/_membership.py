# Design: the memberships of one endpoint, as a table with every rule and no I/O of its own.
#
# The table decides what a join, leave, block or unblock means before the kernel hears of it:
# already joined or not joined, an SSM group without a source, any-source and source-specific
# memberships mixed on one group and interface, blocking a source that is blocked already. It
# makes its socket calls through a Kernel given to it (the endpoint's is _socket.SocketKernel),
# and translates the kernel's few answers that mean "the table was right after all" (a
# membership the kernel already has under another spelling, one that vanished with its
# interface). So it is tested from tables with a recording Kernel, without a socket, and the
# real kernel's answers are pinned by the socket tests.
#
# The table also holds what following interfaces needs: the groups joined on every interface
# (targets, with their interface predicate) and the memberships forgotten with a deleted
# interface that wait to be rejoined under that interface's name. The endpoint and the
# interface watcher both work through the table and neither calls the other.
from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, final

from ._address import Family, Group
from ._errors import (
    AlreadyJoinedError,
    InvalidGroupError,
    KernelError,
    NotJoinedError,
    SourceFilterError,
)
from ._types import Membership

if TYPE_CHECKING:
    from ._interfaces import Interface

__all__ = ["Kernel", "MembershipTable", "refuse_any_source_ssm"]

# A membership's key: (group address, interface index or 0, source text or None).
_Key = tuple[object, int, str | None]


class Kernel(Protocol):
    """The socket calls the table makes; each raises KernelError when the kernel refuses."""

    def join(self, group: Group, interface: Interface | None, source: str | None) -> None:
        """Join ``group`` (from ``source``, when given) on ``interface``."""

    def leave(self, group: Group, interface: Interface | None, source: str | None) -> None:
        """Leave ``group`` (from ``source``, when given) on ``interface``."""

    def block(self, group: Group, interface: Interface | None, source: str) -> None:
        """Block ``source`` on the any-source membership of ``group``."""

    def unblock(self, group: Group, interface: Interface | None, source: str) -> None:
        """Unblock ``source`` on the any-source membership of ``group``."""


def refuse_any_source_ssm(group: Group) -> None:
    """Refuse an any-source membership of an SSM group (InvalidGroupError)."""
    # RFC 4604 (2.2.1): a host should refuse any-source membership of an SSM group; Linux
    # accepts it and reports EXCLUDE {}, which SSM routers ignore (tests/sockets/test_ssm.py).
    if group.is_source_specific:
        where = "232.0.0.0/8" if group.family is Family.IPV4 else "ff3x::/32"
        raise InvalidGroupError(
            f"group {group} is in the source-specific multicast range {where}: join it with "
            "source= (an any-source membership of an SSM group receives nothing through SSM "
            "routers, RFC 4604)",
            value=str(group),
        )


def _key(group: Group, interface: Interface | None, source: str | None) -> _Key:
    return (group.address, interface.index if interface is not None else 0, source)


def _where(interface: Interface | None) -> str:
    return interface.name if interface is not None else "the default interface"


@final
class MembershipTable:
    """The memberships, blocked sources, every-interface targets and pending rejoins.

    Groups, interfaces and sources come in resolved: a Group, an Interface or None (the
    kernel's choice by route), and a source's normalised address text or None.
    """

    def __init__(self, family: Family, kernel: Kernel) -> None:
        self.family = family
        self._kernel = kernel
        self._held: dict[_Key, Membership] = {}
        self._blocked: dict[_Key, set[str]] = {}
        #: Groups joined on every interface: (group, source) -> interface predicate or None.
        self.targets: dict[tuple[Group, str | None], Callable[[Interface], bool] | None] = {}
        self._waiting: set[tuple[Group, str | None, str]] = set()

    # -- reading -----------------------------------------------------------------------------

    @property
    def memberships(self) -> frozenset[Membership]:
        """The memberships held now."""
        return frozenset(self._held.values())

    @property
    def blocked(self) -> dict[Membership, frozenset[str]]:
        """The blocked sources of each any-source membership that has some (a copy)."""
        return {self._held[key]: frozenset(found) for key, found in self._blocked.items()}

    @property
    def waiting(self) -> frozenset[tuple[Group, str | None, str]]:
        """(group, source, interface name) forgotten with their interface, to rejoin."""
        return frozenset(self._waiting)

    def held(self, group: Group, index: int, source: str | None) -> Membership | None:
        """The membership of ``group`` from ``source`` on interface ``index``, if held."""
        return self._held.get((group.address, index, source))

    def on_interface(self, index: int) -> list[Membership]:
        """The memberships on interface ``index``, in a stable order."""
        found = (m for m in self._held.values() if m.interface and m.interface.index == index)
        return sorted(found, key=str)

    def check_family(self, group: Group) -> None:
        """Refuse a group of the other family (InvalidGroupError)."""
        if group.family is not self.family:
            raise InvalidGroupError(
                f"group {group} is {group.family.label} but the endpoint is {self.family.label}",
                value=str(group),
            )

    # -- changing ----------------------------------------------------------------------------

    def join(self, group: Group, interface: Interface | None, source: str | None) -> Membership:
        """Join, after every rule of the table; return the new membership.

        Raises:
            InvalidGroupError: the group is of the other family, or an SSM group without a
                source.
            AlreadyJoinedError: held already (also when the kernel says so).
            SourceFilterError: the group is held on that interface in the other mode.
            KernelError: any other refusal of the kernel.
        """
        self.check_family(group)
        key = _key(group, interface, source)
        where = _where(interface)
        origin = f" from {source}" if source is not None else ""
        if source is None:
            refuse_any_source_ssm(group)
        if key in self._held:
            raise AlreadyJoinedError(f"already a member of {group}{origin} on {where}")
        if source is None and self._has_sources(group.address, key[1]):
            raise SourceFilterError(
                f"{group} is joined source-specifically on {where}: leave its sources before "
                "joining it from any source"
            )
        if source is not None and (group.address, key[1], None) in self._held:
            # Linux would turn an any-source membership without blocked sources into a
            # source-specific one, silently ending any-source reception (EINVAL with blocks).
            raise SourceFilterError(
                f"{group} is joined from any source on {where}: leave it before joining it "
                f"from {source}"
            )
        try:
            self._kernel.join(group, interface, source)
        except KernelError as exc:
            # The same kernel membership under another spelling (no interface vs the
            # interface the route picks): EADDRINUSE for any-source, EADDRNOTAVAIL for a
            # source; EINVAL for a source on a kernel membership of the other mode.
            if exc.errno == (errno.EADDRINUSE if source is None else errno.EADDRNOTAVAIL):
                raise AlreadyJoinedError(
                    f"already a member of {group}{origin} on {where} (the kernel says so)"
                ) from exc
            if source is not None and exc.errno == errno.EINVAL:
                raise SourceFilterError(
                    f"{group} is joined from any source on {where} (the kernel says so)"
                ) from exc
            raise
        membership = Membership(group, interface, source)
        self._held[key] = membership
        return membership

    def leave(self, group: Group, interface: Interface | None, source: str | None) -> Membership:
        """Leave a held membership (and forget its blocked sources); return it.

        A kernel that no longer has it (the interface vanished: ENODEV, EADDRNOTAVAIL,
        EINVAL) is no error: the membership is gone either way.

        Raises:
            NotJoinedError: not held.
            KernelError: any other refusal of the kernel.
        """
        key = _key(group, interface, source)
        membership = self._held.get(key)
        if membership is None:
            origin = f" from {source}" if source is not None else ""
            raise NotJoinedError(f"not a member of {group}{origin} on {_where(interface)}")
        try:
            self._kernel.leave(membership.group, interface, source)
        except KernelError as exc:
            if exc.errno not in (errno.ENODEV, errno.EADDRNOTAVAIL, errno.EINVAL):
                raise
        del self._held[key]
        self._blocked.pop(key, None)
        return membership

    def filter(self, block: bool, group: Group, interface: Interface | None, source: str) -> None:
        """Block (``block``) or unblock ``source`` on the any-source membership of ``group``.

        Raises:
            NotJoinedError: no any-source membership of the group on that interface.
            SourceFilterError: the group is held source-specifically there, or the source is
                already blocked (block) or not blocked (unblock).
            KernelError: the kernel refused (such as ENOBUFS past the source limit).
        """
        key = _key(group, interface, None)
        where = _where(interface)
        if key not in self._held:
            if self._has_sources(group.address, key[1]):
                raise SourceFilterError(
                    f"{group} is joined source-specifically on {where}: only an any-source "
                    "membership blocks sources (leave the source instead)"
                )
            raise NotJoinedError(f"not an any-source member of {group} on {where}")
        blocked = self._blocked.get(key, set())
        if block and source in blocked:
            raise SourceFilterError(f"{source} is already blocked for {group} on {where}")
        if not block and source not in blocked:
            raise SourceFilterError(f"{source} is not blocked for {group} on {where}")
        if block:
            self._kernel.block(group, interface, source)
            self._blocked.setdefault(key, set()).add(source)
        else:
            self._kernel.unblock(group, interface, source)
            blocked.discard(source)
            if not blocked:
                del self._blocked[key]

    def forget(self, membership: Membership) -> None:
        """Drop a membership whose interface was deleted, and wait to rejoin it by name.

        The kernel dropped it with the interface, but the socket still counts it against its
        limit until it is left by the old index: the table leaves it, whatever the kernel
        answers.
        """
        key = _key(membership.group, membership.interface, membership.source)
        with contextlib.suppress(KernelError):
            self._kernel.leave(membership.group, membership.interface, membership.source)
        self._held.pop(key, None)
        self._blocked.pop(key, None)
        if membership.interface is not None:
            self._waiting.add((membership.group, membership.source, membership.interface.name))

    def rejoined(self, entry: tuple[Group, str | None, str]) -> None:
        """Stop waiting for ``entry`` (taken from ``waiting`` to rejoin it)."""
        self._waiting.discard(entry)

    def discard_waiting(self, group: Group, interface: str) -> None:
        """Stop waiting to rejoin ``group`` (from any source) on the vanished ``interface``."""
        self._waiting = {
            w for w in self._waiting if (w[0].address, w[2]) != (group.address, interface)
        }

    def join_everywhere(
        self, group: Group, source: str | None, predicate: Callable[[Interface], bool] | None
    ) -> None:
        """Note that ``group`` (from ``source``) goes on every interface ``predicate`` takes."""
        self.targets[(group, source)] = predicate

    def leave_everywhere(self, group: Group, source: str | None) -> tuple[Membership, ...]:
        """Leave ``group`` from ``source`` on every interface; return what was left.

        Also drops it from the targets and stops waiting to rejoin it; the group's other
        sources keep theirs.
        """
        self.targets = {k: v for k, v in self.targets.items() if k != (group, source)}
        self._waiting = {
            w for w in self._waiting if (w[0].address, w[1]) != (group.address, source)
        }
        left = []
        for membership in sorted(self._held.values(), key=str):
            if membership.group.address == group.address and membership.source == source:
                left.append(self.leave(membership.group, membership.interface, source))
        return tuple(left)

    def close(self) -> None:
        """Leave everything, whatever the kernel answers (a close must not fail)."""
        for membership in list(self._held.values()):
            with contextlib.suppress(KernelError):
                self._kernel.leave(membership.group, membership.interface, membership.source)
        self._held.clear()
        self._blocked.clear()
        self._waiting.clear()

    def _has_sources(self, address: object, index: int) -> bool:
        return any(k[0] == address and k[1] == index and k[2] is not None for k in self._held)
