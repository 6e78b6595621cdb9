# Design: the fast path's transport. FastDatagramTransport is an asyncio datagram transport
# of its own, registered with the running loop through add_reader / add_writer (which
# asyncio and uvloop both offer), so the endpoints above it do not change. It differs from
# the loops' transports where they are slow for multicast receivers:
#   - each readiness event is drained by a reader (_readers.py) with recvmmsg (Linux) into
#     preallocated buffers: one syscall per batch instead of one per datagram, one copy per
#     payload; with UDP_GRO the kernel coalesces datagrams of one flow, split by the reader;
#   - send_many goes through the send strategies (_sending.py): one UDP_SEGMENT (GSO)
#     sendmsg when the datagrams share a size, else sendmmsg;
#   - when the socket buffer is full the rest waits here in a bounded buffer and the protocol
#     is paused (backpressure): nothing is dropped.
# This module holds the lifecycle, the one read loop and the send queue.
from __future__ import annotations

import asyncio
import collections
import errno
import socket
from collections.abc import Callable, Sequence
from typing import Any

from ._driver import Reactor
from ._metadata import MetadataDecoder
from ._native import SOL_UDP, UDP_GRO
from ._readers import Reader, make_reader
from ._sending import BatchSender
from ._types import Datagram

__all__ = ["FastDatagramTransport"]


