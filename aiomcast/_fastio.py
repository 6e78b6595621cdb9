# Design: the fast path. FastDatagramTransport is an asyncio datagram transport of its own,
# registered with the running loop through add_reader / add_writer (which asyncio and uvloop
# both offer), so the endpoints above it do not change. It differs from the loops' transports
# where they are slow for multicast receivers:
#   - each readiness event is drained with recvmmsg (Linux) into preallocated buffers: one
#     syscall per batch instead of one per datagram, and one copy per payload;
#   - with UDP_GRO the kernel coalesces datagrams of one flow into one buffer, split here;
#   - send_many sends a list with one UDP_SEGMENT (GSO) sendmsg when the datagrams share a
#     size, else with sendmmsg; when the socket buffer is full the rest waits in a bounded
#     buffer and the protocol is paused (backpressure), nothing is dropped.
# Elsewhere (no recvmmsg) it falls back to a recvfrom_into loop; that path is untested.
from __future__ import annotations

import array
import asyncio
import collections
import ctypes
import ctypes.util
import errno
import ipaddress
import itertools
import operator
import os
import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from operator import add, lshift, or_
from time import monotonic
from typing import Any, Final, final

from ._driver import Reactor
from ._metadata import CONTROL_SIZE, MetadataDecoder
from ._options import PLATFORM, pack_sockaddr
from ._types import Datagram

__all__ = [
    "FastDatagramTransport",
    "QueueIterator",
    "batch_receiver_available",
    "speedups_available",
]

SOL_UDP: Final = 17
UDP_SEGMENT: Final = 103
UDP_GRO: Final = 104
MSG_DONTWAIT: Final = 0x40
MSG_TRUNC: Final = 0x20
#: Datagrams one UDP_SEGMENT send may carry (UDP_MAX_SEGMENTS in the kernel).
GSO_MAX_SEGMENTS: Final = 64
#: UDP_MAX_SEGMENTS of recent kernels (6.18 here); older ones refuse more than 64 (EINVAL).
GSO_MAX_SEGMENTS_NEW: Final = 128
_SEGMENT_SIZE: Final = struct.Struct("=H")
GSO_MAX_BYTES: Final = 65000


class _IOVec(ctypes.Structure):
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class _MsgHdr(ctypes.Structure):
    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


