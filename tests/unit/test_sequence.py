"""Sequence accounting for test traffic, from tables.

Each row is a stream of received sequence numbers (None: a payload too short to carry one)
and what a SequenceTracker must count for it. The semantics are those of the module's design
comment: gaps are numbers between the first and the highest seen that never arrived; a late
arrival that fills a gap counts as reordered; a number seen before counts as a duplicate;
holes more than ``window`` numbers behind the highest seen are given up as lost for good, and
an arrival of one counts as late, not as new; memory stays bounded by the window.
"""

from __future__ import annotations

import random
from typing import NamedTuple

import pytest

from aiomcast import InvalidArgumentError, SequenceTracker, pack_sequence, unpack_sequence
from aiomcast._measure import Measurement
from aiomcast._sequence import (
    IPERF2_HEADER,
    SEQUENCE_HEADER,
    pack_iperf2,
    pack_timestamped,
    read_iperf2,
)


class Counts(NamedTuple):
    unique: int
    duplicates: int = 0
    reordered: int = 0
    late: int = 0
    unnumbered: int = 0
    gaps: int = 0


def counts(tracker: SequenceTracker) -> Counts:
    return Counts(
        tracker.unique,
        tracker.duplicates,
        tracker.reordered,
        tracker.late,
        tracker.unnumbered,
        tracker.gaps,
    )


def track(stream: list[int | None], window: int) -> SequenceTracker:
    tracker = SequenceTracker(window=window)
    for sequence in stream:
        tracker.add(sequence)
    return tracker


# (id, window, stream, counts, first, highest)
CASES: list[tuple[str, int, list[int | None], Counts, int | None, int | None]] = [
    ("empty", 100, [], Counts(0), None, None),
    ("single", 100, [7], Counts(1), 7, 7),
    ("in-order", 100, [0, 1, 2, 3, 4], Counts(5), 0, 4),
    ("in-order-from-anywhere", 100, [1000, 1001, 1002], Counts(3), 1000, 1002),
    ("in-order-from-2**63", 100, [2**63, 2**63 + 1], Counts(2), 2**63, 2**63 + 1),
    # loss: gaps counted; numbers before the first one are not known to be missing
    ("loss", 100, [0, 1, 3, 4, 7], Counts(5, gaps=3), 0, 7),
    ("loss-burst", 100, [10, 11, 50], Counts(3, gaps=38), 10, 50),
    ("no-loss-before-first", 100, [5, 6], Counts(2), 5, 6),
    # reorder: a late arrival fills a gap; gaps decrease
    ("swap", 100, [0, 2, 1, 3], Counts(4, reordered=1), 0, 3),
    ("partial-fill", 100, [0, 3, 1], Counts(3, reordered=1, gaps=1), 0, 3),
    ("reverse-tail", 100, [0, 5, 4, 3, 2, 1], Counts(6, reordered=4), 0, 5),
    # duplicates
    ("duplicates", 100, [0, 1, 1, 2, 2, 2], Counts(3, duplicates=3), 0, 2),
    ("duplicate-first", 100, [5, 5], Counts(1, duplicates=1), 5, 5),
    ("duplicate-of-filled-gap", 100, [0, 2, 1, 1], Counts(3, duplicates=1, reordered=1), 0, 2),
    ("duplicate-inside-stream", 100, [0, 1, 2, 3, 1], Counts(4, duplicates=1), 0, 3),
    # an earlier number than the first: the stream started before it
    ("earlier-than-first", 100, [5, 6, 7, 3], Counts(4, reordered=1, gaps=1), 3, 7),
    ("earlier-then-fill", 100, [5, 6, 7, 3, 4], Counts(5, reordered=2), 3, 7),
    ("far-earlier-than-first", 10, [100, 50], Counts(1, late=1), 100, 100),
    # unnumbered payloads are counted apart and change nothing else
    ("unnumbered-only", 100, [None, None], Counts(0, unnumbered=2), None, None),
    ("unnumbered-mixed", 100, [None, 0, None, 1], Counts(2, unnumbered=2), 0, 1),
    ("unnumbered-in-gap", 100, [0, None, 2], Counts(2, unnumbered=1, gaps=1), 0, 2),
    # beyond the window
    ("seen-long-ago", 10, [*range(31), 5], Counts(31, late=1), 0, 30),
    ("huge-jump", 10, [0, 1000], Counts(2, gaps=999), 0, 1000),
    ("huge-jump-2**40", 64, [0, 2**40], Counts(2, gaps=2**40 - 1), 0, 2**40),
    ("steady-loss", 4, list(range(0, 100, 3)), Counts(34, gaps=66), 0, 99),
    # a hole just behind the highest, after a jump beyond the window: still a hole, so its
    # arrival fills it (reordered), it is not a duplicate
    ("huge-jump-then-recent-hole", 10, [0, 1000, 995], Counts(3, reordered=1, gaps=998), 0, 1000),
    ("jump-then-recent-hole", 10, [0, 5, 20, 17], Counts(4, reordered=1, gaps=17), 0, 20),
    # a hole far behind the highest after a jump: given up, its arrival is late
    ("huge-jump-then-ancient-hole", 10, [0, 1000, 3], Counts(2, late=1, gaps=999), 0, 1000),
    # earlier than the first, but more than the window behind the highest: late, not new
    ("earlier-than-first-beyond-window", 10, [100, 110, 91], Counts(2, late=1, gaps=9), 100, 110),
]


