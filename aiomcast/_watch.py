# Design: memberships on every interface, and memberships that follow the host's interfaces.
# The receivers' methods for both (join_all_interfaces, leave_all_interfaces,
# follow_interfaces) are FollowingAPI, at the end; memberships themselves are the endpoint's
# MembershipTable, which the watcher shares.
#
# join_all_interfaces is an explicit loop over one interface listing: each interface gets its
# own JoinResult (membership or error), so one interface that is down, lacks an address or
# hits a kernel limit never fails the others.
#
# The watcher keeps a snapshot of the interfaces (by index) of the endpoint socket's network
# namespace. Whenever the kernel announces a change (a netlink route socket, created in that
# namespace, subscribed to link and address notifications and read through the reactor of the
# endpoint's driver), or every poll_interval seconds where netlink is absent (a driver timer),
# it reads the list again and diffs it against the snapshot (diff_interfaces, pure).
# Notifications only say "look again": a missed or coalesced one (netlink overrun, a flap
# between two polls) costs nothing but the report of a transient state, because the list
# itself is the truth.
#
# What the kernel does (Linux 6.18, pinned in tests/sockets/test_watch.py): a membership
# survives its link going down and up, losing carrier, and losing and regaining its addresses;
# it dies with its interface, and an interface recreated under the same name has a new index and no
# membership. So the watcher keeps memberships through down/up and address changes, forgets
# (leaves) those of a deleted interface and rejoins them when an interface of that name comes
# back; groups joined on every interface are joined on interfaces that become usable.
from __future__ import annotations

import collections
import contextlib
import dataclasses
import enum
import errno
import socket
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Final, Literal, NamedTuple, final

from ._address import Family, Group, GroupLike
from ._driver import Driver, Timer, Waiter
from ._errors import AiomcastError, BusyError, InvalidArgumentError, show
from ._interfaces import (
    Interface,
    InterfaceFilter,
    list_interfaces,
    plan_joins,
    socket_namespace,
    unusable_reason,
)
from ._options import PLATFORM
from ._types import Membership

if TYPE_CHECKING:
    from ._membership import MembershipTable
    from ._protocol import MulticastProtocol

__all__ = [
    "ChangeKind",
    "InterfaceChange",
    "InterfaceWatcher",
    "JoinResult",
    "WatchStats",
    "diff_interfaces",
    "join_all",
]

#: Changes kept in ``InterfaceWatcher.changes`` and queued for its iterator, by default.
DEFAULT_MAX_CHANGES: Final = 256
#: Seconds between two reads of the interface list where netlink is not available.
DEFAULT_POLL_INTERVAL: Final = 2.0
# After a notification, wait this long for the rest of a burst (creating an interface sends
# several) before reading the list once.
_SETTLE: Final = 0.02

# linux/rtnetlink.h
_RTMGRP_LINK: Final = 0x1
_RTMGRP_IPV4_IFADDR: Final = 0x10
_RTMGRP_IPV6_IFADDR: Final = 0x100
_RTM_TYPES: Final = frozenset({16, 17, 20, 21})  # NEWLINK, DELLINK, NEWADDR, DELADDR
_RTM_DELLINK: Final = 17
_NLMSG_HEADER: Final = struct.Struct("=IHHII")
_IFINFOMSG: Final = struct.Struct("=BBHiII")


class ChangeKind(enum.Enum):
    """What happened to an interface."""

    ADDED = "added"
    REMOVED = "removed"
    RENAMED = "renamed"
    UP = "up"
    DOWN = "down"
    CARRIER_ON = "carrier"
    CARRIER_OFF = "no-carrier"
    ADDRESS_ADDED = "address-added"
    ADDRESS_REMOVED = "address-removed"


class JoinResult(NamedTuple):
    """The outcome of joining a group on one interface.

    Attributes:
        interface: the interface's name (as given, for one that does not exist).
        membership: the membership held (also when it was held already), or None.
        error: why there is no membership: an InterfaceError (unknown, cannot carry
            multicast, down, no address of the family) or a KernelError (ENODEV,
            EADDRNOTAVAIL, ENOBUFS, ... with the errno and a hint); None on success.
    """

    interface: str
    membership: Membership | None
    error: AiomcastError | None

    @property
    def joined(self) -> bool:
        """True when the endpoint is a member on this interface."""
        return self.membership is not None

    def __str__(self) -> str:
        if self.membership is not None:
            return f"{self.interface}: joined {self.membership.group}"
        return f"{self.interface}: not joined: {self.error}"


