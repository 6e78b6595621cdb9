# Design: opening endpoints. open_receiver, open_sender and open_endpoint check every
# argument at the boundary (a typed error naming the value), then create, bind and configure
# the socket synchronously (_socket.py), so that it lives in the network namespace of the
# thread that opens it, and hand it to a transport: aiomcast's batching one (_fastio.py,
# transport="batch", the default wherever the platform has it) or the running loop's own
# datagram transport (transport="loop"). An option that only one transport honours is refused
# with the other, naming both; nothing is overridden in silence. Their result,
# an Opener, can be awaited or used directly as an async context manager.
from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import (
    Callable,
    Coroutine,
    Generator,
    Iterable,
)
from types import TracebackType
from typing import Any, Final, Generic, TypeVar, final

from . import _socket
from ._address import (
    DEFAULT_LOOPBACK,
    DEFAULT_TTL,
    Family,
    Group,
    GroupLike,
    parse_family,
    validate_port,
    validate_ttl,
)
from ._driver import ASYNCIO, current_driver
from ._endpoint import Endpoint, Receiver, Sender, _Core
from ._errors import (
    InvalidArgumentError,
    InvalidGroupError,
    InvalidSocketError,
    TransportOptionError,
    show,
)
from ._fastio import FastDatagramTransport
from ._interfaces import (
    InterfaceLike,
    loopback_index,
    resolve_interface,
)
from ._metadata import Metadata, MetadataDecoder, enable_metadata, parse_metadata
from ._native import batch_receiver_available
from ._options import PLATFORM, check_source, receive_filter
from ._protocol import MulticastProtocol
from ._transport import LoopTransport, Transport
from ._types import Overflow

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "Opener",
    "open_endpoint",
    "open_receiver",
    "open_sender",
]

#: Default bound of the receive queue between the protocol and the iterator.
DEFAULT_QUEUE_SIZE = 4096

E = TypeVar("E", bound=_Core)


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


#: The transports an endpoint can run on: aiomcast's batching one, or the event loop's own.
TRANSPORTS: Final = ("batch", "loop")

#: What ``transport=None`` means: None is "batch wherever supported"; tests set "batch" or
#: "loop" to run the same endpoint tests on both transports.
default_transport: str | None = None


def _check_transport(transport: object, receive: _ReceiveSpec | None) -> str | None:
    """The transport asked for (None: choose when opening), refusing what it cannot honour."""
    if transport is None:
        return None
    if transport not in TRANSPORTS:
        raise InvalidArgumentError(
            f"transport must be 'batch', 'loop' or None, not {show(transport)}", value=transport
        )
    if transport == "batch" and not batch_receiver_available():
        raise TransportOptionError(
            "transport='batch' needs recvmmsg (Linux); this platform has only transport='loop'",
            value=transport,
        )
    if transport == "loop" and receive is not None:
        needs_batch = [
            ("gro=True", receive.gro),
            (f"metadata={receive.metadata!s}", bool(receive.metadata)),
            (f"max_size={receive.max_size}", receive.max_size is not None),
        ]
        for option, given in needs_batch:
            if given:
                raise TransportOptionError(
                    f"transport='loop' cannot honour {option}: the event loop's own transport "
                    "reads one datagram at a time without it; use transport='batch' (or None)",
                    value=option,
                )
    return str(transport)


def _check_buffer(size: object) -> int | None:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= 1 << 30:
        raise InvalidArgumentError(
            f"receive_buffer {show(size)} must be a number of bytes from 1 to 2**30", value=size
        )
    return size


def _check_max_size(size: object) -> int | None:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= 65535:
        raise InvalidArgumentError(
            f"max_size {show(size)} must be a number of bytes from 1 to 65535", value=size
        )
    return size


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be True or False, not {show(value)}", value=value)
    return value


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
    metadata: Metadata
    max_size: int | None
    sources: tuple[str, ...] = ()  # join each group from each of these (source-specific)


def _check_sources(sources: object, groups: list[Group], family: Family) -> tuple[str, ...]:
    if sources is None:
        return ()
    if isinstance(sources, str) or not isinstance(sources, Iterable):
        raise InvalidArgumentError(
            f"sources {show(sources)} must be a list of source addresses", value=sources
        )
    checked = tuple(dict.fromkeys(str(check_source(item, family)) for item in sources))
    if checked and not groups:
        raise InvalidArgumentError("sources= needs groups to join from them", value=sources)
    return checked


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
    metadata: object,
    max_size: object,
    sources: object = None,
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
        reuse=_flag("reuse_port", reuse_port),
        bind_address=(
            None if bind_address is None else _socket.check_bind_address(bind_address, fam)
        ),
        host_scope_guard=_flag("host_scope_guard", host_scope_guard),
        gro=_flag("gro", gro),
        receive_buffer=_check_buffer(receive_buffer),
        metadata=parse_metadata(metadata),
        max_size=_check_max_size(max_size),
        sources=_check_sources(sources, group_list, fam),
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
                f"overflow {show(overflow)} is not one of "
                f"{', '.join(repr(o.value) for o in Overflow)}",
                value=overflow,
            ) from None
    return queue_size, overflow


