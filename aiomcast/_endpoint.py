# Design: the public endpoints. Three final classes share one core: Receiver (join, leave,
# async iteration), Sender (send, TTL, loopback, outgoing interface) and Endpoint (both on one
# socket). They are opened by open_receiver / open_sender / open_endpoint, whose result can be
# awaited or used directly as an async context manager.
#
# The socket is created, bound and configured synchronously at the start of the open call
# (_socket.py), then handed to loop.create_datagram_endpoint with a MulticastProtocol. So the
# socket lives in the network namespace of the thread that opens it, and the library works on
# whatever loop runs (asyncio or uvloop) without touching the event-loop policy.
#
# Closing leaves every membership, closes the transport, waits for connection_lost and makes
# sure the file descriptor is released before aclose() returns (anyio's
# test_aclose_waits_for_fd_release), so the port can be bound again at once.
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterable
from types import TracebackType
from typing import Any, Generic, NamedTuple, Self, TypeVar, final

from . import _socket
from ._address import (
    DEFAULT_LOOPBACK,
    DEFAULT_TTL,
    AddressScope,
    Family,
    Group,
    GroupLike,
    check_payload,
    max_payload,
    parse_family,
    validate_port,
    validate_ttl,
)
from ._errors import (
    AlreadyJoinedError,
    BrokenEndpointError,
    BusyError,
    EndpointClosedError,
    InterfaceError,
    InvalidArgumentError,
    InvalidGroupError,
    InvalidSocketError,
    InvalidTTLError,
    KernelError,
    NotJoinedError,
    show,
)
from ._fastio import FastDatagramTransport, batch_receiver_available
from ._interfaces import Interface, InterfaceLike, loopback_index, resolve_interface
from ._options import PLATFORM, host_scope_filter
from ._protocol import Datagram, MulticastProtocol, Overflow, Stats

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "Endpoint",
    "Membership",
    "Opener",
    "Receiver",
    "Sender",
    "open_endpoint",
    "open_receiver",
    "open_sender",
]

#: Default bound of the receive queue between the protocol and the iterator.
DEFAULT_QUEUE_SIZE = 4096

E = TypeVar("E", bound="_Core")


class Membership(NamedTuple):
    """One (group, interface) membership held by an endpoint (interface None: kernel's choice)."""

    group: Group
    interface: Interface | None


@final
class Opener(Generic[E]):
    """The result of ``open_*``: await it, or use it as ``async with open_...(...) as ep``."""

    __slots__ = ("_endpoint", "_factory")

    def __init__(self, factory: Callable[[], Coroutine[Any, Any, E]]) -> None:
        self._factory = factory
        self._endpoint: E | None = None

    def __await__(self) -> Generator[Any, None, E]:
        return self._factory().__await__()

    async def __aenter__(self) -> E:
        self._endpoint = await self._factory()
        return self._endpoint

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._endpoint is not None:
            await self._endpoint.aclose()


def _groups(value: GroupLike | Iterable[GroupLike] | None) -> list[Group]:
    if value is None:
        return []
    if isinstance(value, Group | str) or not isinstance(value, Iterable):
        return [Group(value)]
    return [Group(item) for item in value]


def _family_of(groups: list[Group], family: object) -> Family:
    chosen = parse_family(family) if family is not None else None
    for group in groups:
        if chosen is None:
            chosen = group.family
        elif group.family is not chosen:
            raise InvalidGroupError(
                f"group {group} is {group.family.label} but the endpoint is {chosen.label}",
                value=str(group),
            )
    if chosen is None:
        raise InvalidArgumentError("give at least one group or family='ipv4' / 'ipv6'", value=None)
    return chosen


