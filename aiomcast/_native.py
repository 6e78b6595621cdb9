# Design: what the fast path takes from below Python, loaded once. The C extension
# (_speedups.c: the batch reader, the queue iterator, sendto and sendmmsg), built where a
# compiler was at install time, and libc's recvmmsg / sendmmsg through ctypes, which the
# pure-Python readers and senders use where the extension is missing. Everything else reads
# these names from this module at call time (``_native.BatchReader``), so a test, or
# AIOMCAST_PURE_PYTHON=1 in the environment, switches the extension off in one place.
from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from ._options import PLATFORM

if TYPE_CHECKING:
    from . import _speedups

__all__ = [
    "batch_receiver_available",
    "speedups_available",
]

SOL_UDP: Final = 17
UDP_SEGMENT: Final = 103
UDP_GRO: Final = 104
MSG_DONTWAIT: Final = 0x40
MSG_TRUNC: Final = 0x20
NAME_SIZE: Final = 128  # sizeof(struct sockaddr_storage)


class IOVec(ctypes.Structure):
    """struct iovec."""

    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class MsgHdr(ctypes.Structure):
    """struct msghdr (Linux layout)."""

    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


class MMsgHdr(ctypes.Structure):
    """struct mmsghdr: one message of recvmmsg / sendmmsg."""

    _fields_ = (("msg_hdr", MsgHdr), ("msg_len", ctypes.c_uint))


BatchReader: type[_speedups.BatchReader] | None = None
QueueIterator: type[_speedups.QueueIterator] | None = None
#: One sendto(2) to a packed sockaddr, for Sender.send's hot path (Linux).
c_sendto: Callable[[int, bytes, bytes], bool] | None = None
#: One sendmmsg(2) of up to 64 payloads to a packed sockaddr, for send_many without GSO.
c_sendmmsg: Callable[[int, Sequence[bytes], int, bytes], int] | None = None
try:
    from . import _speedups as _built
except ImportError:  # pragma: no cover - installed without the C extension
    pass
else:
    if os.environ.get("AIOMCAST_PURE_PYTHON", "") in ("", "0"):
        # The batch reader is built on Linux only; the async iterator everywhere.
        BatchReader = getattr(_built, "BatchReader", None)
        QueueIterator = _built.QueueIterator
        c_sendto = getattr(_built, "sendto", None)
        c_sendmmsg = getattr(_built, "sendmmsg", None)

libc: Any = None
if PLATFORM == "linux":
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.recvmmsg.argtypes = (
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_void_p,
        )
        libc.recvmmsg.restype = ctypes.c_int
        libc.sendmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
        libc.sendmmsg.restype = ctypes.c_int
    except (OSError, AttributeError):  # pragma: no cover - a libc without them
        libc = None


def libc_error(call: str) -> OSError:
    """The OSError of the libc ``call`` that just failed (errno read from ctypes)."""
    # OSError(errno, ...) is the errno's own subclass: BlockingIOError for EAGAIN,
    # InterruptedError for EINTR, as the socket module raises them.
    err = ctypes.get_errno()
    return OSError(err, f"{call}: {os.strerror(err)}")


def batch_receiver_available() -> bool:
    """Whether recvmmsg / sendmmsg are usable here (Linux with glibc or musl)."""
    return libc is not None


def speedups_available() -> bool:
    """Whether the receive fast path in C (aiomcast._speedups) was built and loads."""
    return BatchReader is not None
