# Design: sequence accounting for test traffic. aiomcast's test payloads (`aiomcast send
# --size`, pack_sequence) start with a 64-bit big-endian sequence number, then, from 12 bytes
# on, a marker (b"amc" and a flags byte) that lets a receiver tell them from other traffic,
# and with the timestamp flag the send time in nanoseconds (CLOCK_REALTIME). A
# SequenceTracker counts what arrived against the numbers: gaps (numbers never seen), late
# arrivals that fill a gap (reordered), and duplicates, keeping the missing numbers as runs so
# that each datagram costs O(1) amortized, whatever arrives. Memory is bounded: runs more than
# `window` numbers behind the highest seen, or past `max_holes` runs, are given up as lost for
# good, and later arrivals of them count as late, not as new.
from __future__ import annotations

import bisect
import struct
from typing import Final

from ._address import MAX_PAYLOAD_IPV6
from ._errors import InvalidArgumentError, show

__all__ = [
    "IPERF2_HEADER",
    "MARKER",
    "SEQUENCE_HEADER",
    "TIMESTAMP_HEADER",
    "SequenceTracker",
    "pack_iperf2",
    "pack_sequence",
    "pack_timestamped",
    "read_iperf2",
    "unpack_iperf2",
    "unpack_sequence",
]

#: Format of the sequence number at the start of an aiomcast test payload.
SEQUENCE_HEADER: Final = struct.Struct(">Q")
#: What follows the sequence number in a payload of 12 bytes or more: b"amc", a flags byte.
MARKER: Final = b"amc"
#: The flags byte: a send time (8 bytes, nanoseconds since the epoch) follows the marker.
TIMESTAMPED: Final = 0x01
#: Sequence number, marker and flags, send time: the header of a timestamped payload.
TIMESTAMP_HEADER: Final = struct.Struct(">Q3sBQ")