class FastDatagramTransport(asyncio.DatagramTransport):
    """A datagram transport that receives in batches (recvmmsg) and sends in batches.

    It calls the same protocol methods as asyncio's transports, plus
    ``datagrams_received(list[Datagram], payload_bytes)`` when the protocol has it.
    """

    def __init__(
        self,
        loop: Reactor,
        sock: socket.socket,
        protocol: asyncio.DatagramProtocol,
        *,
        batch: int = 64,
        slot: int = 65536,
        gro: bool = False,
        high_water: int = 1 << 20,
        metadata: MetadataDecoder | None = None,
    ) -> None:
        super().__init__()
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._family = sock.family
        self._closing = False
        self._sender = BatchSender(sock)
        self._reader: Reader | None = None  # made on the first readiness event
        self._reader_shape = (batch, slot, gro, metadata)
        self._pending: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._pending_bytes = 0
        self._high_water = high_water
        self._paused = False
        self._many: Callable[[list[Datagram], int], None] | None = getattr(
            protocol, "datagrams_received", None
        )
        self._extra = {"socket": sock, "sockname": sock.getsockname()}
        if gro:
            sock.setsockopt(SOL_UDP, UDP_GRO, 1)
        protocol.connection_made(self)
        loop.add_reader(self._fd, self._on_readable)

    @property
    def gso(self) -> bool:
        """Whether send_many may use UDP_SEGMENT for runs of equal-size datagrams (Linux)."""
        return self._sender.gso

    @gso.setter
    def gso(self, enabled: bool) -> None:
        self._sender.gso = enabled

    # -- asyncio transport interface ---------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Return ``socket`` or ``sockname``, like asyncio's transports."""
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        """True once close() or abort() was called."""
        return self._closing

    def close(self) -> None:
        """Stop reading, drop nothing already handed over, and release the socket soon."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        self._loop.call_soon(self._call_connection_lost, None)

    def abort(self) -> None:
        """Close at once, discarding datagrams still waiting to be sent."""
        self._pending.clear()
        self._pending_bytes = 0
        self.close()

    def get_write_buffer_size(self) -> int:
        """Bytes waiting for room in the socket buffer."""
        return self._pending_bytes

    def _call_connection_lost(self, exc: Exception | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._sock.close()

    # -- receiving ---------------------------------------------------------------------------

    # Hot path: the loop's reader callback, one Python frame from the loop to the protocol
    # (a datagram after a quiet spell runs little code). One syscall per read() of the
    # reader, at most ``rounds`` of them per readiness event so the loop stays fair to other
    # tasks; the reader is made on the first event, so an endpoint that never receives
    # (most Senders) carries no receive buffers.
    def _on_readable(self) -> None:
        reader = self._reader or self._make_reader()
        count = reader.count
        hand_over = self._many or self._hand_over
        try:
            for _ in range(reader.rounds):
                got = reader.read()
                if got is None:
                    return
                received, nbytes, truncated, messages = got
                if truncated:
                    self._count_truncated(truncated)
                hand_over(received, nbytes)
                if messages < count or self._closing:
                    return
        except OSError as exc:
            self._protocol.error_received(exc)

    def _make_reader(self) -> Reader:
        count, slot, gro, metadata = self._reader_shape
        reader = self._reader = make_reader(
            self._sock, batch=count, slot=slot, gro=gro, metadata=metadata
        )
        return reader

    def _count_truncated(self, count: int) -> None:
        # Into the endpoint's counters (stats.truncated), when the protocol keeps them.
        counters = getattr(self._protocol, "counters", None)
        if counters is not None:
            counters.truncated += count

    def _hand_over(self, received: list[Datagram], nbytes: int) -> None:
        # For a protocol without datagrams_received: one datagram_received call each.
        on_datagram = self._protocol.datagram_received
        for datagram in received:
            on_datagram(datagram[0], (datagram[1], datagram[2]))

    # -- sending -----------------------------------------------------------------------------

    def sendto(self, data: Any, addr: Any = None) -> None:
        """Send one datagram now, or queue it behind earlier ones when the socket is full."""
        if self._closing:
            raise OSError(errno.EBADF, "transport is closing")
        if not self._pending:
            try:
                self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._protocol.error_received(exc)
                return
        self._queue([(bytes(data), addr)])

    async def drained(self) -> None:
        """At once: what this transport holds leaves before any later datagram anyway."""

    def try_send(self, data: bytes, addr: Any) -> bool:
        """Send one datagram now if nothing waits ahead of it and the socket has room.

        Returns False when the caller must go through sendto (which queues it); raises the
        kernel's OSError when it refuses the datagram.
        """
        if self._pending or self._closing:
            return False
        return self._sender.try_send(data, addr)

    def send_many(self, payloads: Sequence[bytes], addr: Any, uniform: int = 0) -> None:
        """Send ``payloads`` to ``addr`` in as few syscalls as possible, in order.

        Datagrams that share a size go out with UDP_SEGMENT (the kernel or the NIC splits
        them); others with sendmmsg. ``uniform``: the caller has checked that every payload
        has this size (0: unknown). What does not fit in the socket buffer waits (see
        get_write_buffer_size) and the protocol is paused above the high-water mark.
        """
        if self._closing:
            raise OSError(errno.EBADF, "transport is closing")
        if self._pending:
            self._queue([(bytes(p), addr) for p in payloads])
            return
        sent = self._send_now(payloads, addr, uniform)
        if sent < len(payloads):
            self._queue([(bytes(p), addr) for p in payloads[sent:]])

    def _send_now(self, payloads: Sequence[bytes], addr: Any, uniform: int = 0) -> int:
        """Send as many of ``payloads`` as the socket takes now; return how many."""
        return self._sender.send_now(payloads, addr, uniform, self._protocol.error_received)

    def _queue(self, items: list[tuple[bytes, Any]]) -> None:
        was_empty = not self._pending
        self._pending.extend(items)
        self._pending_bytes += sum(len(p) for p, _ in items)
        if was_empty:
            self._loop.add_writer(self._fd, self._on_writable)
        if not self._paused and self._pending_bytes > self._high_water:
            self._paused = True
            self._protocol.pause_writing()

    def _on_writable(self) -> None:
        while self._pending:
            addr = self._pending[0][1]
            run: list[bytes] = []
            for payload, target in self._pending:
                if target != addr or len(run) >= 64:
                    break
                run.append(payload)
            sent = self._send_now(run, addr)
            for _ in range(sent):
                payload, _target = self._pending.popleft()
                self._pending_bytes -= len(payload)
            if sent < len(run):
                break
        if not self._pending:
            self._loop.remove_writer(self._fd)
        if self._paused and self._pending_bytes <= self._high_water // 4:
            self._paused = False
            self._protocol.resume_writing()
