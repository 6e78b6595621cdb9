# Design: sequence accounting for test traffic. `aiomcast send --size` puts a 64-bit big-endian
# sequence number at the start of each payload; a SequenceTracker counts what arrived against
# it: gaps (numbers never seen), late arrivals that fill a gap (reordered), and duplicates.
# Memory is bounded: holes older than `window` numbers behind the highest seen are given up
# as lost for good, and later arrivals of them count as late, not as new.
from __future__ import annotations

import collections
import struct
from typing import Final

from ._address import MAX_PAYLOAD_IPV6
from ._errors import InvalidArgumentError, show

__all__ = [
    "IPERF2_HEADER",
    "SEQUENCE_HEADER",
    "SequenceTracker",
    "pack_iperf2",
    "pack_sequence",
    "unpack_iperf2",
    "unpack_sequence",
]

#: Format of the sequence number at the start of an aiomcast test payload.
SEQUENCE_HEADER: Final = struct.Struct(">Q")


def pack_sequence(sequence: int, size: int) -> bytes:
    """Return a payload of ``size`` bytes (at least 8) that starts with ``sequence``.

    Raises:
        InvalidArgumentError: ``sequence`` is not in 0 to 2**64-1, or ``size`` not in 0 to
            65527 (the largest UDP payload).
    """
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence < 2**64:
        raise InvalidArgumentError(
            f"sequence {show(sequence)} is not an integer 0 to 2**64-1", value=sequence
        )
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_PAYLOAD_IPV6:
        raise InvalidArgumentError(
            f"size {show(size)} is not an integer 0 to {MAX_PAYLOAD_IPV6} (one UDP datagram)",
            value=size,
        )
    header = SEQUENCE_HEADER.pack(sequence)
    return header + bytes(max(0, size - len(header)))


def unpack_sequence(payload: bytes | bytearray | memoryview) -> int | None:
    """Return the sequence number at the start of ``payload``, or None if it is too short.

    Raises:
        InvalidArgumentError: ``payload`` is not bytes-like.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise InvalidArgumentError(
            f"payload must be bytes-like, not {type(payload).__name__}",
            value=type(payload).__name__,
        )
    if len(payload) < SEQUENCE_HEADER.size:
        return None
    return int(SEQUENCE_HEADER.unpack_from(payload)[0])


class SequenceTracker:
    """Counts gaps, reordering and duplicates in a stream of sequence numbers.

    Invariant: ``unique + gaps == highest - first + 1`` once a number was seen. A number that
    arrives after it was given up (more than ``window`` behind the highest) counts as ``late``
    and stays in ``gaps``.
    """

    def __init__(self, window: int = 65536) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or not 0 < window <= 1 << 24:
            raise InvalidArgumentError(
                f"window {show(window)} must be an integer 1 to 2**24 (sequence numbers kept)",
                value=window,
            )
        self.window = window
        self.highest: int | None = None
        self.first: int | None = None
        self.unique = 0
        self.duplicates = 0
        self.reordered = 0
        self.late = 0
        self.unnumbered = 0
        # Holes in ascending order (lazily pruned) and as a set for membership.
        self._holes: collections.deque[int] = collections.deque()
        self._missing: set[int] = set()
        self._expired = 0

    def add(self, sequence: int | None) -> None:
        """Account for one received sequence number (None: payload too short to carry one).

        Raises:
            InvalidArgumentError: ``sequence`` is not None nor an integer 0 or more.
        """
        if sequence is None:
            self.unnumbered += 1
            return
        # Fast path: one exact type check (bool, a subclass of int, is refused by it too).
        if type(sequence) is not int or sequence < 0:
            raise InvalidArgumentError(
                f"sequence {show(sequence)} is not None nor an integer 0 or more",
                value=sequence,
            )
        highest, first = self.highest, self.first
        if highest is None or first is None:
            self.highest = self.first = sequence
            self.unique = 1
            return
        if sequence > highest:
            low = max(highest + 1, sequence - self.window)
            self._expired += low - (highest + 1)  # too far back to track: lost for good
            self._holes.extend(range(low, sequence))
            self._missing.update(range(low, sequence))
            self.highest = sequence
            self.unique += 1
            self._expire()
        elif sequence in self._missing:
            self._missing.discard(sequence)
            self.unique += 1
            self.reordered += 1
        elif sequence < highest - self.window:
            self.late += 1
        elif sequence < first:
            # The stream started before the first number seen: the numbers between are holes.
            self._holes.extendleft(range(first - 1, sequence, -1))
            self._missing.update(range(sequence + 1, first))
            self.first = sequence
            self.unique += 1
            self.reordered += 1
        else:
            self.duplicates += 1

    def _expire(self) -> None:
        assert self.highest is not None
        floor = self.highest - self.window
        holes, missing = self._holes, self._missing
        while holes and holes[0] < floor:
            hole = holes.popleft()
            if hole in missing:
                missing.discard(hole)
                self._expired += 1

    @property
    def gaps(self) -> int:
        """Sequence numbers between the first and highest seen that never arrived."""
        return len(self._missing) + self._expired


#: iperf2's UDP datagram header (iperf 2.0.x and 2.1.x, network order): a signed 32-bit
#: sequence number (negative on the final datagram), the send time in seconds and
#: microseconds, and the upper 32 bits of a 64-bit sequence number.
IPERF2_HEADER: Final = struct.Struct("!iIIi")


def pack_iperf2(sequence: int, size: int, now: float, *, final: bool = False) -> bytes:
    """Return an iperf2-compatible UDP payload of ``size`` bytes (at least 16).

    iperf2 numbers data datagrams 1, 2, 3, ... and ends a stream with a final datagram whose
    number is the negative of the next one (after n datagrams: -(n + 1)); its servers compute
    loss from the numbers and jitter from the send times, and print their report on the
    final datagram.

    Raises:
        InvalidArgumentError: the sequence is not in 1 to 2**31-1 or ``size`` is below 16.
    """
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 < sequence < 2**31:
        raise InvalidArgumentError(
            f"iperf2 sequence {show(sequence)} is not an integer 1 to 2**31-1", value=sequence
        )
    if isinstance(size, bool) or not isinstance(size, int) or size < IPERF2_HEADER.size:
        raise InvalidArgumentError(
            f"iperf2 datagrams carry a {IPERF2_HEADER.size}-byte header; size {show(size)} is "
            "too small",
            value=size,
        )
    seconds = int(now)
    micros = int((now - seconds) * 1_000_000)
    number = -sequence if final else sequence
    header = IPERF2_HEADER.pack(number, seconds, micros, -1 if final else 0)
    return header + bytes(size - IPERF2_HEADER.size)


def unpack_iperf2(payload: bytes) -> tuple[int | None, bool]:
    """Return (sequence number, is final) of an iperf2 datagram; (None, False) if too short."""
    if len(payload) < IPERF2_HEADER.size:
        return None, False
    number, _sec, _usec, upper = IPERF2_HEADER.unpack_from(payload)
    if number < 0:
        return None, True
    return (upper << 32 | number) if upper > 0 else number, False