def pack_sequence(sequence: int, size: int) -> bytes:
    """Return a payload of ``size`` bytes (at least 8) that starts with ``sequence``.

    From 12 bytes on, the sequence number is followed by aiomcast's marker (b"amc" and a
    flags byte of 0), by which ``aiomcast listen`` tells aiomcast's test payloads from other
    traffic; the rest is zeros.

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
    if size >= SEQUENCE_HEADER.size + 4:
        header += MARKER + b"\x00"
    return header + bytes(max(0, size - len(header)))


def pack_timestamped(sequence: int, size: int, send_ns: int) -> bytes:
    """A test payload of ``size`` bytes (at least 20) with its send time, in ns since the epoch.

    The header is the sequence number, aiomcast's marker with the TIMESTAMPED flag, and the
    send time (each big-endian); ``aiomcast listen`` reads one-way latency from it.

    Raises:
        InvalidArgumentError: ``sequence`` or ``send_ns`` is not in 0 to 2**64-1, or ``size``
            is not in 20 to 65527.
    """
    for name, value in (("sequence", sequence), ("send_ns", send_ns)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
            raise InvalidArgumentError(
                f"{name} {show(value)} is not an integer 0 to 2**64-1", value=value
            )
    if (
        isinstance(size, bool)
        or not isinstance(size, int)
        or not TIMESTAMP_HEADER.size <= size <= MAX_PAYLOAD_IPV6
    ):
        raise InvalidArgumentError(
            f"size {show(size)} is not an integer {TIMESTAMP_HEADER.size} (the timestamped "
            f"header) to {MAX_PAYLOAD_IPV6}",
            value=size,
        )
    header = TIMESTAMP_HEADER.pack(sequence, MARKER, TIMESTAMPED, send_ns)
    return header + bytes(size - TIMESTAMP_HEADER.size)


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
    arrives after it was given up (more than ``window`` behind the highest, or past the
    ``max_holes`` runs of missing numbers kept) counts as ``late`` and stays in ``gaps``.

    The missing numbers are kept as runs (intervals), not one by one: each ``add`` costs
    O(1) amortized whatever arrives (in order, huge jumps, random 64-bit numbers, numbers
    going backwards, duplicates), and memory is bounded by ``max_holes`` runs.
    """

    def __init__(self, window: int = 65536, *, max_holes: int = 4096) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or not 0 < window <= 1 << 24:
            raise InvalidArgumentError(
                f"window {show(window)} must be an integer 1 to 2**24 (sequence numbers kept)",
                value=window,
            )
        if isinstance(max_holes, bool) or not isinstance(max_holes, int) or max_holes < 1:
            raise InvalidArgumentError(
                f"max_holes {show(max_holes)} must be an integer 1 or more (runs of missing "
                "numbers kept)",
                value=max_holes,
            )
        self.window = window
        self.max_holes = max_holes
        self.highest: int | None = None
        self.first: int | None = None
        self.unique = 0
        self.duplicates = 0
        self.reordered = 0
        self.late = 0
        self.unnumbered = 0
        # The runs of missing numbers [start, end), ascending, as two parallel lists from
        # index _head on (runs before it were given up; the lists are compacted now and then).
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._head = 0
        self._missing = 0  # numbers in the runs
        self._expired = 0  # numbers given up as lost for good
        self._given_up = 0  # below it, runs were given up for the cap: nothing is tracked

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
        if sequence == highest + 1:  # the common case: in order
            self.highest = sequence
            self.unique += 1
            if self._head < len(self._starts) and self._starts[self._head] < sequence - self.window:
                self._expire()
            return
        if sequence > highest:
            low = max(highest + 1, sequence - self.window)
            self._expired += low - (highest + 1)  # too far back to track: lost for good
            if low < sequence:
                self._starts.append(low)
                self._ends.append(sequence)
                self._missing += sequence - low
            self.highest = sequence
            self.unique += 1
            self._expire()
            return
        if sequence < highest - self.window or sequence < self._given_up:
            self.late += 1
            return
        if sequence < first:
            # The stream started before the first number seen: the numbers between are holes.
            self._prepend(sequence + 1, first)
            self.first = sequence
            self.unique += 1
            self.reordered += 1
            self._expire()
            return
        starts, ends = self._starts, self._ends
        i = bisect.bisect_right(starts, sequence, self._head) - 1
        if i < self._head or sequence >= ends[i]:
            self.duplicates += 1
            return
        # A late arrival fills a hole: the run shrinks or splits.
        self.unique += 1
        self.reordered += 1
        self._missing -= 1
        start, end = starts[i], ends[i]
        if start == sequence and end == sequence + 1:
            del starts[i], ends[i]
        elif start == sequence:
            starts[i] = sequence + 1
        elif end == sequence + 1:
            ends[i] = sequence
        else:
            ends[i] = sequence
            starts.insert(i + 1, sequence + 1)
            ends.insert(i + 1, end)
            self._expire()

    def add_many(self, sequences: list[int]) -> None:
        """Account for several received sequence numbers, in the order they arrived.

        The same counts as ``add`` for each in turn; a run that continues the stream in
        order (the common case) costs one comparison of lists, not a call per number.

        Raises:
            InvalidArgumentError: a number is not an integer 0 or more.
        """
        count = len(sequences)
        highest = self.highest
        if (
            count
            and highest is not None
            and sequences[0] == highest + 1
            and sequences[-1] == highest + count
            and (count < 3 or sequences == list(range(highest + 1, highest + count + 1)))
        ):
            self.highest = highest = highest + count
            self.unique += count
            if self._head < len(self._starts) and self._starts[self._head] < highest - self.window:
                self._expire()
            return
        add = self.add
        for sequence in sequences:
            add(sequence)

    def _prepend(self, start: int, end: int) -> None:
        if start >= end:
            return
        if self._head > 0:
            self._head -= 1
            self._starts[self._head] = start
            self._ends[self._head] = end
        else:
            self._starts.insert(0, start)
            self._ends.insert(0, end)
        self._missing += end - start

    def _expire(self) -> None:
        """Give up the runs more than ``window`` behind the highest, and runs past the cap."""
        assert self.highest is not None
        floor = self.highest - self.window
        starts, ends = self._starts, self._ends
        head = self._head
        while head < len(starts) and (starts[head] < floor or len(starts) - head > self.max_holes):
            if ends[head] <= floor or len(starts) - head > self.max_holes:
                gone = ends[head] - starts[head]
                self._given_up = max(self._given_up, ends[head])
                head += 1
            else:  # the run straddles the floor: its older part goes
                gone = floor - starts[head]
                starts[head] = floor
            self._missing -= gone
            self._expired += gone
        if head > 64 and head * 2 > len(starts):
            del starts[:head], ends[:head]
            head = 0
        self._head = head

    @property
    def holes(self) -> int:
        """Runs of missing numbers kept now (at most ``max_holes``)."""
        return len(self._starts) - self._head

    @property
    def missing(self) -> int:
        """How many numbers are missing within the window; they may still arrive."""
        return self._missing

    @property
    def gaps(self) -> int:
        """Sequence numbers between the first and highest seen that never arrived."""
        return self._missing + self._expired


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


#: How far an iperf2 send time may be from this host's clock and still read as iperf2's
#: (ten years: any host's clock, never random bytes but once in about 30,000).
_IPERF2_CLOCK_SLACK: Final = 10 * 365 * 86400


def read_iperf2(payload: bytes, now: float) -> tuple[int | None, int, bool] | None:
    """(sequence, send time in ns, final) of a datagram that looks like iperf2's, or None.

    It looks like iperf2's with microseconds below a million, a send time within ten years of
    ``now`` and the upper sequence word 0 or -1. The final datagram's sequence is None.
    """
    if len(payload) < IPERF2_HEADER.size:
        return None
    number, seconds, micros, upper = IPERF2_HEADER.unpack_from(payload)
    if micros >= 1_000_000 or abs(seconds - now) > _IPERF2_CLOCK_SLACK or upper not in (0, -1):
        return None
    send_ns = seconds * 1_000_000_000 + micros * 1000
    if number < 0:
        return None, send_ns, True
    return number, send_ns, False
