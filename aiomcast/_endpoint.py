# Design: the public endpoints. Three final classes share one core: Receiver (join, leave,
# async iteration), Sender (send, TTL, loopback, outgoing interface) and Endpoint (both on one
# socket). The openers (_open.py) build them on a configured socket, a MulticastProtocol and
# a transport. Memberships go through the endpoint's MembershipTable (_membership.py), which
# holds every rule of joining and leaving and which the interface watcher shares.
#
# Closing leaves every membership, closes the transport, waits for connection_lost and makes
# sure the file descriptor is released before aclose() returns (anyio's
# test_aclose_waits_for_fd_release), so the port can be bound again at once.
from __future__ import annotations

import socket
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
)
from types import TracebackType
from typing import Any, Self, final

from anyio import TypedAttributeProvider

from . import _native, _socket
from ._address import (
    DEFAULT_TTL,
    Family,
    Group,
    GroupLike,
    check_payload,
    max_payload,
    validate_ttl,
)
from ._attributes import typed_attributes
from ._driver import Driver
from ._errors import (
    BrokenEndpointError,
    BusyError,
    EndpointClosedError,
    InterfaceError,
    InvalidArgumentError,
    KernelError,
    show,
)
from ._interfaces import (
    Interface,
    InterfaceLike,
    resolve_interface,
)
from ._membership import MembershipTable
from ._options import PLATFORM, check_source
from ._protocol import MulticastProtocol
from ._send import (
    check_ipv6_host_scope,
    check_iterable,
    check_payloads,
    destination_address,
    unicast_address,
)
from ._transport import Transport
from ._types import Datagram, Membership, Overflow, Stats
from ._watch import FollowingAPI, InterfaceWatcher

__all__ = ["Endpoint", "Receiver", "Sender", "driver_of"]


class _Core(TypedAttributeProvider):
    """State and behaviour shared by every endpoint; not public."""

    def __init__(
        self,
        *,
        sock: socket.socket,
        family: Family,
        protocol: MulticastProtocol,
        transport: Transport,
        interface: Interface | None,
        destination: tuple[Group, int] | None = None,
        ttl: int | None = None,
    ) -> None:
        # ``destination`` and ``ttl`` belong to the send side: _SendAPI's __init__ takes them,
        # and a Receiver, which has none, ignores them (the openers build every kind alike).
        self._sock = sock
        self._family = family
        self._protocol = protocol
        self._transport = transport
        self._default_interface = interface
        self._table = MembershipTable(family, _socket.SocketKernel(sock))
        self._watcher: InterfaceWatcher | None = None
        self._scope_ids: dict[str, int] = {}
        self._final_kernel_drops: int | None = None
        self._default_sockaddr: tuple[Any, ...] | None = None
        self._payload_limit = max_payload(family)
        # The transport's send-now-or-say-no, for Sender.send's hot path (the loop's
        # transport always says no).
        self._quick_send: Callable[[bytes, Any], bool] = transport.try_send
        self._closing = False
        self._closed = False
        self._reading = False
        self._local = sock.getsockname()

    # -- common -----------------------------------------------------------------------------

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """Typed attributes for anyio's ``extra()``: MulticastAttribute and SocketAttribute."""
        return typed_attributes(
            self._sock,
            self._family,
            lambda: self.local_address,
            lambda: self.interface if isinstance(self, _SendAPI) else self._default_interface,
        )

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
            await self._protocol.driver.wait_shielded(self._protocol.lost)
            return
        self._closing = True
        if self._watcher is not None:
            await self._watcher.aclose()  # no rejoin while the memberships are left below
        self._final_kernel_drops = _socket.kernel_drops(self._sock)
        # The kernel drops memberships when the socket closes; leaving first sends the leave
        # reports now. A vanished interface is no reason to fail a close.
        self._table.close()
        protocol = self._protocol
        waiter = protocol.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._transport.close()
        try:
            await protocol.driver.wait_shielded(protocol.lost)
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

    def _source_text(self, source: object) -> str | None:
        return None if source is None else str(check_source(source, self._family))

    def _join(
        self, group: GroupLike, interface: InterfaceLike | None = None, source: object = None
    ) -> Membership:
        self._check_open()
        value = Group(group)
        self._table.check_family(value)
        text = self._source_text(source)
        return self._table.join(value, self._interface_for(value, interface), text)

    def _leave(
        self, group: GroupLike, interface: InterfaceLike | None = None, source: object = None
    ) -> None:
        self._check_open()
        value = Group(group)
        text = self._source_text(source)
        self._table.leave(value, self._interface_for(value, interface), text)

    def _filter(
        self, block: bool, group: GroupLike, source: object, interface: InterfaceLike | None
    ) -> None:
        self._check_open()
        value = Group(group)
        text = self._source_text(source)
        if text is None:
            raise InvalidArgumentError("give the source address to block or unblock", value=None)
        self._table.filter(block, value, self._interface_for(value, interface), text)

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
        return destination_address(group, port, default, self._family, self._zone_index)

    def _zone_index(self, zone: str) -> int:
        index = self._scope_ids.get(zone, 0)
        if not index:
            index = resolve_interface(zone, self._family, sock=self._sock).index
            self._scope_ids[zone] = index
        return index

    async def _send(self, payload: object, destination: tuple[Any, ...]) -> None:
        self._check_open()
        data = check_payload(payload, self._family)
        protocol = self._protocol
        if not protocol.writable.is_set():
            await protocol.writable.wait()
            self._check_open()
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        if not size:
            # A zero-length datagram leaves after what the transport holds (_transport.py).
            await self._transport.drained()
            self._check_open()
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
            raise self._send_error(failure, operation, destination) from failure
        protocol.counters.sent += count
        protocol.counters.sent_bytes += nbytes

    def _send_error(
        self, failure: OSError, operation: str, destination: tuple[Any, ...]
    ) -> KernelError:
        return KernelError.from_os_error(
            failure, operation=operation, group=str(destination[0]), interface=self._outgoing_name()
        )

    def _outgoing_name(self) -> str:
        return "default"