class _Core:
    """State and behaviour shared by every endpoint; not public."""

    def __init__(
        self,
        *,
        sock: socket.socket,
        family: Family,
        protocol: MulticastProtocol,
        transport: asyncio.DatagramTransport,
        interface: Interface | None,
    ) -> None:
        self._sock = sock
        self._family = family
        self._protocol = protocol
        self._transport = transport
        self._default_interface = interface
        self._memberships: dict[tuple[object, int], Membership] = {}
        self._scope_ids: dict[str, int] = {}
        self._final_kernel_drops: int | None = None
        self._default_sockaddr: tuple[Any, ...] | None = None
        self._closing = False
        self._closed = False
        self._reading = False
        self._local = sock.getsockname()

    # -- common -----------------------------------------------------------------------------

    @property
    def family(self) -> Family:
        """The endpoint's address family."""
        return self._family

    @property
    def local_address(self) -> tuple[str, int]:
        """The (address, port) the socket is bound to (a sender is bound by its first send)."""
        if self._sock.fileno() >= 0:
            self._local = self._sock.getsockname()
        return str(self._local[0]), int(self._local[1])

    @property
    def port(self) -> int:
        """The local UDP port (0 for a sender that has not sent yet)."""
        return self.local_address[1]

    @property
    def socket(self) -> socket.socket:
        """The underlying socket, for options aiomcast does not cover. Do not close it."""
        return self._sock

    @property
    def closed(self) -> bool:
        """True once aclose() has begun."""
        return self._closing

    @property
    def stats(self) -> Stats:
        """A snapshot of the counters (received, delivered, dropped, sent, errors...)."""
        drops = self._final_kernel_drops
        if drops is None:
            drops = _socket.kernel_drops(self._sock)
        return self._protocol.counters.snapshot(len(self._protocol.queue), drops)

    def _check_open(self) -> None:
        if self._closing:
            raise EndpointClosedError(f"{type(self).__name__} is closed")
        protocol = self._protocol
        if protocol.broken is not None:
            raise BrokenEndpointError(
                f"{type(self).__name__} broke: {protocol.broken}"
            ) from protocol.broken
        if protocol.lost.done():
            raise BrokenEndpointError(f"{type(self).__name__} lost its socket")

    async def aclose(self) -> None:
        """Leave every group, close the socket and wait until its descriptor is released.

        Calling it again does nothing. Datagrams already queued can still be iterated.
        """
        if self._closing:
            await asyncio.shield(self._protocol.lost)
            return
        self._closing = True
        self._final_kernel_drops = _socket.kernel_drops(self._sock)
        for membership in list(self._memberships.values()):
            # The kernel drops memberships when the socket closes; leaving first sends the
            # leave report now. A vanished interface (ENODEV, EADDRNOTAVAIL) is no reason to
            # fail a close.
            with contextlib.suppress(KernelError):
                _socket.leave(self._sock, membership.group, membership.interface)
        self._memberships.clear()
        protocol = self._protocol
        waiter = protocol.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._transport.close()
        try:
            await asyncio.shield(protocol.lost)
        finally:
            # asyncio closes the socket right after connection_lost, uvloop detaches it; both
            # are done by now. Closing again is harmless and covers a cancelled wait.
            self._sock.close()
            self._closed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closing else "open"
        return f"<{type(self).__name__} {self._family.label} port={self.port} {state}>"

    # -- receive side ---------------------------------------------------------------------

    def _interface_for(self, group: Group, interface: InterfaceLike | None) -> Interface | None:
        if interface is None and group.zone is not None:
            interface = group.zone
        if interface is None:
            return self._default_interface
        return resolve_interface(interface, self._family, sock=self._sock)

    def _join(self, group: GroupLike, interface: InterfaceLike | None = None) -> Membership:
        self._check_open()
        value = Group(group)
        if value.family is not self._family:
            raise InvalidGroupError(
                f"group {value} is {value.family.label} but the endpoint is {self._family.label}",
                value=str(value),
            )
        iface = self._interface_for(value, interface)
        key = (value.address, iface.index if iface is not None else 0)
        where = iface.name if iface is not None else "the default interface"
        if key in self._memberships:
            raise AlreadyJoinedError(f"already a member of {value} on {where}")
        try:
            _socket.join(self._sock, value, iface)
        except KernelError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            # The same kernel membership under another spelling (no interface vs the
            # interface the route picks).
            raise AlreadyJoinedError(
                f"already a member of {value} on {where} (the kernel says so)"
            ) from exc
        membership = Membership(value, iface)
        self._memberships[key] = membership
        return membership

    def _leave(self, group: GroupLike, interface: InterfaceLike | None = None) -> None:
        self._check_open()
        value = Group(group)
        iface = self._interface_for(value, interface)
        key = (value.address, iface.index if iface is not None else 0)
        membership = self._memberships.get(key)
        if membership is None:
            where = iface.name if iface is not None else "the default interface"
            raise NotJoinedError(f"not a member of {value} on {where}")
        try:
            _socket.leave(self._sock, value, iface)
        except KernelError as exc:
            if exc.errno not in (errno.ENODEV, errno.EADDRNOTAVAIL):
                raise
            # The interface vanished: the kernel already dropped the membership.
        del self._memberships[key]

    async def _receive(self) -> Datagram:
        protocol = self._protocol
        queue = protocol.queue
        if queue:  # fast path: no waiting, no future
            protocol.counters.delivered += 1
            return queue.popleft()
        if self._reading:
            raise BusyError(f"another task is already receiving from this {type(self).__name__}")
        self._reading = True
        try:
            while not queue:
                self._check_open()
                waiter = asyncio.get_running_loop().create_future()
                protocol.waiter = waiter
                try:
                    await waiter
                finally:
                    protocol.waiter = None
        finally:
            self._reading = False
        protocol.counters.delivered += 1
        return queue.popleft()

    # -- send side ------------------------------------------------------------------------

    def _destination(
        self, group: GroupLike | None, port: int | None, default: tuple[Group, int] | None
    ) -> tuple[Any, ...]:
        # Fast path: the default destination's socket address is built once, not per send.
        if group is None and port is None and self._default_sockaddr is not None:
            return self._default_sockaddr
        address = self._sockaddr(group, port, default)
        if group is None and port is None:
            self._default_sockaddr = address
        return address

    def _sockaddr(
        self, group: GroupLike | None, port: int | None, default: tuple[Group, int] | None
    ) -> tuple[Any, ...]:
        if (group is None or port is None) and default is None:
            raise InvalidArgumentError(
                "this endpoint has no default destination: give group and port", value=None
            )
        if group is not None:
            target = Group(group)
        else:
            assert default is not None
            target = default[0]
        if port is not None:
            dport = validate_port(port, allow_zero=False)
        else:
            assert default is not None
            dport = default[1]
        if target.family is not self._family:
            raise InvalidGroupError(
                f"group {target} is {target.family.label} but the endpoint is {self._family.label}",
                value=str(target),
            )
        host = str(target.address)
        if self._family is Family.IPV6:
            scope_id = 0
            if target.zone is not None:
                scope_id = self._scope_ids.get(target.zone, 0)
                if not scope_id:
                    iface = resolve_interface(target.zone, self._family, sock=self._sock)
                    scope_id = self._scope_ids[target.zone] = iface.index
            return (host, dport, 0, scope_id)
        return (host, dport)

    async def _send(self, payload: object, destination: tuple[Any, ...]) -> None:
        self._check_open()
        data = check_payload(payload, self._family)
        protocol = self._protocol
        if not protocol.writable.is_set():
            await protocol.writable.wait()
            self._check_open()
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if not size and not isinstance(self._transport, FastDatagramTransport):
            await self._send_empty(destination)  # the loops' transports skip empty payloads
            return
        self._transmit(
            lambda: self._transport.sendto(data, destination), "send", destination, 1, size
        )
        if not self._local[1]:
            self._local = self._sock.getsockname()  # bound by this first send

    def _transmit(
        self,
        call: Callable[[], None],
        operation: str,
        destination: tuple[Any, ...],
        count: int,
        nbytes: int,
    ) -> None:
        # Transports report a failed send through error_received, synchronously: the protocol
        # catches it while `sending` is set, and it becomes a KernelError here.
        protocol = self._protocol
        protocol.sending = True
        protocol.send_failure = None
        try:
            call()
        finally:
            protocol.sending = False
        failure = protocol.take_send_failure()
        if failure is not None:
            raise KernelError(
                failure.errno,
                operation=operation,
                group=str(destination[0]),
                interface=self._outgoing_name(),
                detail=failure.strerror,
            ) from failure
        protocol.counters.sent += count
        protocol.counters.sent_bytes += nbytes

    async def _send_empty(self, destination: tuple[Any, ...]) -> None:
        # asyncio's and uvloop's DatagramTransport.sendto return without sending when the
        # payload is empty (aiomcast's own transport does not); a zero-length UDP datagram is
        # valid, so send it on the socket, after whatever the transport still buffers.
        while _buffered(self._transport):
            await asyncio.sleep(0.001)
            self._check_open()
        try:
            self._sock.sendto(b"", destination)
        except OSError as exc:
            self._protocol.counters.send_errors += 1
            raise KernelError(
                exc.errno,
                operation="send",
                group=str(destination[0]),
                interface=self._outgoing_name(),
                detail=exc.strerror,
            ) from exc
        self._protocol.counters.sent += 1
        if not self._local[1]:
            self._local = self._sock.getsockname()

    def _outgoing_name(self) -> str:
        return "default"


