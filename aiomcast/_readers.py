# Design: the receive side of the fast path, as interchangeable readers behind one protocol
# (Reader). Each read() takes what one syscall gives and returns it as Datagram tuples, with
# the payload bytes, how many were cut short and how many messages the syscall returned; the
# transport's one loop (FastDatagramTransport._on_readable) drives whichever reader
# make_reader chose, counts the truncated ones and hands the datagrams to the protocol.
#   - the C batch reader (_speedups.BatchReader): recvmmsg and the Datagram tuples in C,
#     GRO split included; used whenever no per-datagram metadata is asked for;
#   - MmsgReader: recvmmsg through ctypes into preallocated buffers, metadata decoded here;
#   - GroReader: recvmsg_into one 64 KiB buffer, split at the kernel's GRO segment size;
#   - SingleReader: one datagram per call through the socket module (elsewhere than Linux,
#     and after a quiet spell, where a batch's set-up costs more than it saves).
# The Datagram layout is read from _types.Datagram here, and checked by the C reader when it
# is made, so the builders cannot drift from the type.
from __future__ import annotations

import array
import ctypes
import itertools
import operator
import socket
from collections.abc import Iterator
from operator import add, lshift, or_
from time import monotonic
from typing import Any, Final, Protocol, final

from . import _native
from ._metadata import CONTROL_SIZE, MetadataDecoder
from ._native import MSG_DONTWAIT, MSG_TRUNC, NAME_SIZE, SOL_UDP, UDP_GRO, IOVec, MMsgHdr
from ._types import Datagram

__all__ = ["GroReader", "MmsgReader", "Reader", "SingleReader", "make_reader"]

#: What one read() returns: datagrams, their payload bytes, how many of them were cut short
#: (truncated), and how many messages the syscall returned (fewer than ``count``: drained).
Batch = tuple[list[Datagram], int, int, int]

_STRIDE: Final = ctypes.sizeof(MMsgHdr) // 4
_LEN_WORD: Final = MMsgHdr.msg_len.offset // 4
_FLAGS_WORD: Final = MMsgHdr.msg_hdr.offset // 4 + _native.MsgHdr.msg_flags.offset // 4
_NAMELEN_WORD: Final = _native.MsgHdr.msg_namelen.offset // 4
_CONTROLLEN_WORD: Final = _native.MsgHdr.msg_controllen.offset // 4
#: Readiness events further apart than this (seconds) read one datagram, not a batch.
QUIET_GAP: Final = 0.0002
_NO_ANCDATA: Final[list[tuple[int, int, bytes]]] = []  # never changed: only read
#: Datagram's fields after payload, source and source_port, at their defaults: the
#: metadata (None) and truncated (False).
_DEFAULTS: Final = tuple(Datagram._field_defaults[name] for name in Datagram._fields[3:])
#: The metadata fields of a Datagram when none was asked for.
NO_METADATA: Final = _DEFAULTS[:-1]
# Endless iterables for the zip that builds a plain batch (each zip stops at the batch's end).
_REPEATS: Final = tuple(itertools.repeat(value) for value in _DEFAULTS)
_THIRTY_TWO: Final = itertools.repeat(32)
_DATAGRAM_TYPE: Final = itertools.repeat(Datagram)
_HOST: Final = operator.itemgetter(0)
_PORT: Final = operator.itemgetter(1)


class Reader(Protocol):
    """What the transport's read loop drives: one syscall's worth of datagrams per read()."""

    @property
    def count(self) -> int:
        """Messages one read() can return; fewer means the socket is drained."""
        ...

    @property
    def rounds(self) -> int:
        """Reads per readiness event at most, so the loop stays fair to other tasks."""
        ...

    def read(self) -> Batch | None:
        """Read what one syscall gives; None when nothing was waiting."""
        ...


def datagram(
    payload: bytes, host: str, port: int, meta: tuple[Any, ...], truncated: bool
) -> Datagram:
    """A Datagram with metadata fields ``meta`` (in Datagram's order)."""
    return Datagram._make((payload, host, port, *meta, truncated))


