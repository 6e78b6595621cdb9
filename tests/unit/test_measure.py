"""aiomcast/_measure.py from tables: what ``aiomcast listen --stats`` and ``--interval`` count."""

from __future__ import annotations

import random
import struct
from typing import NamedTuple

import pytest

from aiomcast import pack_sequence
from aiomcast._measure import Histogram, Measurement
from aiomcast._sequence import pack_iperf2, pack_timestamped


class D(NamedTuple):
    payload: bytes
    source: str = "10.0.0.1"
    source_port: int = 5000


NOW = 1_700_000_000_000_000_000  # a receive time, ns since the epoch


# -- the histogram -----------------------------------------------------------------------------


def test_small_values_have_a_bucket_each() -> None:
    h = Histogram()
    for value in range(8):
        h.add(value)
    assert h.buckets() == [(value, 1) for value in range(8)]
    assert h.percentile(0.5) == 3
    assert h.percentile(1.0) == 7


@pytest.mark.parametrize("value", [8, 9, 15, 16, 100, 1000, 123_456, 10**9, 2**40 + 17])
def test_a_value_falls_in_a_bucket_within_an_eighth(value: int) -> None:
    h = Histogram()
    h.add(value)
    ((top, count),) = h.buckets()
    assert count == 1
    assert value <= top < value * 1.125 + 1
    assert h.percentile(0.99) == value  # never above the largest seen


def test_bucket_tops_rise_and_tile_the_numbers() -> None:
    bucket = Histogram._bucket
    tops = [Histogram.upper(b) for b in range(200)]
    assert tops == sorted(tops)
    for value in range(5000):
        b = bucket(value)
        assert value <= Histogram.upper(b)
        assert b == 0 or value > Histogram.upper(b - 1)


def test_percentiles_of_a_uniform_spread() -> None:
    h = Histogram()
    for value in range(1, 10_001):
        h.add(value * 1000)  # 1 µs to 10 ms
    assert h.total == 10_000
    for fraction in (0.5, 0.9, 0.99, 0.999):
        exact = fraction * 10_000 * 1000
        read = h.percentile(fraction)
        assert read is not None
        assert exact <= read <= exact * 1.125
    assert h.largest == 10_000_000
    assert sum(count for _, count in h.buckets()) == 10_000
    assert len(h.buckets()) < 120  # bounded: log-linear, not one per value


def test_negative_latency_is_counted_apart() -> None:
    h = Histogram()
    h.add(-5)
    h.add(10)
    assert (h.below_zero, h.total) == (1, 1)
    assert h.percentile(0.5) == 10


def test_an_empty_histogram_has_no_percentile() -> None:
    assert Histogram().percentile(0.5) is None


# -- counting ----------------------------------------------------------------------------------


def test_aiomcast_payloads_in_order() -> None:
    m = Measurement()
    m.add([D(pack_sequence(n, 64)) for n in range(100)], NOW)
    totals = m.totals()
    assert totals["received"] == 100
    assert totals["bytes"] == 6400
    assert (totals["gaps"], totals["duplicates"], totals["reordered"]) == (0, 0, 0)
    assert (totals["unnumbered"], totals["senders"]) == (0, 1)
    assert totals["jitter_ms"] is None
    assert "latency" not in totals


def test_a_lost_datagram_and_a_duplicate() -> None:
    m = Measurement()
    numbers = [0, 1, 2, 4, 4, 5]
    m.add([D(pack_sequence(n, 32)) for n in numbers], NOW)
    totals = m.totals()
    assert (totals["received"], totals["gaps"], totals["duplicates"]) == (6, 1, 1)


def test_senders_are_separate_flows() -> None:
    m = Measurement()
    a = [D(pack_sequence(n, 16), "10.0.0.1", 1) for n in range(10)]
    b = [D(pack_sequence(n, 16), "10.0.0.2", 1) for n in range(1000, 1010)]
    c = [D(pack_sequence(n, 16), "10.0.0.1", 2) for n in range(5)]
    m.add(a + b + c, NOW)
    totals = m.totals()
    assert totals["senders"] == 3
    assert totals["gaps"] == 0  # no sender reads as another's loss