class _ReceiveAPI(_Core):
    """Receive half of the public API."""

    def join(self, group: GroupLike, interface: InterfaceLike | None = None) -> Membership:
        """Join ``group`` on ``interface`` (default: the endpoint's interface) (S1, S4, S5).

        Raises:
            AlreadyJoinedError: already a member on that interface; the endpoint stays usable.
            InvalidGroupError: not a group, or of the other family.
            InterfaceError: the interface cannot be used.
            KernelError: the kernel refused (errno, group, interface and a hint attached).
        """
        return self._join(group, interface)

    def leave(self, group: GroupLike, interface: InterfaceLike | None = None) -> None:
        """Leave ``group`` on ``interface`` (S1, S4, S5).

        Raises:
            NotJoinedError: not a member on that interface; the endpoint stays usable.
        """
        self._leave(group, interface)

    @property
    def memberships(self) -> frozenset[Membership]:
        """The (group, interface) memberships held now."""
        return frozenset(self._memberships.values())

    @property
    def queue_size(self) -> int:
        """The bound of the receive queue."""
        return self._protocol.queue_size

    @property
    def overflow(self) -> Overflow:
        """What a full receive queue does with one more datagram."""
        return self._protocol.overflow

    async def receive(self) -> Datagram:
        """Wait for and return the next datagram.

        Raises:
            EndpointClosedError: the endpoint was closed and its queue is empty.
            BrokenEndpointError: the socket broke.
            BusyError: another task is already waiting on this endpoint.
        """
        return await self._receive()

    def batches(self, max_size: int = 1024) -> AsyncIterator[list[Datagram]]:
        """Iterate over lists of datagrams: everything queued, up to ``max_size`` at a time.

        For consumers that can take many at once: one wake-up and one await per batch instead
        of per datagram. Ends like the per-datagram iterator (on close, after draining).
        """
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise InvalidArgumentError(
                f"max_size {show(max_size)} must be a positive integer", value=max_size
            )
        return _Batches(self, max_size)

    async def _receive_batch(self, max_size: int) -> list[Datagram]:
        first = await self._receive()
        queue = self._protocol.queue
        take = min(len(queue), max_size - 1)
        batch = [first]
        if take:
            popleft = queue.popleft
            batch.extend(popleft() for _ in range(take))
            self._protocol.counters.delivered += take
        return batch

    @property
    def receive_buffer(self) -> int:
        """The receive buffer the kernel granted the socket (SO_RCVBUF), in bytes."""
        self._check_open()
        return int(self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    def __aiter__(self) -> AsyncIterator[Datagram]:
        return self

    async def __anext__(self) -> Datagram:
        try:
            return await self._receive()
        except EndpointClosedError:
            raise StopAsyncIteration from None


class _SendAPI(_Core):
    """Send half of the public API."""

    _default_destination: tuple[Group, int] | None = None
    _outgoing: Interface | None = None
    _ttl: int = DEFAULT_TTL
    _host_scope: bool = False

    @property
    def ttl(self) -> int:
        """The TTL (IPv4) or hop limit (IPv6) of later sends, read from the kernel (S7).

        TTL 0 is the host scope (S8). Linux would still transmit a TTL-0 datagram on the
        outgoing interface (measured on 6.18), so aiomcast keeps host scope real itself: an
        IPv4 sender with TTL 0 sends out of the loopback interface (members that joined on
        127.0.0.1 receive it; nothing reaches a wire), and an IPv6 sender with hop limit 0
        may only send to interface-local groups (ff01::/16, ff11::/16, ...), which the kernel
        never transmits; other IPv6 groups are refused.
        """
        self._check_open()
        return _socket.get_ttl(self._sock, self._family)

    @ttl.setter
    def ttl(self, value: object) -> None:
        self._check_open()
        ttl = validate_ttl(value)
        _socket.set_ttl(self._sock, self._family, ttl)
        self._ttl = ttl
        self._sync_host_scope()

    def _sync_host_scope(self) -> None:
        # IPv4 host scope (TTL 0) runs over the loopback interface; leaving TTL 0 restores the
        # interface the user chose.
        if self._family is not Family.IPV4:
            return
        if self._ttl == 0 and not self._host_scope:
            _socket.set_interface(self._sock, self._family, _loopback_interface(self._sock))
            self._host_scope = True
        elif self._ttl != 0 and self._host_scope:
            _socket.set_interface(self._sock, self._family, self._outgoing)
            self._host_scope = False

    @property
    def host_scope(self) -> bool:
        """True while TTL 0 routes IPv4 sends over the loopback interface (S8)."""
        return self._host_scope

    @property
    def loopback(self) -> bool:
        """Whether later sends are looped back to members on this host (S14)."""
        self._check_open()
        return _socket.get_loopback(self._sock, self._family)

    @loopback.setter
    def loopback(self, value: bool) -> None:
        self._check_open()
        _socket.set_loopback(self._sock, self._family, value)

    @property
    def interface(self) -> Interface | None:
        """The outgoing interface of later sends; None is the system default (S12, S13).

        While the TTL is 0 (IPv4 host scope) sends go out of the loopback interface instead;
        the interface set here applies again as soon as the TTL is not 0.
        """
        return self._outgoing

    @interface.setter
    def interface(self, value: InterfaceLike | None) -> None:
        self._check_open()
        iface = None if value is None else resolve_interface(value, self._family, sock=self._sock)
        if not self._host_scope:
            _socket.set_interface(self._sock, self._family, iface)
        self._outgoing = iface

    def _outgoing_name(self) -> str:
        return self._outgoing.name if self._outgoing is not None else "default"

    @property
    def destination(self) -> tuple[Group, int] | None:
        """The default (group, port) of send(), if any."""
        return self._default_destination

    async def send_many(
        self,
        payloads: Iterable[bytes | bytearray | memoryview],
        group: GroupLike | None = None,
        port: int | None = None,
    ) -> int:
        """Send several datagrams to one destination in as few syscalls as possible.

        On the fast path datagrams of equal size go out in one UDP_SEGMENT (GSO) send, others
        with sendmmsg; receivers still see separate datagrams. Waits while the transport's
        buffer is above its high-water mark; what the socket cannot take yet waits in order,
        nothing is dropped. Returns the number of datagrams sent.

        Raises:
            PayloadTooLargeError: a payload is too large (nothing is sent).
            KernelError: the kernel refused the datagrams.
        """
        return await _send_many(self, payloads, group, port)

    async def send(
        self,
        payload: bytes | bytearray | memoryview,
        group: GroupLike | None = None,
        port: int | None = None,
    ) -> None:
        """Send one datagram to ``group``:``port`` (default: the endpoint's destination) (S6).

        Waits while the transport's buffer is above its high-water mark (backpressure).

        Raises:
            PayloadTooLargeError: more than 65507 (IPv4) / 65527 (IPv6) bytes.
            EndpointClosedError: the endpoint is closed.
            KernelError: the kernel refused the datagram.
        """
        self._check_open()
        destination = self._destination(group, port, self._default_destination)
        if self._ttl == 0 and self._family is Family.IPV6:
            _check_ipv6_host_scope(destination[0])
        await self._send(payload, destination)


async def _send_many(
    endpoint: _SendAPI, payloads: Iterable[object], group: GroupLike | None, port: int | None
) -> int:
    endpoint._check_open()
    destination = endpoint._destination(group, port, endpoint._default_destination)
    if endpoint._ttl == 0 and endpoint._family is Family.IPV6:
        _check_ipv6_host_scope(destination[0])
    family = endpoint._family
    # Fast path: bytes payloads within the limit are used as they are (no copy); anything
    # else goes through the full check, which names what is wrong.
    limit = max_payload(family)
    items = [
        p if type(p) is bytes and len(p) <= limit else bytes(check_payload(p, family))
        for p in payloads
    ]
    protocol = endpoint._protocol
    transport = endpoint._transport
    if not protocol.writable.is_set():
        await protocol.writable.wait()
        endpoint._check_open()
    if isinstance(transport, FastDatagramTransport) and all(items):
        endpoint._transmit(
            lambda: transport.send_many(items, destination),
            "send_many",
            destination,
            len(items),
            sum(len(p) for p in items),
        )
        return len(items)
    for payload in items:
        await endpoint._send(payload, destination)
    return len(items)


@final
class _Batches:
    """Async iterator returned by ``batches()``."""

    __slots__ = ("_endpoint", "_max")

    def __init__(self, endpoint: _ReceiveAPI, max_size: int) -> None:
        self._endpoint = endpoint
        self._max = max_size

    def __aiter__(self) -> _Batches:
        return self

    async def __anext__(self) -> list[Datagram]:
        try:
            return await self._endpoint._receive_batch(self._max)
        except EndpointClosedError:
            raise StopAsyncIteration from None


@final
class Receiver(_ReceiveAPI):
    """A socket bound to a port that joins groups and yields datagrams with ``async for``."""


@final
class Sender(_SendAPI):
    """A socket that sends datagrams to groups, with TTL, loopback and outgoing interface."""


@final
class Endpoint(_ReceiveAPI, _SendAPI):
    """One socket that both receives (joins, ``async for``) and sends."""


def _check_ipv6_host_scope(group: str) -> None:
    if Group(group).scope is not AddressScope.INTERFACE_LOCAL:
        raise InvalidTTLError(
            f"hop limit 0 (host scope, S8) to {group}: Linux would transmit it on the "
            "interface anyway; use an interface-local group (ff01::/16, ff11::/16) for "
            "host-only traffic, or a hop limit of 1 or more",
            value=0,
        )


def _loopback_interface(sock: socket.socket) -> Interface:
    try:
        return resolve_interface("127.0.0.1", Family.IPV4, sock=sock)
    except InterfaceError as exc:
        raise InterfaceError(
            f"TTL 0 (host scope) runs over the loopback interface, which is not usable: {exc}",
            value="127.0.0.1",
        ) from exc


def _buffered(transport: asyncio.DatagramTransport) -> int:
    # Both asyncio's and uvloop's datagram transports have get_write_buffer_size, but the
    # DatagramTransport type does not declare it.
    size: int = getattr(transport, "get_write_buffer_size", lambda: 0)()
    return size


#: What ``fast=None`` means: None is "wherever supported"; tests set True or False to run the
#: same endpoint tests on both transports.
default_fast: bool | None = None


def _use_fast(fast: bool | None) -> bool:
    if fast is None:
        return batch_receiver_available() if default_fast is None else default_fast
    if not isinstance(fast, bool):
        raise InvalidArgumentError(f"fast must be True, False or None, not {fast!r}", value=fast)
    return fast


def _check_buffer(size: object) -> int | None:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= 1 << 30:
        raise InvalidArgumentError(
            f"receive_buffer {show(size)} must be a number of bytes from 1 to 2**30", value=size
        )
    return size


def _validate_loopback(loopback: object) -> bool:
    if not isinstance(loopback, bool):
        raise InvalidArgumentError(
            f"loopback must be True or False, not {show(loopback)}", value=loopback
        )
    return loopback


@dataclasses.dataclass(frozen=True, slots=True)
class _ReceiveSpec:
    """The receive side of an opener's arguments, checked when the opener is called."""

    groups: list[Group]
    family: Family
    port: int
    queue_size: int
    overflow: Overflow
    reuse: bool
    bind_address: str | None
    host_scope_guard: bool
    gro: bool
    receive_buffer: int | None


def _receive_args(
    groups: GroupLike | Iterable[GroupLike] | None,
    port: object,
    family: object,
    queue_size: object,
    overflow: object,
    *,
    reuse_port: bool,
    bind_address: object,
    host_scope_guard: bool,
    gro: bool,
    receive_buffer: object,
) -> _ReceiveSpec:
    group_list = _groups(groups)
    fam = _family_of(group_list, family)
    size, policy = _validate_queue(queue_size, overflow)
    return _ReceiveSpec(
        groups=group_list,
        family=fam,
        port=validate_port(port, allow_zero=True),
        queue_size=size,
        overflow=policy,
        reuse=reuse_port,
        bind_address=(
            None if bind_address is None else _socket.check_bind_address(bind_address, fam)
        ),
        host_scope_guard=host_scope_guard,
        gro=gro,
        receive_buffer=_check_buffer(receive_buffer),
    )


def _validate_queue(queue_size: object, overflow: object) -> tuple[int, Overflow]:
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
        raise InvalidArgumentError(
            f"queue_size {show(queue_size)} must be a positive integer", value=queue_size
        )
    if not isinstance(overflow, Overflow):
        try:
            overflow = Overflow(overflow)
        except ValueError:
            raise InvalidArgumentError(
                f"overflow {overflow!r} is not one of {', '.join(repr(o.value) for o in Overflow)}",
                value=overflow,
            ) from None
    return queue_size, overflow


async def _open(
    cls: type[E],
    *,
    family: Family,
    interface: InterfaceLike | None,
    sock: socket.socket | None,
    fast: bool,
    receive: _ReceiveSpec | None = None,
    ttl: int | None = None,
    loopback: bool | None = None,
    destination: tuple[Group, int] | None = None,
) -> E:
    iface = resolve_interface(interface, family) if interface is not None else None
    if sock is None:
        raw = _socket.create_socket(family)
    else:
        raw, _ = _socket.adopt_socket(sock, family)
    transport: asyncio.DatagramTransport | None = None
    try:
        if receive is not None:
            bound = int(raw.getsockname()[1])
            if not bound:
                _socket.bind(
                    raw,
                    family,
                    receive.port,
                    receive.bind_address,
                    reuse=receive.reuse,
                    interface=iface,
                )
            elif receive.port and bound != receive.port:
                raise InvalidSocketError(
                    f"sock is bound to port {bound}, not to port {receive.port}", value=bound
                )
            else:
                # Already bound by its owner: still receive only the groups it joins.
                _socket.prepare_receiver(raw, family, reuse=False)
        if ttl is not None:
            _socket.set_ttl(raw, family, ttl)
        if loopback is not None:
            _socket.set_loopback(raw, family, loopback)
        if iface is not None and issubclass(cls, _SendAPI):
            _socket.set_interface(raw, family, iface)
        if receive is not None and receive.receive_buffer is not None:
            _socket.set_receive_buffer(raw, receive.receive_buffer)
        # A Sender does not read: a one-place queue, and everything that arrives is counted
        # as dropped.
        protocol = (
            MulticastProtocol(receive.queue_size, receive.overflow)
            if receive is not None
            else MulticastProtocol(1, Overflow.DROP_NEWEST)
        )
        loop = asyncio.get_running_loop()
        gro = receive is not None and receive.gro
        if fast or gro:
            raw.setblocking(False)
            transport = FastDatagramTransport(loop, raw, protocol, gro=gro)
        else:
            transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=raw)
        endpoint = cls(
            sock=raw, family=family, protocol=protocol, transport=transport, interface=iface
        )
        if isinstance(endpoint, _SendAPI):
            endpoint._default_destination = destination
            endpoint._outgoing = iface
            endpoint._ttl = ttl if ttl is not None else DEFAULT_TTL
            endpoint._sync_host_scope()
        if receive is not None and receive.host_scope_guard and PLATFORM == "linux":
            lo = loopback_index()
            _socket.attach_filter(raw, host_scope_filter(family, lo if lo is not None else 1))
        for group in receive.groups if receive is not None else ():
            endpoint._join(group)
    except BaseException:
        # The socket belongs to the endpoint from the call on (also one given with sock=):
        # a failed open closes it, on asyncio and uvloop alike, before raising.
        if transport is not None:
            transport.abort()
            await asyncio.sleep(0)  # let the loop release the descriptor
        raw.close()
        raise
    return endpoint


