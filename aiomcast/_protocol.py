# Design: the event-loop side. An asyncio DatagramProtocol puts each received datagram into a
# bounded queue that the endpoint's async iterator drains. The bound is a parameter, the
# overflow policy is explicit (drop the newest, as a kernel socket buffer does, or the oldest),
# and every drop is counted. The protocol also carries write flow control (pause_writing) and
# turns send failures reported through error_received into exceptions for the caller.
from __future__ import annotations

import asyncio
import collections
import typing

from ._driver import ASYNCIO, Driver, Flag, Waiter
from ._types import Counters, Datagram, Overflow

__all__ = ["MulticastProtocol"]


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