@pytest.mark.parametrize(
    ("window", "stream", "expected", "first", "highest"),
    [pytest.param(*row[1:], id=row[0]) for row in CASES],
)
def test_tracker(
    window: int,
    stream: list[int | None],
    expected: Counts,
    first: int | None,
    highest: int | None,
) -> None:
    tracker = track(stream, window)
    assert counts(tracker) == expected
    assert (tracker.first, tracker.highest) == (first, highest)
    assert tracker.window == window


# Streams that stress the window: (id, window, stream)
BOUNDED: list[tuple[str, int, list[int | None]]] = [
    ("one-huge-jump", 100, [0, 10**9]),
    ("repeated-jumps", 16, [i * 50 for i in range(40)]),
    ("every-other", 16, list(range(0, 1000, 2))),
    ("jump-short-of-window", 16, [i * 15 for i in range(100)]),
    ("earlier-than-first-after-jump", 10, [100, 110, 91]),
    ("earlier-than-first-twice", 10, [100, 110, 91, 82, 73]),
]


@pytest.mark.parametrize(
    ("window", "stream"), [pytest.param(*row[1:], id=row[0]) for row in BOUNDED]
)
def test_memory_is_bounded_by_the_window(window: int, stream: list[int | None]) -> None:
    tracker = SequenceTracker(window=window)
    for sequence in stream:
        tracker.add(sequence)
        assert tracker.missing <= window, sequence
        assert tracker.holes <= tracker.max_holes, sequence


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("window", [4, 64, 1000])
def test_losses_only_add_up(seed: int, window: int) -> None:
    # With numbers that only grow, every number from first to highest either arrived or is a
    # gap, whatever the window.
    rng = random.Random(seed)
    stream = [0]
    for _ in range(300):
        stream.append(stream[-1] + rng.choice([1, 1, 1, 2, 5, window + 3, 3 * window]))
    tracker = track(list(stream), window)
    assert tracker.first == 0
    assert tracker.highest == stream[-1]
    assert tracker.unique == len(stream)
    assert tracker.unique + tracker.gaps == stream[-1] + 1
    assert (tracker.duplicates, tracker.reordered, tracker.late) == (0, 0, 0)


# --------------------------------------------------------------------------------------------
# The payload header: 64-bit big-endian sequence number at the start

# (sequence, size, payload)
PACK: list[tuple[int, int, bytes]] = [
    (0, 8, bytes(8)),
    (1, 8, b"\x00\x00\x00\x00\x00\x00\x00\x01"),
    (258, 10, b"\x00\x00\x00\x00\x00\x00\x01\x02\x00\x00"),
    (1, 11, b"\x00\x00\x00\x00\x00\x00\x00\x01" + bytes(3)),  # too short for the marker
    (1, 12, b"\x00\x00\x00\x00\x00\x00\x00\x01amc\x00"),
    (1, 14, b"\x00\x00\x00\x00\x00\x00\x00\x01amc\x00" + bytes(2)),
    (2**64 - 1, 8, b"\xff" * 8),
    (2**56, 9, b"\x01" + bytes(7) + b"\x00"),
    (5, 0, b"\x00\x00\x00\x00\x00\x00\x00\x05"),  # at least the 8-byte header
    (5, 3, b"\x00\x00\x00\x00\x00\x00\x00\x05"),
]


@pytest.mark.parametrize(("sequence", "size", "payload"), PACK)
def test_pack_sequence(sequence: int, size: int, payload: bytes) -> None:
    assert pack_sequence(sequence, size) == payload
    assert unpack_sequence(payload) == sequence