class _ReceiveAPI(FollowingAPI, _Core):
    """Receive half of the public API."""

    def join(
        self,
        group: GroupLike,
        interface: InterfaceLike | None = None,
        *,
        source: str | None = None,
    ) -> Membership:
        """Join ``group`` on ``interface`` (default: the endpoint's interface) (S1, S4, S5).

        With ``source`` the membership is source-specific (IGMPv3 / MLDv2 INCLUDE mode): only
        datagrams from that sender arrive. Join several sources one by one. A group of the
        SSM ranges (232.0.0.0/8, ff3x::/32) must be joined with a source.

        Raises:
            AlreadyJoinedError: already a member on that interface (from that source); the
                endpoint stays usable.
            SourceFilterError: the group is joined there in the other mode (any-source vs
                source-specific).
            InvalidGroupError: not a group, of the other family, or an SSM group without source.
            InvalidSourceError: the source is not a unicast address of the endpoint's family.
            InterfaceError: the interface cannot be used.
            KernelError: the kernel refused (errno, group, interface and a hint attached).
        """
        return self._join(group, interface, source)

    def leave(
        self,
        group: GroupLike,
        interface: InterfaceLike | None = None,
        *,
        source: str | None = None,
    ) -> None:
        """Leave ``group`` on ``interface`` (S1, S4, S5); with ``source``, that source only.

        Leaving an any-source membership also forgets its blocked sources.

        Raises:
            NotJoinedError: not a member on that interface (from that source); the endpoint
                stays usable.
        """
        self._leave(group, interface, source)

    def block(self, group: GroupLike, source: str, interface: InterfaceLike | None = None) -> None:
        """Stop datagrams from ``source`` on the any-source membership of ``group``.

        The kernel filters them (IGMPv3 / MLDv2 EXCLUDE mode) and tells routers; read the
        blocked sources from ``blocked``.

        Raises:
            NotJoinedError: no any-source membership of the group on that interface.
            SourceFilterError: the group is joined source-specifically, or the source is
                already blocked.
            InvalidSourceError: the source is not a unicast address of the endpoint's family.
            KernelError: the kernel refused (for example more sources than
                net.ipv4.igmp_max_msf / net.ipv6.mld_max_msf allow: ENOBUFS).
        """
        self._filter(True, group, source, interface)

    def unblock(
        self, group: GroupLike, source: str, interface: InterfaceLike | None = None
    ) -> None:
        """Let datagrams from a blocked ``source`` of ``group`` through again.

        Raises:
            NotJoinedError: no any-source membership of the group on that interface.
            SourceFilterError: the source is not blocked.
        """
        self._filter(False, group, source, interface)

    @property
    def blocked(self) -> dict[Membership, frozenset[str]]:
        """The blocked sources of each any-source membership that has some (a copy)."""
        return self._table.blocked

    @property
    def memberships(self) -> frozenset[Membership]:
        """The (group, interface, source) memberships held now."""
        return self._table.memberships

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
        protocol = self._protocol
        queue = protocol.queue
        # Waits only when nothing is queued, in __anext__ (whose StopAsyncIteration, once
        # closed, ends the batch iterator too); delivered is counted by difference.
        batch = [] if queue else [await self.__anext__()]
        take = min(len(queue), max_size - len(batch))
        if take == len(queue):  # fast path: the whole queue in one C-level copy
            batch += queue
            queue.clear()
        else:
            popleft = queue.popleft
            batch += [popleft() for _ in range(take)]
        return batch

    @property
    def receive_buffer(self) -> int:
        """The receive buffer the kernel granted the socket (SO_RCVBUF), in bytes."""
        self._check_open()
        return int(self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    def __aiter__(self) -> AsyncIterator[Datagram]:
        # Fast path: the C iterator (_speedups.c) hands over queued datagrams without a
        # coroutine per datagram, and calls __anext__ only when the queue is empty (to wait,
        # to raise BusyError or to end the iteration). Looked up here, at each ``async for``,
        # so the tests can run the pure-Python stand-in.
        if _native.QueueIterator is not None:
            return _native.QueueIterator(self._protocol.queue, self.__anext__)
        return self

    async def _receive(self) -> Datagram:
        # The wait lives in __anext__, the hot path of ``async for``; here the end of the
        # iteration is the endpoint's closing again.
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise EndpointClosedError(f"{type(self).__name__} is closed") from None

    # Hot path of ``async for``: a queued datagram is taken here, and an empty queue is waited
    # for here too, so a datagram that wakes the consumer after a quiet spell resumes one
    # coroutine frame, not two.
    async def __anext__(self) -> Datagram:
        protocol = self._protocol
        queue = protocol.queue
        if not queue:
            if self._reading:
                raise BusyError(
                    f"another task is already receiving from this {type(self).__name__}"
                )
            self._reading = True
            try:
                while not queue:
                    self._check_open()
                    waiter = protocol.driver.waiter()
                    protocol.waiter = waiter
                    try:
                        await waiter
                    finally:
                        protocol.waiter = None
            except EndpointClosedError:
                raise StopAsyncIteration from None
            finally:
                self._reading = False
        return queue.popleft()


class _SendAPI(_Core):
    """Send half of the public API."""

    _default_destination: tuple[Group, int] | None = None
    _outgoing: Interface | None = None
    _ttl: int = DEFAULT_TTL
    _host_scope: bool = False

    def __init__(
        self,
        *,
        sock: socket.socket,
        family: Family,
        protocol: MulticastProtocol,
        transport: Transport,
        interface: Interface | None,
        destination: tuple[Group, int] | None = None,
        ttl: int | None = None,
    ) -> None:
        super().__init__(
            sock=sock, family=family, protocol=protocol, transport=transport, interface=interface
        )
        self._default_destination = destination
        self._outgoing = self._default_interface
        self._ttl = ttl if ttl is not None else DEFAULT_TTL
        self._sync_host_scope()

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
    def gso(self) -> bool:
        """Whether send_many may send equal-size datagrams as one UDP_SEGMENT (GSO) send.

        On by default on aiomcast's transport (Linux); False turns send_many into plain
        sendmmsg batches (for comparison, or for devices that mishandle GSO). Always False
        on the event loop's own transport (``transport="loop"``).
        """
        return self._transport.gso

    @gso.setter
    def gso(self, value: bool) -> None:
        self._check_open()
        if not isinstance(value, bool):
            raise InvalidArgumentError(f"gso must be True or False, not {show(value)}", value=value)
        # The loop's transport refuses True (InvalidArgumentError naming transport='batch').
        self._transport.gso = value and PLATFORM == "linux"

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
        # Hot path: bytes to the default destination (already checked by an earlier send)
        # through aiomcast's transport with nothing queued: one sendto, no closure, no
        # second coroutine. Anything else, and a full socket, takes the general path.
        address = self._default_sockaddr
        quick = self._quick_send
        if (
            address is not None
            and group is None
            and port is None
            and type(payload) is bytes
            and 0 < len(payload) <= self._payload_limit
            and not self._closing
            and (self._ttl or self._family is Family.IPV4)
        ):
            try:
                sent = quick(payload, address)
            except OSError as exc:
                self._check_open()  # a socket that broke says so
                self._protocol.counters.send_errors += 1
                raise self._send_error(exc, "send", address) from exc
            if sent:
                counters = self._protocol.counters
                counters.sent += 1
                counters.sent_bytes += len(payload)
                return
        self._check_open()
        destination = self._destination(group, port, self._default_destination)
        if self._ttl == 0 and self._family is Family.IPV6:
            check_ipv6_host_scope(destination[0])
        await self._send(payload, destination)

    async def send_to(
        self, payload: bytes | bytearray | memoryview, address: object, port: int
    ) -> None:
        """Send one datagram by unicast to ``address``:``port``, from this endpoint's socket.

        The reply of a responder: ``await ep.send_to(answer, d.source, d.source_port)``
        answers a query ``d`` from the port the query was sent to, so it gets through to a
        peer that only expects answers from there (ssmping, mDNS legacy unicast, SSDP). An
        IPv6 link-local peer needs its zone: ``fe80::1%eth0``. It goes out as the routing
        table says, with the system's unicast TTL (IP_TTL), not the endpoint's multicast
        TTL, and waits while the transport's buffer is above its high-water mark.

        Raises:
            InvalidArgumentError: ``address`` is not a unicast address of the endpoint's
                family (a group goes to send()).
            InvalidPortError: ``port`` is not 1-65535.
            PayloadTooLargeError: more than 65507 (IPv4) / 65527 (IPv6) bytes.
            EndpointClosedError: the endpoint is closed.
            KernelError: the kernel refused the datagram (no route to the peer, for one).
        """
        self._check_open()
        destination = unicast_address(address, port, self._family, self._zone_index)
        await self._send(payload, destination)


async def _send_many(
    endpoint: _SendAPI, payloads: Iterable[object], group: GroupLike | None, port: int | None
) -> int:
    endpoint._check_open()
    check_iterable(payloads)
    destination = endpoint._destination(group, port, endpoint._default_destination)
    if endpoint._ttl == 0 and endpoint._family is Family.IPV6:
        check_ipv6_host_scope(destination[0])
    items, uniform = check_payloads(payloads, endpoint._family)
    protocol = endpoint._protocol
    transport = endpoint._transport
    if not protocol.writable.is_set():
        await protocol.writable.wait()
        endpoint._check_open()
    if uniform or all(items):  # empty ones go one by one, after what is held (_send)
        count = len(items)
        nbytes = uniform * count if uniform else sum(map(len, items))
        endpoint._transmit(
            lambda: transport.send_many(items, destination, uniform),
            "send_many",
            destination,
            count,
            nbytes,
        )
        return count
    for payload in items:
        await endpoint._send(payload, destination)
    return len(items)


def driver_of(endpoint: _Core) -> Driver:
    """The driver that ``endpoint`` waits with (asyncio's, or anyio's on trio)."""
    return endpoint._protocol.driver


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
        return await self._endpoint._receive_batch(self._max)


@final
class Receiver(_ReceiveAPI):
    """A socket bound to a port that joins groups and yields datagrams with ``async for``."""


@final
class Sender(_SendAPI):
    """A socket that sends datagrams to groups, with TTL, loopback and outgoing interface."""


@final
class Endpoint(_ReceiveAPI, _SendAPI):
    """One socket that both receives (joins, ``async for``) and sends."""


def _loopback_interface(sock: socket.socket) -> Interface:
    try:
        return resolve_interface("127.0.0.1", Family.IPV4, sock=sock)
    except InterfaceError as exc:
        raise InterfaceError(
            f"TTL 0 (host scope) runs over the loopback interface, which is not usable: {exc}",
            value="127.0.0.1",
        ) from exc
