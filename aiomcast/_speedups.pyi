# Types of the C extension aiomcast._speedups (_speedups.c).
from collections import deque
from collections.abc import Awaitable, Callable
from typing import final

from ._types import Datagram

@final
class BatchReader:
    """Preallocated recvmmsg state for one socket; read() returns Datagram tuples."""

    def __init__(
        self,
        fd: int,
        family: int,
        datagram_type: type[Datagram],
        count: int = 64,
        slot: int = 65536,
        gro: bool = False,
        limit: int = 65536,
    ) -> None: ...
    @property
    def count(self) -> int:
        """The recvmmsg slots of one read()."""
    @property
    def rounds(self) -> int:
        """Reads per readiness event at most (16)."""
    def read(self) -> tuple[list[Datagram], int, int, int] | None:
        """One recvmmsg call: (datagrams, payload bytes, truncated, messages) or None."""

@final
class QueueIterator:
    """Async iterator over a deque of datagrams; ``wait()`` when it is empty."""

    def __init__(self, queue: deque[Datagram], wait: Callable[[], Awaitable[Datagram]]) -> None: ...
    def __aiter__(self) -> QueueIterator: ...
    def __anext__(self) -> Awaitable[Datagram]: ...

def sendto(fd: int, data: bytes, address: bytes, /) -> bool:
    """Send ``data`` to a packed sockaddr (MSG_DONTWAIT): True sent, False buffer full."""

def sendmmsg(
    fd: int, payloads: list[bytes] | tuple[bytes, ...], start: int, address: bytes, /
) -> int:
    """One sendmmsg of up to 64 payloads from ``start`` to a packed sockaddr: how many went."""