def test_foreign_payloads_are_unnumbered_in_auto() -> None:
    rng = random.Random(7)
    m = Measurement("auto")
    foreign = [D(rng.randbytes(64)) for _ in range(500)]
    counter_high = [D(struct.pack(">Q", n << 32) + bytes(56)) for n in range(500)]
    short = [D(b"hi")]
    m.add(foreign + counter_high + short, NOW)
    totals = m.totals()
    assert totals["received"] == 1001
    assert totals["bytes"] == 1000 * 64 + 2
    assert totals["gaps"] == 0
    assert totals["unnumbered"] == 1001
    assert totals["senders"] == 0


def test_counter_in_the_high_bits_read_as_aiomcast_counts_what_lies_between() -> None:
    # Asked to read any payload's first 8 bytes (--format aiomcast), a counter in the high
    # 32 bits jumps by 2**32 per datagram: the numbers between are missing, and counted so,
    # at O(1) per datagram; --format auto counts such payloads as unnumbered instead.
    m = Measurement("aiomcast")
    m.add([D(struct.pack(">Q", n << 32) + bytes(56)) for n in range(2000)], NOW)
    totals = m.totals()
    assert totals["received"] == 2000
    assert totals["gaps"] == 1999 * (2**32 - 1)
    assert totals["unnumbered"] == 0


def test_iperf2_payloads_in_auto() -> None:
    m = Measurement("auto")
    now = NOW / 1e9
    stream = [D(pack_iperf2(n, 100, now - 0.001)) for n in range(1, 51)]
    stream.append(D(pack_iperf2(51, 100, now, final=True)))
    m.add(stream, NOW)
    totals = m.totals()
    assert totals["received"] == 51
    assert totals["gaps"] == 0
    assert totals["final"] == 1
    assert totals["unnumbered"] == 0
    assert totals["latency"]["count"] == 50


def test_timestamps_give_latency_and_jitter() -> None:
    m = Measurement()
    # Send times 1 ms apart, transit 100 µs then 300 µs alternately: RFC 3550 jitter of a
    # steady 200 µs difference converges towards 200 µs.
    for n in range(400):
        transit = 100_000 if n % 2 else 300_000
        sent = NOW + n * 1_000_000
        m.add([D(pack_timestamped(n, 64, sent))], sent + transit)
    totals = m.totals()
    latency = totals["latency"]
    assert latency["count"] == 400
    assert 100 <= latency["p50_us"] <= 300 * 1.125
    assert latency["max_us"] == 300.0
    assert totals["jitter_ms"] == pytest.approx(0.2, rel=0.05)


def test_max_flows_bounds_memory() -> None:
    m = Measurement(max_flows=3)
    m.add([D(pack_sequence(0, 16), f"10.0.0.{i}") for i in range(10)], NOW)
    totals = m.totals()
    assert totals["senders"] == 3
    assert totals["unnumbered"] == 7
    assert totals["received"] == 10


def test_aiomcast_format_takes_any_eight_bytes() -> None:
    m = Measurement("aiomcast")
    m.add([D(struct.pack(">Q", n) + b"xyz") for n in range(5)] + [D(b"short")], NOW)
    totals = m.totals()
    assert (totals["received"], totals["gaps"], totals["unnumbered"]) == (6, 0, 1)


# -- intervals ---------------------------------------------------------------------------------


def test_intervals_report_what_arrived_since_the_last() -> None:
    m = Measurement()
    start = m.started
    m.add([D(pack_sequence(n, 100)) for n in range(10)], NOW)
    first = m.interval(start + 1.0)
    assert (first["start"], first["end"]) == (0.0, 1.0)
    assert (first["datagrams"], first["bytes"], first["lost"]) == (10, 1000, 0)
    assert first["mbps"] == 0.008
    assert m.unreported == 0
    m.add([D(pack_sequence(n, 100)) for n in (12, 11, 13, 13)], NOW)
    assert m.unreported == 4
    second = m.interval(start + 2.0)
    assert (second["start"], second["end"]) == (1.0, 2.0)
    assert second["datagrams"] == 4
    assert second["lost"] == 1  # 10 never came
    assert second["out_of_order"] == 1  # 11 after 12
    assert second["duplicates"] == 1
    third = m.interval(start + 3.0)
    assert (third["datagrams"], third["bytes"], third["lost"]) == (0, 0, 0)
