# Design: sequence accounting for test traffic. `aiomcast send --size` puts a 64-bit big-endian
# sequence number at the start of each payload; a SequenceTracker counts what arrived against
# it: gaps (numbers never seen), late arrivals that fill a gap (reordered), and duplicates.
# Memory is bounded: holes older than `window` numbers behind the highest seen are given up
# as lost for good, and later arrivals of them count as late, not as new.
from __future__ import annotations

import struct
from typing import Final

__all__ = ["SEQUENCE_HEADER", "SequenceTracker", "pack_sequence", "unpack_sequence"]

#: Format of the sequence number at the start of an aiomcast test payload.
SEQUENCE_HEADER: Final = struct.Struct(">Q")


def pack_sequence(sequence: int, size: int) -> bytes:
    """Return a payload of ``size`` bytes (at least 8) that starts with ``sequence``."""
    header = SEQUENCE_HEADER.pack(sequence)
    return header + bytes(max(0, size - len(header)))


def unpack_sequence(payload: bytes) -> int | None:
    """Return the sequence number at the start of ``payload``, or None if it is too short."""
    if len(payload) < SEQUENCE_HEADER.size:
        return None
    return int(SEQUENCE_HEADER.unpack_from(payload)[0])


class SequenceTracker:
    """Counts gaps, reordering and duplicates in a stream of sequence numbers."""

    def __init__(self, window: int = 65536) -> None:
        self.window = window
        self.highest: int | None = None
        self.first: int | None = None
        self.unique = 0
        self.duplicates = 0
        self.reordered = 0
        self.late = 0
        self.unnumbered = 0
        self._missing: set[int] = set()
        self._expired = 0

    def add(self, sequence: int | None) -> None:
        """Account for one received sequence number (None: payload too short to carry one)."""
        if sequence is None:
            self.unnumbered += 1
            return
        if self.highest is None:
            self.highest = self.first = sequence
            self.unique = 1
            return
        if sequence > self.highest:
            for missing in range(self.highest + 1, min(sequence, self.highest + 1 + self.window)):
                self._missing.add(missing)
            skipped = sequence - self.highest - 1
            if skipped > self.window:
                self._expired += skipped - self.window
            self.highest = sequence
            self.unique += 1
            self._expire()
        elif sequence in self._missing:
            self._missing.discard(sequence)
            self.unique += 1
            self.reordered += 1
        elif self.first is not None and sequence < self.first:
            if self.first - sequence > self.window:
                self.late += 1
                return
            # An earlier number than the first one seen: the stream started before it.
            self._missing.update(range(sequence + 1, self.first))
            self.first = sequence
            self.unique += 1
            self.reordered += 1
        elif sequence < self.highest - self.window:
            self.late += 1
        else:
            self.duplicates += 1

    def _expire(self) -> None:
        assert self.highest is not None
        floor = self.highest - self.window
        if len(self._missing) > self.window:
            stale = [m for m in self._missing if m < floor]
            self._missing.difference_update(stale)
            self._expired += len(stale)

    @property
    def gaps(self) -> int:
        """Sequence numbers between the first and highest seen that never arrived."""
        return len(self._missing) + self._expired