def _names(memberships: Iterable[Membership]) -> str:
    return ", ".join(str(m.group) for m in memberships)


@final
@dataclasses.dataclass(frozen=True, slots=True)
class InterfaceChange:
    """One interface's changes seen in one look at the host, and what the endpoint did.

    Attributes:
        interface: the interface's name (its new name after a rename).
        index: its kernel index (a recreated interface has a new one).
        kinds: what happened, in a fixed order (added, removed, renamed, up, down, carrier,
            addresses).
        addresses_added: addresses of the endpoint's family that appeared.
        addresses_removed: addresses of the endpoint's family that went away.
        joined: memberships joined (or rejoined) because of it.
        forgotten: memberships dropped because their interface went away; they are rejoined
            when an interface of the same name comes back.
        kept: memberships still held on an interface that went down, lost carrier or lost an
            address (the kernel keeps them; reception resumes when the interface is usable).
        failed: joins that were tried and failed, with the error.
    """

    interface: str
    index: int
    kinds: tuple[ChangeKind, ...]
    addresses_added: tuple[str, ...] = ()
    addresses_removed: tuple[str, ...] = ()
    joined: tuple[Membership, ...] = ()
    forgotten: tuple[Membership, ...] = ()
    kept: tuple[Membership, ...] = ()
    failed: tuple[JoinResult, ...] = ()

    def __str__(self) -> str:
        what = []
        for kind in self.kinds:
            if kind is ChangeKind.ADDRESS_ADDED:
                what.append(f"address {', '.join(self.addresses_added)} added")
            elif kind is ChangeKind.ADDRESS_REMOVED:
                what.append(f"address {', '.join(self.addresses_removed)} removed")
            else:
                what.append(kind.value)
        text = f"{self.interface} (#{self.index}): {', '.join(what) or 'usable'}"
        if self.joined:
            text += f"; joined {_names(self.joined)}"
        if self.forgotten:
            text += f"; forgot {_names(self.forgotten)} until it is back"
        if self.kept:
            text += f"; kept {_names(self.kept)}"
        for result in self.failed:
            text += f"; could not join: {result.error}"
        return text


@final
@dataclasses.dataclass(frozen=True, slots=True)
class WatchStats:
    """Counters of an InterfaceWatcher.

    Attributes:
        notifications: netlink messages about links and addresses read (0 when polling).
        scans: reads of the interface list.
        changes: InterfaceChange records made.
        joined: memberships joined or rejoined.
        forgotten: memberships dropped because their interface went away.
        failed: joins that failed.
        missed: changes dropped from the iterator's bounded queue before they were read.
        overruns: netlink notifications the kernel dropped (the list was read again).
    """

    notifications: int = 0
    scans: int = 0
    changes: int = 0
    joined: int = 0
    forgotten: int = 0
    failed: int = 0
    missed: int = 0
    overruns: int = 0


# -- pure: what changed between two snapshots -------------------------------------------------


def diff_interfaces(
    old: Mapping[int, Interface], new: Mapping[int, Interface], family: Family
) -> list[tuple[Interface, tuple[ChangeKind, ...], tuple[str, ...], tuple[str, ...]]]:
    """Compare two snapshots (by index) and say what changed for each interface (pure).

    Returns (interface, kinds, addresses added, addresses removed) for every interface with a
    change, removed interfaces (as last seen) first, then the others by index. Only addresses
    of ``family`` are compared.
    """
    result: list[tuple[Interface, tuple[ChangeKind, ...], tuple[str, ...], tuple[str, ...]]] = []
    for index in sorted(set(old) - set(new)):
        result.append((old[index], (ChangeKind.REMOVED,), (), ()))
    for index in sorted(new):
        now, before = new[index], old.get(index)
        kinds: list[ChangeKind] = []
        if before is None:
            kinds.append(ChangeKind.ADDED)
            before = dataclasses.replace(now, ipv4=(), ipv6=(), up=False, running=False)
        elif before.name != now.name:
            kinds.append(ChangeKind.RENAMED)
        if now.up != before.up:
            kinds.append(ChangeKind.UP if now.up else ChangeKind.DOWN)
        elif now.up and now.running != before.running:
            kinds.append(ChangeKind.CARRIER_ON if now.running else ChangeKind.CARRIER_OFF)
        was, has = before.addresses(family), now.addresses(family)
        added = tuple(str(a) for a in has if a not in was)
        removed = tuple(str(a) for a in was if a not in has)
        if added:
            kinds.append(ChangeKind.ADDRESS_ADDED)
        if removed:
            kinds.append(ChangeKind.ADDRESS_REMOVED)
        if kinds:
            result.append((now, tuple(kinds), added, removed))
    return result