@pytest.mark.parametrize("size", [8, 9, 64, 1400, 65507])
@pytest.mark.parametrize("sequence", [0, 1, 255, 256, 2**32, 2**63, 2**64 - 1])
def test_sequence_round_trip(sequence: int, size: int) -> None:
    payload = pack_sequence(sequence, size)
    assert len(payload) == size
    assert unpack_sequence(payload) == sequence


# (payload, sequence or None)
UNPACK: list[tuple[bytes, int | None]] = [
    (b"", None),
    (b"\x01", None),
    (bytes(7), None),  # one byte short of the header
    (bytes(8), 0),
    (b"\x00" * 7 + b"\x2a" + b"trailing data", 42),
    (b"\x80" + bytes(7), 2**63),
]


@pytest.mark.parametrize(("payload", "sequence"), UNPACK)
def test_unpack_sequence(payload: bytes, sequence: int | None) -> None:
    assert SEQUENCE_HEADER.size == 8
    assert unpack_sequence(payload) == sequence


def test_unpacked_payloads_feed_the_tracker() -> None:
    tracker = SequenceTracker()
    for payload in [pack_sequence(0, 16), b"short", pack_sequence(2, 16), pack_sequence(1, 8)]:
        tracker.add(unpack_sequence(payload))
    assert counts(tracker) == Counts(3, reordered=1, unnumbered=1)


