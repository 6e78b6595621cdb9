# Design: the send strategies of the fast path, in one place. BatchSender sends what the
# transport gives it in as few syscalls as the kernel allows:
#   - one datagram: the C sendto to a sockaddr packed once per destination (else the socket
#     module's sendto);
#   - runs of equal-size datagrams: one sendmsg with UDP_SEGMENT (GSO), 128 segments per send
#     until the kernel refuses that (older kernels take 64), one at a time where the device
#     or the MTU refuses GSO;
#   - mixed sizes: sendmmsg, the C one where it is built, else through ctypes (_SendBatch).
# It never queues: it says how many went, and the transport holds the rest. Destinations
# are packed by one function (sockaddr), over _options.pack_sockaddr.
from __future__ import annotations

import ctypes
import errno
import ipaddress
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any, Final, final

from . import _native
from ._native import MSG_DONTWAIT, NAME_SIZE, SOL_UDP, UDP_SEGMENT, IOVec, MMsgHdr
from ._options import PLATFORM, pack_sockaddr

__all__ = ["BatchSender", "packed_sockaddr", "sockaddr"]

#: Datagrams one UDP_SEGMENT send may carry (UDP_MAX_SEGMENTS in the kernel).
GSO_MAX_SEGMENTS: Final = 64
#: UDP_MAX_SEGMENTS of recent kernels (6.18 here); older ones refuse more than 64 (EINVAL).
GSO_MAX_SEGMENTS_NEW: Final = 128
GSO_MAX_BYTES: Final = 65000
_SEGMENT_SIZE: Final = struct.Struct("=H")


@final
class BatchSender:
    """The send strategies for one socket: C sendto, GSO, sendmmsg, single sends."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._family = sock.family
        #: Whether send_now may use UDP_SEGMENT for runs of equal-size datagrams (Linux).
        self.gso = PLATFORM == "linux"
        #: Datagrams per UDP_SEGMENT send: 128 until the kernel refuses that (then 64).
        self.gso_segments = GSO_MAX_SEGMENTS_NEW
        self._batch: _SendBatch | None = None  # ctypes sendmmsg state, made on first use
        # The last destination, packed once as a sockaddr for the C sendto and sendmmsg
        # (None: the socket module or ctypes, where the address won't pack).
        self._packed_for: Any = None
        self._packed: bytes | None = None

    def try_send(self, data: bytes, addr: Any) -> bool:
        """Send one datagram now; False when the socket buffer is full (OSError: refused)."""
        sendto = _native.c_sendto
        packed = None if sendto is None else self.packed_address(addr)
        if sendto is not None and packed is not None:
            # Hot path: the C sendto, with the address packed once and the GIL kept.
            return sendto(self._fd, data, packed)
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            return False
        return True

    def send_now(
        self,
        payloads: Sequence[bytes],
        addr: Any,
        uniform: int,
        on_error: Callable[[OSError], None],
    ) -> int:
        """Send as many of ``payloads`` as the socket takes now, in order; return how many.

        ``uniform``: the caller has checked that every payload has this size (0: unknown).
        An error the kernel gives for the datagrams themselves goes to ``on_error`` and
        counts them as done (as a loop's transport reports a failed sendto).
        """
        done = 0
        total = len(payloads)
        while done < total:
            size = uniform or len(payloads[done])
            per_send = max(1, GSO_MAX_BYTES // max(size, 1))
            limit = min(total, done + self.gso_segments, done + per_send)
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
                elif _native.libc is not None and total - done > 1:
                    done += self._sendmmsg(payloads, done, addr)
                else:
                    self._sock.sendto(payloads[done], addr)
                    done += 1
            except (BlockingIOError, InterruptedError):
                return done
            except OSError as exc:
                if exc.errno == errno.EINVAL and run - done > GSO_MAX_SEGMENTS and self.gso:
                    # An older kernel takes at most 64 segments per send: use that from now on.
                    self.gso_segments = GSO_MAX_SEGMENTS
                    continue
                if exc.errno in (errno.EIO, errno.EINVAL, errno.EMSGSIZE) and run - done > 1:
                    # No GSO for this run: the device or kernel lacks it, or a segment does not
                    # fit the MTU (GSO never fragments; a plain send does). One at a time.
                    self._sock.sendto(payloads[done], addr)
                    done += 1
                    continue
                on_error(exc)
                return total
        return done

    def _sendmmsg(self, payloads: Sequence[bytes], start: int, addr: Any) -> int:
        # One sendmmsg of up to 64 of payloads[start:]: the C one where it is built and the
        # address packs (its iovecs point into the bytes objects), else through ctypes.
        sendmmsg = _native.c_sendmmsg
        packed = None if sendmmsg is None else self.packed_address(addr)
        if sendmmsg is not None and packed is not None and type(payloads) in (list, tuple):
            return sendmmsg(self._fd, payloads, start, packed)
        if self._batch is None:
            self._batch = _SendBatch(self._family)
        return self._batch.send(self._fd, payloads[start : start + 64], addr)

    def packed_address(self, addr: Any) -> bytes | None:
        """``addr`` packed as a sockaddr (cached for the last one), or None where it won't."""
        if addr != self._packed_for:
            self._packed_for = addr
            self._packed = packed_sockaddr(self._family, addr)
        return self._packed


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
        self.iovs = (IOVec * count)()
        self.msgs = (MMsgHdr * count)()
        self.name = ctypes.create_string_buffer(NAME_SIZE)
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
            raw = sockaddr(self.family, addr)
            ctypes.memmove(self.name, raw, len(raw))
            self.addr = addr
        libc = _native.libc
        assert libc is not None  # only made where sendmmsg exists
        sent = libc.sendmmsg(fd, ctypes.addressof(self.msgs), count, MSG_DONTWAIT)
        if sent < 0:
            raise _native.libc_error("sendmmsg")
        return int(sent)


def packed_sockaddr(family: int, addr: Any) -> bytes | None:
    """Return ``addr`` packed as a sockaddr of ``family``, or None where it does not pack.

    A host name or an IPv6 zone in the text does not: the socket module resolves those.
    """
    if family == socket.AF_INET6 and len(addr) > 2 and addr[2]:
        return None  # a flow label: the socket module checks and sends it
    try:
        return sockaddr(family, addr)
    except (OSError, ValueError, TypeError, IndexError, struct.error):
        return None


def sockaddr(family: int, addr: Any) -> bytes:
    """``addr`` (a socket-module address of ``family``) as a sockaddr; OSError where not numeric."""
    kind = ipaddress.IPv4Address if family == socket.AF_INET else ipaddress.IPv6Address
    try:
        if not isinstance(addr[0], str) or "%" in addr[0]:
            raise ValueError(addr[0])
        address = kind(addr[0])
    except ValueError:
        raise OSError(f"{addr[0]!r} is not a numeric address of the family") from None
    scope = addr[3] if family == socket.AF_INET6 and len(addr) > 3 else 0
    return pack_sockaddr(address, port=addr[1], scope_id=scope)