# -- joining on every interface ----------------------------------------------------------


def _listing(sock: socket.socket) -> list[Interface]:
    with socket_namespace(sock):
        return list_interfaces()


def join_all(
    table: MembershipTable,
    sock: socket.socket,
    group: Group,
    interfaces: InterfaceFilter,
    source: str | None,
) -> tuple[JoinResult, ...]:
    """Join ``group`` on each chosen interface; one JoinResult per interface (see plan_joins).

    The interfaces are those of ``sock``'s network namespace.
    """
    table.check_family(group)
    plan = plan_joins(_listing(sock), table.family, interfaces)
    results: list[JoinResult] = []
    for name, interface, error in plan:
        if interface is None:
            results.append(JoinResult(name, None, error))
            continue
        results.append(_join_one(table, group, interface, source))
    return tuple(results)


def _join_one(
    table: MembershipTable, group: Group, interface: Interface, source: str | None
) -> JoinResult:
    held = table.held(group, interface.index, source)
    if held is not None:
        return JoinResult(interface.name, held, None)
    try:
        membership = table.join(group, interface, source)
    except AiomcastError as exc:
        return JoinResult(interface.name, None, exc)
    return JoinResult(interface.name, membership, None)


# -- the watcher ----------------------------------------------------------------------------


@dataclasses.dataclass
class _Draft:
    interface: Interface
    kinds: tuple[ChangeKind, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    joined: list[Membership] = dataclasses.field(default_factory=list)
    forgotten: list[Membership] = dataclasses.field(default_factory=list)
    failed: list[JoinResult] = dataclasses.field(default_factory=list)


def _open_netlink(sock: socket.socket) -> socket.socket | None:
    # A route netlink socket belongs to the network namespace of the thread that creates it:
    # create it in the endpoint socket's namespace.
    if PLATFORM != "linux" or not hasattr(socket, "AF_NETLINK"):
        return None
    groups = _RTMGRP_LINK | _RTMGRP_IPV4_IFADDR | _RTMGRP_IPV6_IFADDR
    try:
        with socket_namespace(sock):
            netlink = socket.socket(
                socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
            )
    except OSError:
        return None
    try:
        netlink.setblocking(False)
        netlink.bind((0, groups))
    except OSError:
        netlink.close()
        return None
    return netlink


def _relevant(data: bytes, deleted: set[int]) -> int:
    # Count the link and address messages in one netlink datagram, and note the index of
    # each deleted link: an interface recreated under the same name may get the same index
    # again (measured: moving a veth end into a namespace keeps a free index), and without
    # the deletion the two listings would look alike.
    count, offset = 0, 0
    while offset + _NLMSG_HEADER.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSG_HEADER.unpack_from(data, offset)
        if length < _NLMSG_HEADER.size:
            break
        if kind in _RTM_TYPES:
            count += 1
        if kind == _RTM_DELLINK and length >= _NLMSG_HEADER.size + _IFINFOMSG.size:
            family, _pad, _type, index, _iflags, _change = _IFINFOMSG.unpack_from(
                data, offset + _NLMSG_HEADER.size
            )
            if family == socket.AF_UNSPEC:  # AF_BRIDGE ones are about bridge ports
                deleted.add(index)
        offset += (length + 3) & ~3
    return count


@final
class InterfaceWatcher:
    """Follows the host's interfaces for one endpoint and keeps its memberships in step.

    Made by ``Receiver.follow_interfaces()`` (or ``follow_interfaces=True`` when opening).
    Iterate it (``async for change in watcher``) to get each InterfaceChange once, as it
    happens; the iteration ends when the endpoint closes. Changes nobody reads wait in a
    bounded queue (``max_changes``; the oldest are dropped and counted in ``stats.missed``);
    ``changes`` keeps the most recent ones for reading at any time.
    """

    def __init__(
        self,
        table: MembershipTable,
        sock: socket.socket,
        *,
        driver: Driver,
        poll_interval: float | None = None,
        max_changes: int = DEFAULT_MAX_CHANGES,
    ) -> None:
        if poll_interval is not None and (
            isinstance(poll_interval, bool)
            or not isinstance(poll_interval, int | float)
            or not 0 < poll_interval < 86400
        ):
            raise InvalidArgumentError(
                f"poll_interval {show(poll_interval)} must be a number of seconds above 0",
                value=poll_interval,
            )
        if isinstance(max_changes, bool) or not isinstance(max_changes, int) or max_changes < 1:
            raise InvalidArgumentError(
                f"max_changes {show(max_changes)} must be a positive integer", value=max_changes
            )
        self._table = table
        self._sock = sock
        self._driver = driver
        self._history: collections.deque[InterfaceChange] = collections.deque(maxlen=max_changes)
        self._pending: collections.deque[InterfaceChange] = collections.deque()
        self._max = max_changes
        self._waiter: Waiter | None = None
        self._counts = dict.fromkeys(WatchStats.__dataclass_fields__, 0)
        self._closed = False
        self._scheduled: Timer | None = None
        self._deleted: set[int] = set()
        self._snapshot = {i.index: i for i in _listing(sock)}
        self._netlink = _open_netlink(sock) if poll_interval is None else None
        self._interval: float | None = None
        if self._netlink is not None:
            self._reactor = driver.reactor(self._reader_lost)
            self._reactor.add_reader(self._netlink.fileno(), self._readable)
        else:
            self._interval = poll_interval if poll_interval is not None else DEFAULT_POLL_INTERVAL
            self._scheduled = driver.call_later(self._interval, self._scan)

    # -- public ---------------------------------------------------------------------------

    @property
    def mode(self) -> Literal["netlink", "polling"]:
        """How changes are noticed ("netlink" notifications, or "polling" the list)."""
        return "netlink" if self._interval is None else "polling"

    @property
    def changes(self) -> tuple[InterfaceChange, ...]:
        """The most recent changes (at most ``max_changes``), oldest first."""
        return tuple(self._history)

    @property
    def waiting(self) -> frozenset[tuple[Group, str]]:
        """(group, interface name) memberships forgotten with their interface, to rejoin."""
        return frozenset((group, name) for group, _source, name in self._table.waiting)

    @property
    def stats(self) -> WatchStats:
        """A snapshot of the counters."""
        return WatchStats(**self._counts)

    @property
    def closed(self) -> bool:
        """True once the watcher stopped (its endpoint closed)."""
        return self._closed

    def discard(self, group: Group | str, interface: str) -> None:
        """Stop waiting to rejoin ``group`` on the vanished interface ``interface``."""
        self._table.discard_waiting(Group(group), interface)

    def rescan(self) -> None:
        """Read the interface list now and act on what changed (also done on every event)."""
        self._scan()

    def __aiter__(self) -> InterfaceWatcher:
        return self

    async def __anext__(self) -> InterfaceChange:
        if self._pending:
            return self._pending.popleft()
        if self._waiter is not None:
            raise BusyError("another task is already iterating over this interface watcher")
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = self._driver.waiter()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._pending.popleft()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.mode
        return f"<InterfaceWatcher {state} changes={self._counts['changes']}>"

    # -- life cycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop following: no reader, no netlink socket, no timer; pending changes stay."""
        if self._closed:
            return
        self._closed = True
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if self._netlink is not None:
            with contextlib.suppress(Exception):  # the loop may be closing already
                self._reactor.remove_reader(self._netlink.fileno())
            self._netlink.close()
        self._wake()

    async def aclose(self) -> None:
        """Close, and let the driver finish what the close called off."""
        self.close()
        await self._driver.settle()

    def _reader_lost(self, exc: Exception) -> None:
        # The driver's reader of the netlink socket was stopped from outside (its task group
        # was cancelled): nothing notices changes any more.
        self.close()

    # -- noticing ---------------------------------------------------------------------------

    def _readable(self) -> None:
        assert self._netlink is not None
        seen = 0
        while True:
            try:
                data = self._netlink.recv(65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    break
                self._counts["overruns"] += 1  # the kernel dropped notifications: read again
                seen += 1
                continue
            count = _relevant(data, self._deleted)
            self._counts["notifications"] += count
            seen += count
        if seen and self._scheduled is None and not self._closed:
            self._scheduled = self._driver.call_later(_SETTLE, self._scan)

    # -- acting -----------------------------------------------------------------------------

    def _scan(self) -> None:
        # From the timer, or early (rescan): either way one timer at most stays scheduled.
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        if self._closed:
            return
        if self._interval is not None:  # polling: the next look
            self._scheduled = self._driver.call_later(self._interval, self._scan)
        self._counts["scans"] += 1
        try:
            listing = _listing(self._sock)
        except OSError:
            return  # the next notification or poll tries again
        new = {i.index: i for i in listing}
        old, self._snapshot = dict(self._snapshot), new
        gone: list[_Draft] = []
        # Deleted and back under the same index between two looks: removed, then added.
        for index in sorted(self._deleted & old.keys() & new.keys()):
            gone.append(_Draft(old.pop(index), (ChangeKind.REMOVED,)))
        self._deleted.clear()
        drafts: dict[int, _Draft] = {}
        for interface, kinds, added, removed in diff_interfaces(old, new, self._table.family):
            draft = _Draft(interface, kinds, added, removed)
            if ChangeKind.REMOVED in kinds:
                gone.append(draft)
            else:
                drafts[interface.index] = draft
        for draft in gone:
            self._forget_on(draft.interface.index, draft)
        self._rejoin_waiting(listing, drafts)
        self._join_targets(listing, old, drafts)
        for draft in [*gone, *(drafts[index] for index in sorted(drafts))]:
            self._emit(draft)

    def _forget_on(self, index: int, draft: _Draft) -> None:
        for membership in self._table.on_interface(index):
            self._table.forget(membership)
            draft.forgotten.append(membership)

    def _rejoin_waiting(self, listing: list[Interface], drafts: dict[int, _Draft]) -> None:
        by_name = {i.name: i for i in listing}
        family = self._table.family
        for entry in sorted(self._table.waiting, key=str):
            group, source, name = entry
            interface = by_name.get(name)
            if interface is None or not interface.supports(family):
                continue
            if family is Family.IPV4 and not interface.ipv4:
                continue  # aiomcast joins IPv4 only where there is an IPv4 address
            self._table.rejoined(entry)
            draft = drafts.setdefault(interface.index, _Draft(interface))
            self._record(draft, _join_one(self._table, group, interface, source))

    def _join_targets(
        self, listing: list[Interface], old: Mapping[int, Interface], drafts: dict[int, _Draft]
    ) -> None:
        family = self._table.family
        for interface in listing:
            if unusable_reason(interface, family) is not None:
                continue
            before = old.get(interface.index)
            if before is not None and unusable_reason(before, family) is None:
                continue  # usable before: joined then (or left on purpose since)
            for (group, source), predicate in list(self._table.targets.items()):
                try:
                    wanted = predicate is None or predicate(interface)
                except Exception as exc:  # a user's predicate: report, do not stop watching
                    error = InvalidArgumentError(
                        f"the interfaces predicate raised on {interface.name!r}: {exc!r}",
                        value=interface.name,
                    )
                    draft = drafts.setdefault(interface.index, _Draft(interface))
                    self._record(draft, JoinResult(interface.name, None, error))
                    continue
                if wanted and self._table.held(group, interface.index, source) is None:
                    draft = drafts.setdefault(interface.index, _Draft(interface))
                    self._record(draft, _join_one(self._table, group, interface, source))

    def _record(self, draft: _Draft, result: JoinResult) -> None:
        if result.membership is not None:
            draft.joined.append(result.membership)
        else:
            draft.failed.append(result)

    def _emit(self, draft: _Draft) -> None:
        interface = draft.interface
        quiet = (ChangeKind.DOWN, ChangeKind.CARRIER_OFF, ChangeKind.ADDRESS_REMOVED)
        kept: tuple[Membership, ...] = ()
        if any(kind in quiet for kind in draft.kinds) and ChangeKind.REMOVED not in draft.kinds:
            kept = tuple(self._table.on_interface(interface.index))
        change = InterfaceChange(
            interface=interface.name,
            index=interface.index,
            kinds=draft.kinds,
            addresses_added=draft.added,
            addresses_removed=draft.removed,
            joined=tuple(draft.joined),
            forgotten=tuple(draft.forgotten),
            kept=kept,
            failed=tuple(draft.failed),
        )
        counts = self._counts
        counts["changes"] += 1
        counts["joined"] += len(change.joined)
        counts["forgotten"] += len(change.forgotten)
        counts["failed"] += len(change.failed)
        self._history.append(change)
        if len(self._pending) >= self._max:
            self._pending.popleft()
            counts["missed"] += 1
        self._pending.append(change)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


# -- the endpoint's side --------------------------------------------------------------------


class FollowingAPI:
    """Joining on every interface and following interface changes: methods of the receivers.

    Mixed into the receiving endpoints (Receiver, Endpoint), which supply the attributes
    annotated here; it defines none of them, so it overrides nothing of theirs.
    """

    _table: MembershipTable
    _sock: socket.socket
    _watcher: InterfaceWatcher | None
    _protocol: MulticastProtocol
    _check_open: Callable[[], None]
    _source_text: Callable[[object], str | None]

    def join_all_interfaces(
        self,
        group: GroupLike,
        interfaces: InterfaceFilter = None,
        *,
        source: str | None = None,
    ) -> tuple[JoinResult, ...]:
        """Join ``group`` on several interfaces, one by one; return one JoinResult each.

        ``interfaces`` None joins on every interface that can carry multicast of the
        endpoint's family; a predicate (``lambda i: i.name.startswith("eth")``) on those it
        accepts; names, indexes or addresses on those. An interface that is down, has no
        address of the family, does not exist or that the kernel refuses (ENODEV,
        EADDRNOTAVAIL, ENOBUFS...) gets a JoinResult with the error and does not stop the
        others; one already joined gets its membership. While the endpoint follows
        interfaces, a group joined with None or a predicate is also joined on interfaces
        that become usable later (come up, gain an address, appear).

        Raises:
            InvalidGroupError: not a group, or of the other family.
            InterfaceError: ``interfaces`` is none of the shapes above.
        """
        self._check_open()
        value = Group(group)
        text = self._source_text(source)
        results = join_all(self._table, self._sock, value, interfaces, text)
        if interfaces is None or (callable(interfaces) and not isinstance(interfaces, Interface)):
            self._table.join_everywhere(value, text, interfaces)
        return results

    def leave_all_interfaces(
        self, group: GroupLike, *, source: str | None = None
    ) -> tuple[Membership, ...]:
        """Leave ``group`` (from ``source``) on every interface; return the memberships left.

        Also stops joining it on interfaces that appear later, and stops waiting to rejoin it
        on interfaces that went away.
        """
        self._check_open()
        return self._table.leave_everywhere(Group(group), self._source_text(source))

    def follow_interfaces(
        self, *, poll_interval: float | None = None, max_changes: int = 256
    ) -> InterfaceWatcher:
        """Keep the memberships in step with the host's interfaces; return the watcher.

        Memberships survive an interface going down and up or losing its addresses (the
        kernel keeps them); those of an interface that is deleted are forgotten and rejoined
        when an interface of the same name appears; groups joined with
        ``join_all_interfaces(group)`` (None or a predicate) are joined on interfaces that
        become usable. Each change is reported: ``async for change in watcher``, or read
        ``watcher.changes`` and ``watcher.stats``. Changes are noticed through netlink route
        notifications in the socket's network namespace (Linux); with ``poll_interval``, or
        where netlink is absent, by reading the interface list every ``poll_interval``
        seconds (default 2). Stops when the endpoint closes. Calling it again returns the
        same watcher.
        """
        self._check_open()
        if self._watcher is None or self._watcher.closed:
            self._watcher = InterfaceWatcher(
                self._table,
                self._sock,
                driver=self._protocol.driver,
                poll_interval=poll_interval,
                max_changes=max_changes,
            )
        return self._watcher

    @property
    def interface_watcher(self) -> InterfaceWatcher | None:
        """The watcher made by follow_interfaces(), or None."""
        return self._watcher