async def _open(
    cls: type[E],
    *,
    family: Family,
    interface: InterfaceLike | None,
    sock: socket.socket | None,
    transport_choice: str | None,
    receive: _ReceiveSpec | None = None,
    ttl: int | None = None,
    loopback: bool | None = None,
    destination: tuple[Group, int] | None = None,
) -> E:
    # A socket aiomcast refuses to take (S3: not SOCK_DGRAM; the other family; closed) stays
    # its owner's. Once taken it is the endpoint's: a failed open closes it.
    raw = _socket.create_socket(family) if sock is None else _socket.adopt_socket(sock, family)[0]
    try:
        iface = resolve_interface(interface, family) if interface is not None else None
    except BaseException:
        raw.close()
        raise
    transport: Transport | asyncio.DatagramTransport | None = None
    protocol: MulticastProtocol | None = None
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
        sends = issubclass(cls, Sender | Endpoint)
        if iface is not None and sends:
            _socket.set_interface(raw, family, iface)
        if receive is not None and receive.receive_buffer is not None:
            _socket.set_receive_buffer(raw, receive.receive_buffer)
        # A Sender does not read: a one-place queue, and everything that arrives is counted
        # as dropped.
        # The driver is asyncio's unless aiomcast.anyio opens the endpoint on trio; that has
        # no loop transports, so it always takes the fast transport (_driver.py).
        driver = current_driver.get() or ASYNCIO
        protocol = (
            MulticastProtocol(receive.queue_size, receive.overflow, driver)
            if receive is not None
            else MulticastProtocol(1, Overflow.DROP_NEWEST, driver)
        )
        gro = receive is not None and receive.gro
        wanted = receive.metadata if receive is not None else Metadata.NONE
        slot = receive.max_size if receive is not None and receive.max_size else 65536
        if transport_choice == "loop" and not driver.native_transports:
            raise TransportOptionError(
                "transport='loop' needs the event loop's datagram transports, which trio does "
                "not have: use transport='batch' (or None)",
                value="loop",
            )
        # None: batch wherever supported (or where the tests' default_transport says), and
        # wherever only batch can honour what was asked.
        preferred = (
            batch_receiver_available()
            if default_transport is None
            else (default_transport == "batch")
        )
        batch = transport_choice == "batch" or (
            transport_choice is None
            and (preferred or gro or bool(wanted) or slot != 65536 or not driver.native_transports)
        )
        if batch:
            raw.setblocking(False)
            enable_metadata(raw, int(family), wanted)
            transport = FastDatagramTransport(
                driver.reactor(protocol.connection_lost),
                raw,
                protocol,
                gro=gro,
                slot=slot,
                metadata=MetadataDecoder(raw, wanted) if wanted else None,
            )
        else:
            loop = asyncio.get_running_loop()
            inner, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=raw)
            transport = LoopTransport(inner, protocol, raw)
        endpoint = cls(
            sock=raw,
            family=family,
            protocol=protocol,
            transport=transport,
            interface=iface,
            destination=destination,
            ttl=ttl,
        )
        # A Receiver yields group traffic only: unicast datagrams to the host on its port and
        # IPv4 broadcasts are refused by the kernel (counted in kernel_dropped). An Endpoint
        # also takes unicast (replies to what it sends).
        group_only = issubclass(cls, Receiver)
        if receive is not None and PLATFORM == "linux" and (receive.host_scope_guard or group_only):
            lo = loopback_index()
            program = receive_filter(
                family,
                lo if lo is not None else 1,
                host_scope=receive.host_scope_guard,
                multicast_only=group_only,
            )
            _socket.attach_filter(raw, program)
        if receive is not None:
            for group in receive.groups:
                for source in receive.sources or (None,):
                    endpoint._join(group, source=source)
    except BaseException:
        # The socket belongs to the endpoint from the call on (also one given with sock=):
        # a failed open closes it, on asyncio and uvloop alike, before raising.
        if transport is None and protocol is not None:
            # Cancelled inside create_datagram_endpoint: uvloop has made its transport (which
            # holds the descriptor) and calls connection_made on the next pass of the loop;
            # let it, then close what it made (else the descriptor leaks).
            await protocol.driver.settle()
            transport = protocol.transport
        if transport is not None and protocol is not None:
            transport.abort()
            await protocol.driver.settle()  # let the loop release the descriptor
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
    transport: str | None = None,
    gro: bool = False,
    receive_buffer: int | None = None,
    metadata: Metadata | bool | str | Iterable[str] | None = None,
    max_size: int | None = None,
    sources: Iterable[str] | None = None,
    follow_interfaces: bool = False,
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
        sock: an existing SOCK_DGRAM socket to use instead of a new one (S3). Once the
            awaited open takes it, it belongs to the endpoint and is closed when the endpoint
            closes or the open fails; a socket refused as such (not SOCK_DGRAM, the other
            family, closed) or arguments refused at the call leave it to its owner.
        host_scope_guard: refuse TTL-0 datagrams that arrive from another host (S8: TTL 0
            is the host scope; Linux transmits such datagrams anyway). Refused datagrams are
            counted in ``stats.kernel_dropped``. Linux only.
        transport: "batch" receives in batches (recvmmsg) and sends in batches (sendmmsg, UDP
            GSO) through aiomcast's own transport; "loop" uses the event loop's own
            DatagramProtocol transport (not on trio); None (default) "batch" wherever
            supported (Linux). "loop" refuses ``gro``, ``metadata`` and ``max_size``
            (TransportOptionError, naming both), which only "batch" honours.
        gro: ask the kernel to coalesce datagrams (UDP_GRO) and split them here; needs the
            batch transport. Caution: when the receive buffer is full the kernel drops a coalesced
            buffer whole and counts it as one drop, however many datagrams it carried, so
            ``stats.kernel_dropped`` is then a lower bound (pinned by a test); give such a
            receiver a large ``receive_buffer``, or count losses with sequence numbers.
        receive_buffer: request this SO_RCVBUF size in bytes (SO_RCVBUFFORCE when the
            limit net.core.rmem_max is lower and the process may: a container sees the
            host's limit and cannot raise it); read what the kernel granted from
            ``receive_buffer``.
        metadata: per-datagram metadata to read from the kernel: True for all, or Metadata
            flags, or names (``group``, ``interface``, ``ttl``, ``timestamp``,
            ``kernel_drops``); fills those fields of each Datagram. None (default) reads
            none and costs nothing. Needs the batch transport. Linux.
        max_size: the longest datagram to receive whole, in bytes (default: any, 64 KiB
            buffers). Longer ones are delivered cut short with ``Datagram.truncated`` set and
            counted in ``stats.truncated``; smaller values save memory (the batch transport
            keeps 64 buffers of this size). Needs the batch transport.
        sources: join each group source-specifically from each of these senders (IGMPv3 /
            MLDv2); required for groups of the SSM ranges 232.0.0.0/8 and ff3x::/32.
        follow_interfaces: keep the memberships in step with the host's interfaces (see
            ``Receiver.follow_interfaces``; the watcher is ``interface_watcher``).

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
        metadata=metadata,
        max_size=max_size,
        sources=sources,
    )
    chosen = _check_transport(transport, spec)
    follow = _flag("follow_interfaces", follow_interfaces)
    return Opener(
        lambda: _following(
            _open(
                Receiver,
                family=spec.family,
                interface=interface,
                sock=sock,
                transport_choice=chosen,
                receive=spec,
            ),
            follow,
        )
    )