def open_receiver(
    groups: GroupLike | Iterable[GroupLike] | None,
    port: int,
    *,
    interface: InterfaceLike | None = None,
    family: object = None,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    overflow: Overflow | str = Overflow.DROP_NEWEST,
    reuse_port: bool = True,
    bind_address: str | None = None,
    sock: socket.socket | None = None,
    host_scope_guard: bool = True,
    fast: bool | None = None,
    gro: bool = False,
    receive_buffer: int | None = None,
) -> Opener[Receiver]:
    """Open a Receiver on ``port`` that joins ``groups`` on ``interface``.

    Args:
        groups: one group, several, or None to join later (then give ``family``).
        port: the UDP port to bind; 0 picks a free one (read it from ``port``).
        interface: where joins go by default: a name, an index or a local address; None lets
            the kernel choose by route (which fails with ENODEV where no route covers the group).
        family: 'ipv4' or 'ipv6' when no group is given.
        queue_size: bound of the queue between the socket and the iterator.
        overflow: what a full queue does (every drop is counted in ``stats.dropped``).
        reuse_port: let other receivers on this host share the port (SO_REUSEADDR).
        bind_address: bind to this address instead of the wildcard (for example the group, to
            receive only datagrams sent to it).
        sock: an existing SOCK_DGRAM socket to use instead of a new one (S3). It belongs to
            the endpoint from the call on, and is closed when the endpoint closes or the open
            fails.
        host_scope_guard: refuse TTL-0 datagrams that arrive from another host (S8: TTL 0
            is the host scope; Linux transmits such datagrams anyway). Refused datagrams are
            counted in ``stats.kernel_dropped``. Linux only.
        fast: receive in batches (recvmmsg) and send in batches (sendmmsg, UDP GSO) through
            aiomcast's own transport; None (default) wherever supported (Linux), False for
            the event loop's own DatagramProtocol transport.
        gro: ask the kernel to coalesce datagrams (UDP_GRO) and split them here; implies the
            fast path.
        receive_buffer: request this SO_RCVBUF size in bytes (SO_RCVBUFFORCE when the
            limit net.core.rmem_max is lower and the process may); read what the kernel
            granted from ``receive_buffer``.

    Returns an Opener: ``rx = await open_receiver(...)`` or ``async with open_receiver(...) as rx``.
    """
    spec = _receive_args(
        groups,
        port,
        family,
        queue_size,
        overflow,
        reuse_port=reuse_port,
        bind_address=bind_address,
        host_scope_guard=host_scope_guard,
        gro=gro,
        receive_buffer=receive_buffer,
    )
    use_fast = _use_fast(fast)
    return Opener(
        lambda: _open(
            Receiver,
            family=spec.family,
            interface=interface,
            sock=sock,
            fast=use_fast,
            receive=spec,
        )
    )