def make_reader(
    sock: socket.socket,
    *,
    batch: int,
    slot: int,
    gro: bool,
    metadata: MetadataDecoder | None,
) -> Reader:
    """The fastest reader that does what was asked: ``batch`` messages of ``slot`` bytes."""
    native = _native.BatchReader
    if metadata is None and native is not None:
        # With GRO a slot holds a coalesced buffer (up to 64 KiB) and max_size (``limit``)
        # cuts each datagram split from it; without, the kernel cuts at the slot (MSG_TRUNC).
        reader: Reader = native(
            sock.fileno(),
            sock.family,
            Datagram,
            count=batch,
            slot=65536 if gro else slot,
            gro=gro,
            limit=slot,
        )
        return reader
    if gro:
        return GroReader(sock, slot, metadata)
    if _native.libc is not None:
        return MmsgReader(sock, batch, slot, metadata)
    return SingleReader(sock, slot, metadata, rounds=256)  # pragma: no cover - not Linux


class _Sources:
    """Parsed source addresses by their raw sockaddr (or a key made of it), bounded."""

    __slots__ = ("cache",)

    def __init__(self) -> None:
        self.cache: dict[Any, tuple[str, int]] = {}

    def parse(self, key: Any, raw: bytes) -> tuple[str, int]:
        """The (host, port) of sockaddr ``raw``, remembered under ``key``."""
        family = int.from_bytes(raw[:2], "little")
        port = int.from_bytes(raw[2:4], "big")
        if family == socket.AF_INET:
            address = socket.inet_ntop(socket.AF_INET, raw[4:8]), port
        else:
            address = socket.inet_ntop(socket.AF_INET6, raw[8:24]), port
        cache = self.cache
        if len(cache) > 4096:  # bounded: a flood from many sources cannot grow it
            cache.clear()
        cache[key] = address
        return address


@final
class SingleReader:
    """One datagram per read() through the socket module (recvfrom_into / recvmsg_into)."""

    count = 1

    def __init__(
        self, sock: socket.socket, slot: int, metadata: MetadataDecoder | None, rounds: int
    ) -> None:
        self.rounds = rounds
        self._sock = sock
        self._inet = sock.family == socket.AF_INET
        self._metadata = metadata
        self._buffer = memoryview(bytearray(min(slot, 65536)))
        # Datagrams of up to 65535 bytes always fit a 64 KiB slot: recvfrom will do.
        self._whole = metadata is None and slot >= 65536
        self._control = CONTROL_SIZE if metadata is not None else 0

    def read(self) -> Batch | None:
        """Read one datagram; None when none was waiting."""
        sock = self._sock
        try:
            if self._whole:
                # Into a preallocated buffer: recvfrom(65536) would allocate 64 KiB each time.
                size, addr = sock.recvfrom_into(self._buffer)
                flags, ancdata = 0, _NO_ANCDATA
            else:  # metadata to read, or truncation to detect
                size, ancdata, flags, addr = sock.recvmsg_into([self._buffer], self._control)
        except (BlockingIOError, InterruptedError):
            return None
        payload = self._buffer[:size].tobytes()
        host = addr[0] if self._inet else addr[0].partition("%")[0]
        decoder = self._metadata
        truncated = bool(flags & MSG_TRUNC)
        if decoder is None and not truncated:
            # The quiet spell's path: the plain tuple, built with the least code.
            one: Datagram = tuple.__new__(Datagram, (payload, host, addr[1], *_DEFAULTS))
        else:
            meta = decoder.decode_items(ancdata) if decoder is not None else NO_METADATA
            one = datagram(payload, host, addr[1], meta, truncated)
        return [one], size, int(truncated), 1