async def _following(opening: Coroutine[Any, Any, E], follow: bool) -> E:
    endpoint = await opening
    if follow and isinstance(endpoint, Receiver | Endpoint):
        try:
            endpoint.follow_interfaces()
        except BaseException:
            await endpoint.aclose()
            raise
    return endpoint


def open_sender(
    group: GroupLike,
    port: int,
    *,
    interface: InterfaceLike | None = None,
    ttl: object = DEFAULT_TTL,
    loopback: bool = DEFAULT_LOOPBACK,
    sock: socket.socket | None = None,
    transport: str | None = None,
) -> Opener[Sender]:
    """Open a Sender whose send() goes to ``group``:``port`` by default.

    Args:
        group: the default destination group (S6); send() may name another.
        port: the default destination port (1-65535).
        interface: the outgoing interface (S13); None is the system default.
        ttl: TTL / hop limit 0-255 or a TTLScope name; default 1, the subnet (S7, S9).
        loopback: deliver copies to members on this host; default on (S14).
        sock: an existing SOCK_DGRAM socket to use instead of a new one (S3).
        transport: "batch" sends through aiomcast's batching transport (send_many with
            sendmmsg / UDP GSO), "loop" through the event loop's own; None (default) "batch"
            wherever supported.
    """
    target = Group(group)
    dport = validate_port(port, allow_zero=False)
    hops = validate_ttl(ttl)
    loop_on = _validate_loopback(loopback)
    chosen = _check_transport(transport, None)
    return Opener(
        lambda: _open(
            Sender,
            family=target.family,
            interface=interface,
            sock=sock,
            transport_choice=chosen,
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
    transport: str | None = None,
    gro: bool = False,
    receive_buffer: int | None = None,
    metadata: Metadata | bool | str | Iterable[str] | None = None,
    max_size: int | None = None,
    sources: Iterable[str] | None = None,
    follow_interfaces: bool = False,
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
        metadata=metadata,
        max_size=max_size,
        sources=sources,
    )
    hops = validate_ttl(ttl)
    loop_on = _validate_loopback(loopback)
    chosen = _check_transport(transport, spec)
    follow = _flag("follow_interfaces", follow_interfaces)

    async def factory() -> Endpoint:
        endpoint = await _following(
            _open(
                Endpoint,
                family=spec.family,
                interface=interface,
                sock=sock,
                transport_choice=chosen,
                receive=spec,
                ttl=hops,
                loopback=loop_on,
            ),
            follow,
        )
        if spec.groups:
            endpoint._default_destination = (spec.groups[0], endpoint.port)
        return endpoint

    return Opener(factory)