class _MMsgHdr(ctypes.Structure):
    _fields_ = (("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint))


_MMSG_SIZE: Final = ctypes.sizeof(_MMsgHdr)
_STRIDE: Final = _MMSG_SIZE // 4
_LEN_WORD: Final = _MMsgHdr.msg_len.offset // 4
_FLAGS_WORD: Final = _MsgHdr.msg_flags.offset // 4
_NAMELEN_WORD: Final = _MsgHdr.msg_namelen.offset // 4
_CONTROLLEN_WORD: Final = _MsgHdr.msg_controllen.offset // 4
_NAME_SIZE: Final = 128  # sizeof(struct sockaddr_storage)
#: Readiness events further apart than this (seconds) read one datagram, not a batch.
_QUIET_GAP: Final = 0.0002
_NO_ANCDATA: Final[list[tuple[int, int, bytes]]] = []  # never changed: only read
# Endless iterables of _read_batches's zip (each zip stops at the batch's end).
_NONES: Final = itertools.repeat(None)
_FALSES: Final = itertools.repeat(False)
_THIRTY_TWO: Final = itertools.repeat(32)
_DATAGRAM_TYPE: Final = itertools.repeat(Datagram)
_HOST: Final = operator.itemgetter(0)
_PORT: Final = operator.itemgetter(1)
#: The metadata fields of a Datagram when none was asked for.
_NO_METADATA: Final = (None, None, None, None, None)

# The receive fast path in C (_speedups.c), built where a compiler was at install time; the
# pure-Python readers below do the same work where it is missing, and always for metadata.
# AIOMCAST_PURE_PYTHON=1 in the environment leaves the extension unused (to compare, or to
# rule it out when something goes wrong).
BatchReader: type[_speedups.BatchReader] | None = None
QueueIterator: type[_speedups.QueueIterator] | None = None
#: One sendto(2) to a packed sockaddr, for Sender.send's hot path (Linux).
c_sendto: Callable[[int, bytes, bytes], bool] | None = None
#: One sendmmsg(2) of up to 64 payloads to a packed sockaddr, for send_many without GSO.
c_sendmmsg: Callable[[int, Sequence[bytes], int, bytes], int] | None = None
try:
    from . import _speedups
except ImportError:  # pragma: no cover - installed without the C extension
    pass
else:
    if os.environ.get("AIOMCAST_PURE_PYTHON", "") in ("", "0"):
        # The batch reader is built on Linux only; the async iterator everywhere.
        BatchReader = getattr(_speedups, "BatchReader", None)
        QueueIterator = _speedups.QueueIterator
        c_sendto = getattr(_speedups, "sendto", None)
        c_sendmmsg = getattr(_speedups, "sendmmsg", None)

_libc: Any = None
if PLATFORM == "linux":
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _libc.recvmmsg.argtypes = (
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_void_p,
        )
        _libc.recvmmsg.restype = ctypes.c_int
        _libc.sendmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
        _libc.sendmmsg.restype = ctypes.c_int
    except (OSError, AttributeError):  # pragma: no cover - a libc without them
        _libc = None


def batch_receiver_available() -> bool:
    """Whether recvmmsg / sendmmsg are usable here (Linux with glibc or musl)."""
    return _libc is not None


def speedups_available() -> bool:
    """Whether the receive fast path in C (aiomcast._speedups) was built and loads."""
    return BatchReader is not None


class _RecvBatch:
    """Preallocated recvmmsg state: ``count`` slots of ``slot`` bytes, names and headers.

    With ``control`` > 0 each slot also has a control buffer of that many bytes for the
    per-datagram metadata (cmsgs); without, msg_control stays NULL and costs nothing.
    """

    def __init__(self, count: int, slot: int, control: int = 0) -> None:
        self.count = count
        self.slot = slot
        self.control = control
        self.data = ctypes.create_string_buffer(count * slot)
        self.names = ctypes.create_string_buffer(count * _NAME_SIZE)
        self.controls = ctypes.create_string_buffer(max(count * control, 1))
        self.iovs = (_IOVec * count)()
        self.msgs = (_MMsgHdr * count)()
        base = ctypes.addressof(self.data)
        names = ctypes.addressof(self.names)
        controls = ctypes.addressof(self.controls)
        for i in range(count):
            self.iovs[i].iov_base = base + i * slot
            self.iovs[i].iov_len = slot
            hdr = self.msgs[i].msg_hdr
            hdr.msg_name = names + i * _NAME_SIZE
            hdr.msg_iov = ctypes.addressof(self.iovs[i])
            hdr.msg_iovlen = 1
            if control:
                hdr.msg_control = controls + i * control
        self.control_view = memoryview(self.controls).cast("B")
        self.data_view = memoryview(self.data).cast("B")
        self.name_view = memoryview(self.names).cast("B")
        # The headers as unsigned 32-bit words: msg_len, msg_flags and msg_namelen of message i
        # are words i * STRIDE + LEN / FLAGS / NAMELEN.
        self.words = memoryview(self.msgs).cast("B").cast("I")
        self.name_words = self.name_view.cast("I")
        self.msgs_address = ctypes.addressof(self.msgs)
        self._name_sizes = memoryview(array.array("I", [_NAME_SIZE] * count))
        self._control_sizes = memoryview(array.array("I", [control] * count))
        self.used = count
        self.reset_names()

    def reset_names(self) -> None:
        # recvmmsg writes the length of each source address (and of the control messages)
        # back into msg_namelen (msg_controllen): restore the slots the last call used, with
        # one strided memoryview assignment each (no Python loop per datagram).
        used = self.used
        if not used:
            return
        words = self.words
        end = used * _STRIDE
        words[_NAMELEN_WORD:end:_STRIDE] = self._name_sizes[:used]
        if self.control:
            words[_CONTROLLEN_WORD:end:_STRIDE] = self._control_sizes[:used]


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
        self._gro = gro
        self._metadata = metadata
        #: Whether send_many may use UDP_SEGMENT for runs of equal-size datagrams (Linux).
        self.gso = PLATFORM == "linux"
        #: Datagrams per UDP_SEGMENT send: 128 until the kernel refuses that (then 64).
        self._gso_segments = GSO_MAX_SEGMENTS_NEW
        self._send_batch: _SendBatch | None = None  # sendmmsg state, made on first use
        # The last destination of try_send / send_many, packed once as a sockaddr for the C
        # sendto and sendmmsg (None: the socket module or ctypes, where the address won't pack).
        self._packed_for: Any = None
        self._packed: bytes | None = None
        # recvmmsg state (count x slot bytes: 4 MiB by default) is made on the first busy
        # readiness event, so endpoints that never see one (most Senders) do not carry it.
        self._batched = _libc is not None and not gro
        self._batch_shape = (batch, slot, CONTROL_SIZE if metadata is not None else 0)
        self._batch: _RecvBatch | None = None
        # Without metadata the C reader does it all, GRO included; made on the first read.
        self._reader_type = BatchReader if metadata is None else None
        self._native = self._reader_type is not None
        self._reader: _speedups.BatchReader | None = None
        # The pure-Python readers' buffers; the C reader has its own.
        self._gro_buffer = bytearray(65536) if gro and not self._native else None
        self._slot = slot
        self._one = memoryview(bytearray(0 if self._native else min(slot, 65536)))
        # Datagrams of up to 65535 bytes always fit a 64 KiB slot: recvfrom will do.
        self._whole = metadata is None and slot >= 65536
        self._control_size = CONTROL_SIZE if metadata is not None else 0
        self._last_read = 0.0
        self._addr_cache: dict[Any, tuple[str, int]] = {}
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
        loop.add_reader(self._fd, self._read_native if self._native else self._on_readable)

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

    def _source(self, raw: bytes) -> tuple[str, int]:
        # Parses a sockaddr; callers cache the result under their own key.
        family = int.from_bytes(raw[:2], "little")
        port = int.from_bytes(raw[2:4], "big")
        if family == socket.AF_INET:
            return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port

    def _remember(self, key: Any, address: tuple[str, int]) -> tuple[str, int]:
        cache = self._addr_cache
        if len(cache) > 4096:  # bounded: a flood from many sources cannot grow it
            cache.clear()
        cache[key] = address
        return address

    def _on_readable(self) -> None:
        try:
            if self._batched:
                # A datagram that arrives after a quiet spell finds the CPU idle and its
                # caches cold, and its latency is then the amount of code it runs: it is read
                # alone through the socket module (as the loops' transports do). Readiness
                # events that come close together are drained with recvmmsg batches.
                now = monotonic()
                quiet = now - self._last_read > _QUIET_GAP
                self._last_read = now
                if quiet:
                    self._read_one()
                else:
                    self._read_batches()
            elif self._gro_buffer is not None:
                self._read_gro()
            else:  # pragma: no cover - platforms without recvmmsg
                for _ in range(256):
                    if not self._read_one():
                        return
        except OSError as exc:
            self._protocol.error_received(exc)

    # Hot path (C): the loop's reader callback when the C reader is there (registered in
    # place of _on_readable, one Python frame from the loop to the protocol: a datagram after
    # a quiet spell runs little code). One recvmmsg per call of the reader, which builds the
    # Datagram tuples itself; at most 16 calls per readiness event so the loop stays fair to
    # other tasks.
    def _read_native(self) -> None:
        reader = self._reader or self._make_reader()
        count = reader.count
        hand_over = self._many or self._hand_over
        try:
            for _ in range(16):
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

    def _make_reader(self) -> _speedups.BatchReader:
        assert self._reader_type is not None  # only on the C path
        count, slot, _control = self._batch_shape
        # With GRO a slot holds a coalesced buffer (up to 64 KiB) and max_size cuts each
        # datagram split from it; without, the kernel cuts at the slot (MSG_TRUNC).
        reader = self._reader = self._reader_type(
            self._fd,
            self._family,
            Datagram,
            count=count,
            slot=65536 if self._gro else slot,
            gro=self._gro,
            limit=slot,
        )
        return reader

    # Hot path: drain the socket with recvmmsg, at most 16 batches per readiness event so the
    # loop stays fair to other tasks. Lengths, flags and source addresses are read through
    # memoryviews of the preallocated headers (no ctypes attribute access per datagram); each
    # payload is copied once, into its bytes object, and the Datagram tuple is built here.
    # Control messages are decoded only when metadata was asked for.
    def _read_batches(self) -> None:
        batch = self._batch
        if batch is None:
            batch = self._batch = _RecvBatch(*self._batch_shape)
        fd, address, count, words = self._fd, batch.msgs_address, batch.count, batch.words
        decoder = self._metadata
        for _ in range(16):
            batch.reset_names()
            n = _libc.recvmmsg(fd, address, count, MSG_DONTWAIT, None)
            if n < 0:
                batch.used = 0
                err = ctypes.get_errno()
                if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                    return
                raise OSError(err, errno.errorcode.get(err, "recvmmsg"))
            batch.used = n
            lengths = words[_LEN_WORD : n * _STRIDE : _STRIDE].tolist()
            flags = words[_FLAGS_WORD : n * _STRIDE : _STRIDE].tolist()
            addrs = self._batch_sources(batch, n)
            starts = range(0, n * batch.slot, batch.slot)
            # ctypes slicing of a char array makes each payload's bytes object in one step
            # (typeshed types a slice of a ctypes array as a list).
            payloads: Iterator[Any] = map(
                batch.data.__getitem__, map(slice, starts, map(add, starts, lengths))
            )
            if decoder is None and not any(flags):
                # The common batch (no metadata, nothing truncated): the Datagram tuples are
                # built by map/zip, with no Python code per datagram.
                fields = zip(
                    payloads,
                    map(_HOST, addrs),
                    map(_PORT, addrs),
                    _NONES,
                    _NONES,
                    _NONES,
                    _NONES,
                    _NONES,
                    _FALSES,
                    strict=False,  # the repeats are endless: the payloads end the zip
                )
                received = list(map(tuple.__new__, _DATAGRAM_TYPE, fields))
            else:
                received = [
                    self._special(payload, addr[0], addr[1], flag, self._batch_meta(batch, i))
                    for i, (payload, addr, flag) in enumerate(
                        zip(payloads, addrs, flags, strict=False)
                    )
                ]
            self._hand_over(received, sum(lengths))
            if n < count or self._closing:
                return

    def _batch_sources(self, batch: _RecvBatch, n: int) -> list[tuple[str, int]]:
        """The (host, port) of each of the ``n`` datagrams in ``batch``, through the cache."""
        cache = self._addr_cache
        if self._family == socket.AF_INET:
            # sockaddr_in is two words (family and port, address): one int key per source,
            # made for the whole batch by strided views, no bytes object per datagram.
            stride = _NAME_SIZE // 4
            names = batch.name_words
            first = names[0 : n * stride : stride].tolist()
            second = names[1 : n * stride : stride].tolist()
            keys: list[Any] = list(map(or_, first, map(lshift, second, _THIRTY_TWO)))
            addrs: list[Any] = list(map(cache.get, keys))
            if None in addrs:
                view = batch.name_view
                for i, addr in enumerate(addrs):
                    if addr is None:
                        raw = bytes(view[i * _NAME_SIZE : i * _NAME_SIZE + 8])
                        addrs[i] = self._remember(keys[i], self._source(raw))
            return addrs
        view, words = batch.name_view, batch.words
        addrs = []
        for i in range(n):
            name = i * _NAME_SIZE
            raw = bytes(view[name : name + words[i * _STRIDE + _NAMELEN_WORD]])
            addrs.append(cache.get(raw) or self._remember(raw, self._source(raw)))
        return addrs

    def _batch_meta(self, batch: _RecvBatch, i: int) -> tuple[Any, ...]:
        """The metadata of datagram ``i`` of ``batch`` (none when nobody asked for it)."""
        decoder = self._metadata
        if decoder is None:
            return _NO_METADATA
        base = i * batch.control
        length = batch.words[i * _STRIDE + _CONTROLLEN_WORD]
        return decoder.decode(batch.control_view[base : base + batch.control], length)

    def _special(
        self, payload: bytes, host: str, port: int, flags: int, meta: tuple[Any, ...]
    ) -> Datagram:
        # A datagram with metadata, or cut short (MSG_TRUNC: longer than max_size, counted).
        truncated = bool(flags & MSG_TRUNC)
        if truncated:
            self._count_truncated(1)
        return Datagram._make((payload, host, port, *meta, truncated))

    def _count_truncated(self, count: int) -> None:
        # Into the endpoint's counters (stats.truncated), when the protocol keeps them.
        counters = getattr(self._protocol, "counters", None)
        if counters is not None:
            counters.truncated += count

    def _read_one(self) -> bool:
        """Read one datagram with the socket module; False when none was waiting."""
        sock = self._sock
        decoder = self._metadata
        try:
            if self._whole:
                # Into a preallocated buffer: recvfrom(65536) would allocate 64 KiB each time.
                size, addr = sock.recvfrom_into(self._one)
                flags, ancdata = 0, _NO_ANCDATA
            else:  # metadata to read, or truncation to detect
                size, ancdata, flags, addr = sock.recvmsg_into([self._one], self._control_size)
        except (BlockingIOError, InterruptedError):
            return False
        payload = self._one[:size].tobytes()
        host = addr[0] if self._family == socket.AF_INET else addr[0].partition("%")[0]
        if decoder is None and not flags & MSG_TRUNC:
            fields = (payload, host, addr[1], None, None, None, None, None, False)
            datagram: Datagram = tuple.__new__(Datagram, fields)
        else:
            meta = decoder.decode_items(ancdata) if decoder is not None else _NO_METADATA
            datagram = self._special(payload, host, addr[1], flags, meta)
        many = self._many  # _hand_over, inline: this is the quiet spell's path
        if many is not None:
            many([datagram], size)
        else:
            self._hand_over([datagram], size)
        return True

    def _hand_over(self, received: list[Datagram], nbytes: int) -> None:
        if self._many is not None:
            self._many(received, nbytes)
        else:
            on_datagram = self._protocol.datagram_received
            for datagram in received:
                on_datagram(datagram[0], (datagram[1], datagram[2]))

    def _read_gro(self) -> None:
        buffer = self._gro_buffer
        assert buffer is not None
        view = memoryview(buffer)
        decoder = self._metadata
        room = 64 + (CONTROL_SIZE if decoder is not None else 0)
        for _ in range(64):
            try:
                length, ancdata, flags, addr = self._sock.recvmsg_into([buffer], room)
            except (BlockingIOError, InterruptedError):
                return
            size = length
            for level, kind, value in ancdata:
                if level == SOL_UDP and kind == UDP_GRO:
                    size = int.from_bytes(value[:4], "little") or length
            meta = decoder.decode_items(ancdata) if decoder is not None else _NO_METADATA
            host = str(addr[0]).partition("%")[0]
            port = int(addr[1])
            # The buffer holds 64 KiB, so the kernel cuts nothing (MSG_TRUNC stays clear); a
            # datagram longer than max_size (the slot) is cut here, as the C reader does.
            limit = self._slot
            received = []
            for start in range(0, max(length, 1), size or 1):
                whole = min(start + size, length) - start
                payload = bytes(view[start : start + min(whole, limit)])
                if whole > limit or flags & MSG_TRUNC:
                    received.append(self._special(payload, host, port, MSG_TRUNC, meta))
                else:
                    received.append(Datagram(payload, host, port, *meta))
            self._hand_over(received, length)
            if self._closing:
                return

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
        sendto = c_sendto
        packed = None if sendto is None else self._packed_address(addr)
        if sendto is not None and packed is not None:
            # Hot path: the C sendto, with the address packed once and the GIL kept.
            return sendto(self._fd, data, packed)
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            return False
        return True

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
        done = 0
        total = len(payloads)
        while done < total:
            size = uniform or len(payloads[done])
            per_send = max(1, GSO_MAX_BYTES // max(size, 1))
            limit = min(total, done + self._gso_segments, done + per_send)
            # Fast path: the common case of equal sizes is checked with one set of lengths.
            if uniform or len(set(map(len, payloads[done:limit]))) == 1:
                run = limit
            else:
                run = done
                while run < limit and len(payloads[run]) == size:
                    run += 1
            try:
                if run - done > 1 and size > 0 and self.gso:
                    self._sock.sendmsg(
                        [b"".join(payloads[done:run])],
                        [(SOL_UDP, UDP_SEGMENT, _SEGMENT_SIZE.pack(size))],
                        0,
                        addr,
                    )
                    done = run
                elif _libc is not None and total - done > 1:
                    done += self._sendmmsg(payloads, done, addr)
                else:
                    self._sock.sendto(payloads[done], addr)
                    done += 1
            except (BlockingIOError, InterruptedError):
                return done
            except OSError as exc:
                if exc.errno == errno.EINVAL and run - done > GSO_MAX_SEGMENTS and self.gso:
                    # An older kernel takes at most 64 segments per send: use that from now on.
                    self._gso_segments = GSO_MAX_SEGMENTS
                    continue
                if exc.errno in (errno.EIO, errno.EINVAL, errno.EMSGSIZE) and run - done > 1:
                    # No GSO for this run: the device or kernel lacks it, or a segment does not
                    # fit the MTU (GSO never fragments; a plain send does). One at a time.
                    self._sock.sendto(payloads[done], addr)
                    done += 1
                    continue
                self._protocol.error_received(exc)
                return total
        return done

    def _sendmmsg(self, payloads: Sequence[bytes], start: int, addr: Any) -> int:
        # One sendmmsg of up to 64 of payloads[start:]: the C one where it is built and the
        # address packs (its iovecs point into the bytes objects), else through ctypes.
        sendmmsg = c_sendmmsg
        packed = None if sendmmsg is None else self._packed_address(addr)
        if sendmmsg is not None and packed is not None and type(payloads) in (list, tuple):
            return sendmmsg(self._fd, payloads, start, packed)
        if self._send_batch is None:
            self._send_batch = _SendBatch(self._family)
        return self._send_batch.send(self._fd, payloads[start : start + 64], addr)

    def _packed_address(self, addr: Any) -> bytes | None:
        """``addr`` packed as a sockaddr (cached for the last one), or None where it won't."""
        if addr != self._packed_for:
            self._packed_for = addr
            self._packed = _packed_sockaddr(self._family, addr)
        return self._packed

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


@final
class _SendBatch:
    """Preallocated sendmmsg state: up to 64 headers, their iovecs, a name and a data buffer.

    Each header points at its own iovec and at the one destination name from the start, so a
    send copies the joined payloads into the buffer once and rewrites only what changed since
    the last send: the iovecs when the sizes differ, the name when the destination does.
    """

    __slots__ = ("addr", "data", "data_size", "family", "iovs", "layout", "msgs", "name")

    def __init__(self, family: int, count: int = 64) -> None:
        self.family = family
        self.iovs = (_IOVec * count)()
        self.msgs = (_MMsgHdr * count)()
        self.name = ctypes.create_string_buffer(_NAME_SIZE)
        self.addr: Any = None
        self.data = ctypes.create_string_buffer(1)
        self.data_size = 1
        #: The payload sizes the iovecs describe now.
        self.layout: tuple[int, ...] = ()
        name = ctypes.addressof(self.name)
        # The transport's family is fixed, and so is the length of every destination name.
        namelen = 16 if family == socket.AF_INET else 28  # sockaddr_in / sockaddr_in6
        for i in range(count):
            hdr = self.msgs[i].msg_hdr
            hdr.msg_name = name
            hdr.msg_namelen = namelen
            hdr.msg_iov = ctypes.addressof(self.iovs[i])
            hdr.msg_iovlen = 1

    def send(self, fd: int, payloads: Sequence[bytes], addr: Any) -> int:
        """One sendmmsg of up to 64 ``payloads`` to ``addr``; return how many were sent."""
        count = min(len(payloads), len(self.msgs))
        if count < len(payloads):
            payloads = payloads[:count]
        blob = b"".join(payloads)
        if len(blob) > self.data_size:
            self.data = ctypes.create_string_buffer(len(blob))
            self.data_size = len(blob)
            self.layout = ()  # the iovecs point into the old buffer
        ctypes.memmove(self.data, blob, len(blob))
        layout = tuple(map(len, payloads))
        if layout != self.layout:
            base = ctypes.addressof(self.data)
            offset = 0
            for iov, size in zip(self.iovs, layout, strict=False):
                iov.iov_base = base + offset
                iov.iov_len = size
                offset += size
            self.layout = layout
        if addr != self.addr:
            raw = _sockaddr(self.family, addr)
            ctypes.memmove(self.name, raw, len(raw))
            self.addr = addr
        assert _libc is not None  # only made where sendmmsg exists
        sent = _libc.sendmmsg(fd, ctypes.addressof(self.msgs), count, MSG_DONTWAIT)
        if sent < 0:
            err = ctypes.get_errno()
            if err in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise BlockingIOError(err, "sendmmsg")
            raise OSError(err, errno.errorcode.get(err, "sendmmsg"))
        return int(sent)


def _packed_sockaddr(family: int, addr: Any) -> bytes | None:
    """Return ``addr`` packed as a sockaddr of ``family``, or None where it does not pack.

    A host name or an IPv6 zone in the text does not: the socket module resolves those.
    """
    if family == socket.AF_INET6 and len(addr) > 2 and addr[2]:
        return None  # a flow label: the socket module checks and sends it
    try:
        return bytes(_sockaddr(family, addr))
    except (OSError, ValueError, TypeError, IndexError, struct.error):
        return None


def _sockaddr(family: int, addr: Any) -> ctypes.Array[ctypes.c_char]:
    # One packer (_options); text the socket module resolves (a name, a zone) is an OSError.
    kind = ipaddress.IPv4Address if family == socket.AF_INET else ipaddress.IPv6Address
    try:
        if not isinstance(addr[0], str) or "%" in addr[0]:
            raise ValueError(addr[0])
        address = kind(addr[0])
    except ValueError:
        raise OSError(f"{addr[0]!r} is not a numeric address of the family") from None
    scope = addr[3] if family == socket.AF_INET6 and len(addr) > 3 else 0
    raw = pack_sockaddr(address, port=addr[1], scope_id=scope)
    return ctypes.create_string_buffer(raw, len(raw))