@final
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
        self.names = ctypes.create_string_buffer(count * NAME_SIZE)
        self.controls = ctypes.create_string_buffer(max(count * control, 1))
        self.iovs = (IOVec * count)()
        self.msgs = (MMsgHdr * count)()
        base = ctypes.addressof(self.data)
        names = ctypes.addressof(self.names)
        controls = ctypes.addressof(self.controls)
        for i in range(count):
            self.iovs[i].iov_base = base + i * slot
            self.iovs[i].iov_len = slot
            hdr = self.msgs[i].msg_hdr
            hdr.msg_name = names + i * NAME_SIZE
            hdr.msg_iov = ctypes.addressof(self.iovs[i])
            hdr.msg_iovlen = 1
            if control:
                hdr.msg_control = controls + i * control
        self.control_view = memoryview(self.controls).cast("B")
        self.name_view = memoryview(self.names).cast("B")
        # The headers as unsigned 32-bit words: msg_len, msg_flags and msg_namelen of message i
        # are words i * STRIDE + LEN / FLAGS / NAMELEN.
        self.words = memoryview(self.msgs).cast("B").cast("I")
        self.name_words = self.name_view.cast("I")
        self.msgs_address = ctypes.addressof(self.msgs)
        self._name_sizes = memoryview(array.array("I", [NAME_SIZE] * count))
        self._control_sizes = memoryview(array.array("I", [control] * count))
        self.used = count
        self.reset_names()

    def reset_names(self) -> None:
        """Restore msg_namelen (and msg_controllen) of the slots the last call used."""
        # recvmmsg writes the length of each source address (and of the control messages)
        # back into them: one strided memoryview assignment each, no Python loop per datagram.
        used = self.used
        if not used:
            return
        words = self.words
        end = used * _STRIDE
        words[_NAMELEN_WORD:end:_STRIDE] = self._name_sizes[:used]
        if self.control:
            words[_CONTROLLEN_WORD:end:_STRIDE] = self._control_sizes[:used]


@final
class MmsgReader:
    """recvmmsg through ctypes: a batch per read(), with per-datagram metadata if asked.

    A datagram that arrives after a quiet spell finds the CPU idle and its caches cold, and
    its latency is then the amount of code it runs: it is read alone through the socket
    module (as the loops' transports do). Readiness events that come close together are
    drained with recvmmsg batches, whose buffers (count x slot bytes: 4 MiB by default) are
    made on the first busy one, so an endpoint that never sees one does not carry them.
    """

    rounds = 16

    def __init__(
        self, sock: socket.socket, count: int, slot: int, metadata: MetadataDecoder | None
    ) -> None:
        self.count = count
        self.batch: _RecvBatch | None = None
        self._shape = (count, slot, CONTROL_SIZE if metadata is not None else 0)
        self._fd = sock.fileno()
        self._inet = sock.family == socket.AF_INET
        self._metadata = metadata
        self._single = SingleReader(sock, slot, metadata, rounds=1)
        self._sources = _Sources()
        self._last_read = 0.0

    def read(self) -> Batch | None:
        """One recvmmsg (or, after a quiet spell, one datagram); None when none waited."""
        now = monotonic()
        quiet = now - self._last_read > QUIET_GAP
        self._last_read = now
        if quiet:
            return self._single.read()  # one message: the loop takes it as drained
        batch = self.batch
        if batch is None:
            batch = self.batch = _RecvBatch(*self._shape)
        batch.reset_names()
        n = _native.libc.recvmmsg(self._fd, batch.msgs_address, batch.count, MSG_DONTWAIT, None)
        if n < 0:
            batch.used = 0
            error = _native.libc_error("recvmmsg")
            if isinstance(error, (BlockingIOError, InterruptedError)):
                return None
            raise error
        batch.used = n
        words = batch.words
        lengths = words[_LEN_WORD : n * _STRIDE : _STRIDE].tolist()
        flags = words[_FLAGS_WORD : n * _STRIDE : _STRIDE].tolist()
        addrs = self._addresses(batch, n)
        starts = range(0, n * batch.slot, batch.slot)
        # Slicing a ctypes char array makes each payload's bytes object in one step (typeshed
        # types such a slice as a list).
        payloads: Iterator[Any] = map(
            batch.data.__getitem__, map(slice, starts, map(add, starts, lengths))
        )
        decoder = self._metadata
        if decoder is None and not any(flags):
            # The common batch (no metadata, nothing truncated): the Datagram tuples are
            # built by map/zip, with no Python code per datagram.
            fields = zip(
                payloads,
                map(_HOST, addrs),
                map(_PORT, addrs),
                *_REPEATS,
                strict=False,  # the repeats are endless: the payloads end the zip
            )
            return list(map(tuple.__new__, _DATAGRAM_TYPE, fields)), sum(lengths), 0, n
        received = []
        truncated = 0
        for i, (payload, addr, flag) in enumerate(zip(payloads, addrs, flags, strict=False)):
            cut = bool(flag & MSG_TRUNC)
            truncated += cut
            received.append(datagram(payload, addr[0], addr[1], self._meta(batch, i), cut))
        return received, sum(lengths), truncated, n

    def _addresses(self, batch: _RecvBatch, n: int) -> list[tuple[str, int]]:
        """The (host, port) of each of the ``n`` datagrams in ``batch``, through the cache."""
        sources = self._sources
        cache = sources.cache
        if self._inet:
            # sockaddr_in is two words (family and port, address): one int key per source,
            # made for the whole batch by strided views, no bytes object per datagram.
            stride = NAME_SIZE // 4
            names = batch.name_words
            first = names[0 : n * stride : stride].tolist()
            second = names[1 : n * stride : stride].tolist()
            keys: list[Any] = list(map(or_, first, map(lshift, second, _THIRTY_TWO)))
            addrs: list[Any] = list(map(cache.get, keys))
            if None in addrs:
                view = batch.name_view
                for i, addr in enumerate(addrs):
                    if addr is None:
                        raw = bytes(view[i * NAME_SIZE : i * NAME_SIZE + 8])
                        addrs[i] = sources.parse(keys[i], raw)
            return addrs
        view, words = batch.name_view, batch.words
        addrs = []
        for i in range(n):
            name = i * NAME_SIZE
            raw = bytes(view[name : name + words[i * _STRIDE + _NAMELEN_WORD]])
            addrs.append(cache.get(raw) or sources.parse(raw, raw))
        return addrs

    def _meta(self, batch: _RecvBatch, i: int) -> tuple[Any, ...]:
        """The metadata of datagram ``i`` of ``batch`` (none when nobody asked for it)."""
        decoder = self._metadata
        if decoder is None:
            return NO_METADATA
        base = i * batch.control
        length = batch.words[i * _STRIDE + _CONTROLLEN_WORD]
        return decoder.decode(batch.control_view[base : base + batch.control], length)