class Reference:
    """The tracker's rules, one number at a time (a set of missing numbers): slow and plain."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.first: int | None = None
        self.highest: int | None = None
        self.missing: set[int] = set()
        self.expired = 0
        self.unique = self.duplicates = self.reordered = self.late = 0

    def add(self, n: int) -> None:
        if self.first is None or self.highest is None:
            self.first = self.highest = n
            self.unique = 1
        elif n > self.highest:
            self.missing |= set(range(self.highest + 1, n))
            self.highest = n
            self.unique += 1
        elif n in self.missing:
            self.missing.discard(n)
            self.unique += 1
            self.reordered += 1
        elif n < self.highest - self.window:
            self.late += 1
        elif n < self.first:
            self.missing |= set(range(n + 1, self.first))
            self.first = n
            self.unique += 1
            self.reordered += 1
        else:
            self.duplicates += 1
        assert self.highest is not None
        old = {m for m in self.missing if m < self.highest - self.window}
        self.missing -= old
        self.expired += len(old)

    def counts(self) -> Counts:
        return Counts(
            self.unique,
            self.duplicates,
            self.reordered,
            self.late,
            0,
            len(self.missing) + self.expired,
        )


@pytest.mark.parametrize("seed", range(20))
def test_runs_count_what_one_by_one_counts(seed: int) -> None:
    # Loss, reordering, duplicates, numbers going back past the first, jumps past the window:
    # the runs of missing numbers give the counts of the plain model, number for number.
    rng = random.Random(seed)
    window = rng.choice([3, 10, 50, 200])
    tracker, reference = SequenceTracker(window=window), Reference(window)
    n = rng.randrange(100, 1000)
    for _ in range(2000):
        n = max(0, n + rng.choice([1, 1, 1, 1, 2, 3, -1, -2, -5, 0, window // 2, window + 7]))
        tracker.add(n)
        reference.add(n)
        assert counts(tracker) == reference.counts(), n
        assert tracker.missing == len(reference.missing)
    assert (tracker.first, tracker.highest) == (reference.first, reference.highest)


def _foreign(kind: str, count: int) -> list[int]:
    rng = random.Random(kind)
    if kind == "random-64-bit":
        return [rng.getrandbits(64) for _ in range(count)]
    if kind == "counter-in-high-32-bits":  # iperf2's and RTP's headers read as 64-bit numbers
        return [(i << 32) | rng.getrandbits(32) for i in range(1, count + 1)]
    if kind == "backwards":
        return list(range(10**6, 10**6 - count, -1))
    if kind == "duplicates":
        return [7] * count
    assert kind == "alternating-holes"
    return [i * 2 + (i % 2) * 10**6 for i in range(count)]


@pytest.mark.parametrize(
    "kind",
    ["random-64-bit", "counter-in-high-32-bits", "backwards", "duplicates", "alternating-holes"],
)
def test_foreign_numbers_keep_memory_bounded(kind: str) -> None:
    # What foreign payloads look like to the tracker: whatever arrives, every number is
    # counted once (unique, duplicate or late) and the runs kept stay within the bound.
    tracker = SequenceTracker(window=65536, max_holes=256)
    stream = _foreign(kind, 20_000)
    for number in stream:
        tracker.add(number)
        assert tracker.holes <= 256
        assert tracker.missing <= 65536
    assert tracker.unique + tracker.duplicates + tracker.late == len(stream)


def test_past_max_holes_the_oldest_runs_are_given_up() -> None:
    # Every other number missing: 10 runs kept at most; the older ones become lost for good,
    # and a late arrival of one of them counts as late, not reordered.
    tracker = SequenceTracker(window=1000, max_holes=10)
    for n in range(0, 100, 2):
        tracker.add(n)
    assert tracker.holes == 10
    assert tracker.gaps == 49
    assert tracker.missing == 10
    tracker.add(1)
    assert (tracker.late, tracker.reordered, tracker.duplicates) == (1, 0, 0)
    tracker.add(97)
    assert tracker.reordered == 1


def test_max_holes_is_checked() -> None:
    with pytest.raises(InvalidArgumentError, match="max_holes 0"):
        SequenceTracker(max_holes=0)


# -- telling test payloads from other traffic ---------------------------------------------------

NOW = 1_780_000_000.0  # a time in 2026
NOW_NS = int(NOW * 1e9)
# (id, payload, what `--format auto` reads: (number, send time in ns or None), or None for
# an unnumbered datagram)
MARKED: list[tuple[str, bytes, tuple[int, int | None] | None]] = [
    ("pack_sequence", pack_sequence(9, 64), (9, None)),
    ("timestamped", pack_timestamped(9, 64, 1234), (9, 1234)),
    ("shortest-timestamped", pack_timestamped(2**64 - 1, 20, 5), (2**64 - 1, 5)),
    ("too-short-for-the-marker", pack_sequence(9, 11), None),
    ("random-bytes", bytes(range(64)), None),
    ("iperf2", pack_iperf2(3, 64, NOW), (3, NOW_NS)),
    ("flag-without-room", pack_sequence(9, 12)[:11] + b"\x01" + bytes(4), (9, None)),
]


class _Datagram(NamedTuple):
    payload: bytes
    source: str = "10.0.0.1"
    source_port: int = 5000


def read_auto(payload: bytes) -> tuple[int, int | None] | None:
    """What Measurement("auto") makes of one datagram received at NOW."""
    measurement = Measurement("auto")
    measurement.add([_Datagram(payload)], NOW_NS)
    if measurement.unnumbered:
        return None
    (flow,) = measurement.flows.values()
    assert flow.tracker.highest is not None
    latency = measurement.latency
    return flow.tracker.highest, NOW_NS - latency.largest if latency.total else None


@pytest.mark.parametrize(("payload", "read"), [pytest.param(*r[1:], id=r[0]) for r in MARKED])
def test_marked_payloads_are_told_from_other_traffic(
    payload: bytes, read: tuple[int, int | None] | None
) -> None:
    assert read_auto(payload) == read


# (id, payload, what read_iperf2 gives at NOW)
IPERF2: list[tuple[str, bytes, tuple[int | None, int, bool] | None]] = [
    ("data", pack_iperf2(7, 64, NOW + 0.25), (7, int(NOW) * 10**9 + 250_000_000, False)),
    ("final", pack_iperf2(8, 64, NOW, final=True), (None, int(NOW) * 10**9, True)),
    (
        "clock-a-year-off",
        pack_iperf2(7, 64, NOW - 365 * 86400),
        (7, int(NOW - 365 * 86400) * 10**9, False),
    ),
    ("too-short", pack_iperf2(7, 64, NOW)[:15], None),
    ("micros-out-of-range", IPERF2_HEADER.pack(7, int(NOW), 1_000_000, 0), None),
    ("seconds-zero", IPERF2_HEADER.pack(7, 0, 5, 0), None),
    ("upper-word-random", IPERF2_HEADER.pack(7, int(NOW), 5, 12345), None),
    ("aiomcast-payload", pack_sequence(7, 64), None),
]


@pytest.mark.parametrize(("payload", "read"), [pytest.param(*r[1:], id=r[0]) for r in IPERF2])
def test_iperf2_datagrams_are_told_from_other_traffic(
    payload: bytes, read: tuple[int | None, int, bool] | None
) -> None:
    assert read_iperf2(payload, NOW) == read


def test_random_payloads_are_almost_never_taken_for_iperf2() -> None:
    rng = random.Random(3)
    taken = sum(read_iperf2(rng.randbytes(64), NOW) is not None for _ in range(100_000))
    assert taken == 0