def open_sender(
    group: GroupLike,
    port: int,
    *,
    interface: InterfaceLike | None = None,
    ttl: object = DEFAULT_TTL,
    loopback: bool = DEFAULT_LOOPBACK,
    sock: socket.socket | None = None,
    fast: bool | None = None,
) -> Opener[Sender]:
    """Open a Sender whose send() goes to ``group``:``port`` by default.

    Args:
        group: the default destination group (S6); send() may name another.
        port: the default destination port (1-65535).
        interface: the outgoing interface (S13); None is the system default.
        ttl: TTL / hop limit 0-255 or a TTLScope name; default 1, the subnet (S7, S9).
        loopback: deliver copies to members on this host; default on (S14).
        sock: an existing SOCK_DGRAM socket to use instead of a new one (S3).
        fast: send through aiomcast's batching transport (send_many with sendmmsg / UDP GSO);
            None (default) wherever supported, False for the event loop's transport.
    """
    target = Group(group)
    dport = validate_port(port, allow_zero=False)
    hops = validate_ttl(ttl)
    loop_on = _validate_loopback(loopback)
    use_fast = _use_fast(fast)
    return Opener(
        lambda: _open(
            Sender,
            family=target.family,
            interface=interface,
            sock=sock,
            fast=use_fast,
            ttl=hops,
            loopback=loop_on,
            destination=(target, dport),
        )
    )


