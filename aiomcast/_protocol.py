# Design: the event-loop side. An asyncio DatagramProtocol puts each received datagram into a
# bounded queue that the endpoint's async iterator drains. The bound is a parameter, the
# overflow policy is explicit (drop the newest, as a kernel socket buffer does, or the oldest),
# and every drop is counted. The protocol also carries write flow control (pause_writing) and
# turns send failures reported through error_received into exceptions for the caller.
from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import typing
from typing import NamedTuple

from ._driver import ASYNCIO, Driver, Flag, Waiter

__all__ = ["Counters", "Datagram", "MulticastProtocol", "Overflow", "Stats"]


class Datagram(NamedTuple):
    """One received datagram.

    The metadata fields are filled in when the receiver asked for them
    (``open_receiver(..., metadata=...)``, see Metadata) and are None otherwise.

    Attributes:
        payload: the UDP payload (cut to the receiver's ``max_size`` when ``truncated``).
        source: the sender's address (IPv6 link-local sources carry no zone here).
        source_port: the sender's UDP port.
        group: the destination address of the datagram: the group it was sent to.
        interface: the name of the interface it arrived on.
        ttl: the TTL / hop limit it arrived with.
        timestamp_ns: when the kernel received it, nanoseconds since the epoch.
        kernel_drops: the socket's count of datagrams the kernel dropped (receive buffer
            full) up to when this one was queued; a rise between two datagrams is a loss.
        truncated: True when the datagram was longer than the receiver's ``max_size`` and
            ``payload`` holds only its beginning (counted in ``stats.truncated``).
    """

    payload: bytes
    source: str
    source_port: int
    group: str | None = None
    interface: str | None = None
    ttl: int | None = None
    timestamp_ns: int | None = None
    kernel_drops: int | None = None
    truncated: bool = False


class Overflow(enum.Enum):
    """What a full receive queue does with one more datagram (each drop is counted)."""

    #: Keep what is queued and drop the arriving datagram (what a kernel socket buffer does).
    DROP_NEWEST = "drop-newest"
    #: Drop the oldest queued datagram to make room (freshest data wins).
    DROP_OLDEST = "drop-oldest"


@dataclasses.dataclass(slots=True)
class Counters:
    """Mutable counters owned by one endpoint; read them through ``Endpoint.stats``."""

    received: int = 0
    received_bytes: int = 0
    dropped: int = 0
    sent: int = 0
    sent_bytes: int = 0
    send_errors: int = 0
    socket_errors: int = 0
    truncated: int = 0

    def snapshot(self, queued: int, kernel_dropped: int = 0) -> Stats:
        """Return an immutable copy with the current queue length and kernel drop count.

        Every datagram received is delivered, dropped or still queued, so ``delivered`` is
        counted by difference: taking a datagram off the queue costs no counter update.
        """
        return Stats(
            received=self.received,
            received_bytes=self.received_bytes,
            delivered=self.received - self.dropped - queued,
            dropped=self.dropped,
            queued=queued,
            sent=self.sent,
            sent_bytes=self.sent_bytes,
            send_errors=self.send_errors,
            socket_errors=self.socket_errors,
            kernel_dropped=kernel_dropped,
            truncated=self.truncated,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of an endpoint's counters.

    Attributes:
        received: datagrams read from the socket.
        received_bytes: payload bytes read from the socket.
        delivered: datagrams handed to the consumer.
        dropped: datagrams dropped because the receive queue was full (slow consumer), or
            because the endpoint does not receive (a Sender).
        queued: datagrams waiting in the receive queue now.
        sent: datagrams accepted by the kernel or the transport.
        sent_bytes: payload bytes of those.
        send_errors: sends the kernel refused.
        socket_errors: errors the transport reported outside a send call (receive errors,
            failures of datagrams the transport had buffered).
        kernel_dropped: datagrams the kernel dropped for this socket before aiomcast saw them:
            receive buffer full, or refused by the host-scope guard (TTL 0 from another host).
            Linux (SO_MEMINFO); 0 elsewhere.
        truncated: datagrams longer than the receiver's ``max_size``, delivered cut short
            with ``Datagram.truncated`` set (also counted in received and delivered).

    ``received == delivered + dropped + queued`` holds at every moment.
    """

    received: int
    received_bytes: int
    delivered: int
    dropped: int
    queued: int
    sent: int
    sent_bytes: int
    send_errors: int
    socket_errors: int
    kernel_dropped: int = 0
    truncated: int = 0


class MulticastProtocol(asyncio.DatagramProtocol):
    """DatagramProtocol feeding a bounded queue; one per endpoint."""

    def __init__(self, queue_size: int, overflow: Overflow, driver: Driver = ASYNCIO) -> None:
        self.queue: collections.deque[Datagram] = collections.deque()
        self.queue_size = queue_size
        self.overflow = overflow
        self.counters = Counters()
        self.transport: asyncio.DatagramTransport | None = None
        # The waiting primitives come from the driver: asyncio futures and an asyncio.Event
        # on asyncio and uvloop, anyio events on trio (_driver.py).
        self.driver = driver
        self.waiter: Waiter | None = None
        self.lost: Waiter = driver.waiter()
        self.broken: BaseException | None = None
        self.writable: Flag = driver.flag()
        self.sending = False
        self.send_failure: OSError | None = None
        self.last_error: OSError | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDPTransport is not a subclass of asyncio.DatagramTransport, only alike.
        self.transport = typing.cast(asyncio.DatagramTransport, transport)

    # Hot path: one call per datagram. It avoids any allocation beyond the Datagram tuple and
    # wakes the consumer only when one is waiting.
    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        counters = self.counters
        counters.received += 1
        counters.received_bytes += len(data)
        queue = self.queue
        if len(queue) >= self.queue_size:
            counters.dropped += 1
            if self.overflow is Overflow.DROP_NEWEST or not queue:
                return
            queue.popleft()
        queue.append(Datagram(data, str(addr[0]), int(addr[1])))
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # Hot path of the fast transport: one call per batch of ready-made Datagram tuples; wakes
    # the consumer once.
    def datagrams_received(self, received: list[Datagram], nbytes: int) -> None:
        counters = self.counters
        queue = self.queue
        room = self.queue_size - len(queue)
        counters.received += len(received)
        counters.received_bytes += nbytes
        if room < len(received):
            overflow = len(received) - max(room, 0)
            counters.dropped += overflow
            if self.overflow is Overflow.DROP_NEWEST:
                received = received[: max(room, 0)]
            else:
                for _ in range(min(overflow, len(queue))):
                    queue.popleft()
                received = received[-self.queue_size :]
        queue.extend(received)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def error_received(self, exc: Exception) -> None:
        if not isinstance(exc, OSError):  # pragma: no cover - transports only report OSError
            return
        self.last_error = exc
        if self.sending:
            self.send_failure = exc
            self.counters.send_errors += 1
        else:
            self.counters.socket_errors += 1

    def take_send_failure(self) -> OSError | None:
        """Return and clear the failure error_received reported during the last sendto."""
        failure, self.send_failure = self.send_failure, None
        return failure

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self.broken = exc
        if not self.lost.done():
            self.lost.set_result(None)
        self.writable.set()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()
