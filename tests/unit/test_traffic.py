"""aiomcast/_traffic.py: the payloads ``aiomcast send`` builds and its pacing schedule."""

from __future__ import annotations

import time

import pytest

from aiomcast import InvalidArgumentError, pack_sequence
from aiomcast._sequence import (
    MARKER,
    TIMESTAMP_HEADER,
    TIMESTAMPED,
    pack_timestamped,
    read_iperf2,
    unpack_iperf2,
    unpack_sequence,
)
from aiomcast._traffic import Pacer, Payloads

# -- payloads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8, 9, 11, 12, 13, 64, 1472, 65527])
def test_sequenced_batches_are_pack_sequence(size: int) -> None:
    batch = Payloads("aiomcast", size).make(5, 3)
    assert batch == [pack_sequence(n, size) for n in (5, 6, 7)]


def test_the_largest_sequence_number() -> None:
    (payload,) = Payloads("aiomcast", 16).make(2**64 - 1, 1)
    assert unpack_sequence(payload) == 2**64 - 1


def test_timestamped_batches_share_one_send_time() -> None:
    before = time.time_ns()
    batch = Payloads("timestamped", 64).make(0, 4)
    after = time.time_ns()
    read = [TIMESTAMP_HEADER.unpack_from(p) for p in batch]
    assert [(n, marker, flags) for n, marker, flags, _ in read] == [
        (n, MARKER, TIMESTAMPED) for n in range(4)
    ]
    stamps = {r[3] for r in read}
    assert len(stamps) == 1
    (stamp,) = stamps
    assert before <= stamp <= after
    assert batch[0] == pack_timestamped(0, 64, stamp)


def test_iperf2_batches_number_from_one() -> None:
    batch = Payloads("iperf2", 100).make(0, 3)
    assert [unpack_iperf2(p) for p in batch] == [(1, False), (2, False), (3, False)]
    parsed = read_iperf2(batch[0], time.time())
    assert parsed is not None
    assert parsed[0] == 1


def test_message_batches_repeat_the_message() -> None:
    payloads = Payloads("message", 0, b"hi")
    assert payloads.make(0, 3) == [b"hi"] * 3
    assert payloads.size == 2


@pytest.mark.parametrize(
    ("kind", "size", "named"),
    [
        ("aiomcast", 7, "size 7"),
        ("timestamped", 19, "size 19"),
        ("iperf2", 15, "size 15"),
        ("rtp", 64, "'rtp'"),
    ],
)
def test_payloads_refuse_what_does_not_fit(kind: str, size: int, named: str) -> None:
    with pytest.raises(InvalidArgumentError, match=named):
        Payloads(kind, size)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((-1, 64, 0), "sequence -1"),
        ((0, 19, 0), "size 19"),
        ((0, 65528, 0), "size 65528"),
        ((0, 64, -1), "send_ns -1"),
        ((True, 64, 0), "sequence True"),
    ],
)
def test_pack_timestamped_refuses_bad_values(args: tuple[int, int, int], named: str) -> None:
    with pytest.raises(InvalidArgumentError, match=named):
        pack_timestamped(*args)


# -- pacing ------------------------------------------------------------------------------------


def test_unpaced_everything_is_due() -> None:
    pacer = Pacer(0, 64, 10.0)
    assert pacer.due(10.0) is None
    assert pacer.at(1000) == pacer.end(1000) == 10.0


def test_one_at_a_time() -> None:
    pacer = Pacer(1000, 1, 0.0)
    assert pacer.due(0.0) == 1  # the first is due at the start
    assert pacer.due(0.0009) == 1
    assert pacer.due(0.001) == 2
    assert pacer.due(0.5) == 501
    assert pacer.at(0) == 0.0
    assert pacer.at(10) == pytest.approx(0.01)
    assert pacer.end(10) == pytest.approx(0.01)  # the 10th's slot ends when the 11th is due


def test_a_late_wake_up_catches_up() -> None:
    # Woken 20 ms late at 100k/s, 2,000 more are due at once: the rate does not drift.
    pacer = Pacer(100_000, 1, 0.0)
    assert pacer.due(0.020) == 2001
    assert pacer.due(1.0) == pytest.approx(100_001, abs=1)


def test_bursts() -> None:
    pacer = Pacer(10, 5, 100.0)
    assert pacer.due(100.0) == 5
    assert pacer.due(100.49) == 5
    assert pacer.due(100.5) == 10
    assert pacer.at(4) == 100.0
    assert pacer.at(5) == pytest.approx(100.5)
    assert pacer.end(5) == pytest.approx(100.5)
    assert pacer.end(6) == pytest.approx(101.0)  # a burst cut short still takes its slot


def test_before_the_start_nothing_is_due() -> None:
    assert Pacer(10, 1, 5.0).due(4.0) == 0


@pytest.mark.parametrize(
    ("rate", "burst", "named"),
    [
        (-1.0, 1, "rate -1.0"),
        (float("nan"), 1, "rate nan"),
        (float("inf"), 1, "rate inf"),
        (10.0, 0, "burst 0"),
        (10.0, True, "burst True"),
    ],
)
def test_pacer_refuses_bad_values(rate: float, burst: int, named: str) -> None:
    with pytest.raises(InvalidArgumentError, match=named):
        Pacer(rate, burst, 0.0)