@final
class GroReader:
    """recvmsg_into one 64 KiB buffer with UDP_GRO: the kernel's coalesced datagrams, split.

    The buffer holds 64 KiB, so the kernel cuts nothing (MSG_TRUNC stays clear); a datagram
    longer than ``slot`` (max_size) is cut here, as the C reader does.
    """

    count = 1
    rounds = 64

    def __init__(self, sock: socket.socket, slot: int, metadata: MetadataDecoder | None) -> None:
        self._sock = sock
        self._slot = slot
        self._metadata = metadata
        self._buffer = bytearray(65536)
        self._view = memoryview(self._buffer)
        self._room = 64 + (CONTROL_SIZE if metadata is not None else 0)

    def read(self) -> Batch | None:
        """Read one coalesced buffer and split it; None when nothing was waiting."""
        try:
            length, ancdata, flags, addr = self._sock.recvmsg_into([self._buffer], self._room)
        except (BlockingIOError, InterruptedError):
            return None
        size = length
        for level, kind, value in ancdata:
            if level == SOL_UDP and kind == UDP_GRO:
                size = int.from_bytes(value[:4], "little") or length
        decoder = self._metadata
        meta = decoder.decode_items(ancdata) if decoder is not None else NO_METADATA
        host = str(addr[0]).partition("%")[0]
        port = int(addr[1])
        limit, view = self._slot, self._view
        received = []
        truncated = 0
        for start in range(0, max(length, 1), size or 1):
            whole = min(start + size, length) - start
            payload = bytes(view[start : start + min(whole, limit)])
            cut = whole > limit or bool(flags & MSG_TRUNC)
            truncated += cut
            received.append(datagram(payload, host, port, meta, cut))
        return received, length, truncated, 1