def open_endpoint(
    groups: GroupLike | Iterable[GroupLike] | None,
    port: int,
    *,
    interface: InterfaceLike | None = None,
    family: object = None,
    ttl: object = DEFAULT_TTL,
    loopback: bool = DEFAULT_LOOPBACK,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    overflow: Overflow | str = Overflow.DROP_NEWEST,
    reuse_port: bool = True,
    bind_address: str | None = None,
    sock: socket.socket | None = None,
    host_scope_guard: bool = True,
    fast: bool | None = None,
    gro: bool = False,
    receive_buffer: int | None = None,
) -> Opener[Endpoint]:
    """Open an Endpoint that joins ``groups`` on ``port`` and sends to the first of them.

    The interface is used both for joins and as the outgoing interface. Other arguments are
    those of open_receiver and open_sender. With ``port`` 0 the endpoint sends to the port it
    was given by the kernel.
    """
    spec = _receive_args(
        groups,
        port,
        family,
        queue_size,
        overflow,
        reuse_port=reuse_port,
        bind_address=bind_address,
        host_scope_guard=host_scope_guard,
        gro=gro,
        receive_buffer=receive_buffer,
    )
    hops = validate_ttl(ttl)
    loop_on = _validate_loopback(loopback)
    use_fast = _use_fast(fast)

    async def factory() -> Endpoint:
        endpoint = await _open(
            Endpoint,
            family=spec.family,
            interface=interface,
            sock=sock,
            fast=use_fast,
            receive=spec,
            ttl=hops,
            loopback=loop_on,
        )
        if spec.groups:
            endpoint._default_destination = (spec.groups[0], endpoint.port)
        return endpoint

    return Opener(factory)
