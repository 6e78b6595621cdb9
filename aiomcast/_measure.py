# Design: what `aiomcast listen` measures, apart from the command line so that it is tested
# from tables. Each datagram is read in the format asked:
#   - "auto" takes aiomcast's marked test payloads (pack_sequence, `send --size`) and
#     datagrams that look like iperf2's;
#   - "aiomcast" takes the number at the start of anything of 8 bytes or more;
#   - "iperf2" takes iperf2's header wherever it fits.
# Whatever is not read is unnumbered: counted, and never part of the loss figures. Numbered
# datagrams go to the SequenceTracker of their flow (sender address and port), so that two
# senders do not read as each other's loss. Send times (iperf2's header, aiomcast's with
# `send --timestamps`) give each flow's RFC 3550 interarrival jitter and, where sender and
# receiver share a clock, one-way latency in a log-linear histogram (8 buckets per power of
# two: a percentile is read to within 12.5 %). Each datagram costs O(1); memory is bounded
# by the flows kept (`max_flows`; datagrams of further flows are counted as unnumbered).
from __future__ import annotations

import dataclasses
import struct
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal

from ._sequence import MARKER, TIMESTAMP_HEADER, TIMESTAMPED, SequenceTracker, read_iperf2

__all__ = ["FORMATS", "Histogram", "Measurement"]

#: The first 12 bytes of a payload: its number, then the marker and flags as one word.
_MARKED_HEAD: Final = struct.Struct(">QI")
#: The word's top 24 bits on a marked payload.
_MARKED_WORD: Final = int.from_bytes(MARKER, "big")
#: A 64-bit big-endian word: the number of an unmarked payload, the send time of a marked one.
_WORD64: Final = struct.Struct(">Q")

#: The formats `listen --format` reads.
FORMATS: Final = ("auto", "aiomcast", "iperf2")
Format = Literal["auto", "aiomcast", "iperf2"]


class Histogram:
    """Latencies in nanoseconds, kept as counts in log-linear buckets (bounded memory)."""

    SUB: Final = 8  # buckets per power of two

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.largest = 0
        self.below_zero = 0  # clocks that disagree: the receiver's is behind the sender's

    def add(self, value: int) -> None:
        """Count one latency of ``value`` ns (a negative one only in ``below_zero``)."""
        self.add_many((value,))

    def add_many(self, values: Sequence[int]) -> None:
        """Count latencies in ns; negative ones only in ``below_zero``."""
        counts, bucket_of = self.counts, self._bucket
        largest, total = self.largest, self.total
        for value in values:
            if value < 0:
                self.below_zero += 1
                continue
            bucket = bucket_of(value)
            counts[bucket] = counts.get(bucket, 0) + 1
            total += 1
            if value > largest:
                largest = value
        self.largest, self.total = largest, total

    @classmethod
    def _bucket(cls, value: int) -> int:
        if value < cls.SUB:
            return value
        shift = value.bit_length() - 4  # keep the top 4 bits: 8 sub-buckets per power of two
        return (shift + 1) * cls.SUB + ((value >> shift) - cls.SUB)

    @classmethod
    def upper(cls, bucket: int) -> int:
        """The largest value that falls into ``bucket``."""
        if bucket < cls.SUB:
            return bucket
        shift = bucket // cls.SUB - 1
        return ((bucket % cls.SUB + cls.SUB + 1) << shift) - 1

    def percentile(self, fraction: float) -> int | None:
        """The value at or below which ``fraction`` of the latencies fall (a bucket's top)."""
        if not self.total:
            return None
        wanted = fraction * self.total
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= wanted:
                return min(self.upper(bucket), self.largest)
        return self.largest

    def buckets(self) -> list[tuple[int, int]]:
        """(bucket's largest value in ns, count), ascending."""
        return [(self.upper(b), self.counts[b]) for b in sorted(self.counts)]


@dataclasses.dataclass
class Flow:
    """One sender's numbered datagrams."""

    tracker: SequenceTracker = dataclasses.field(default_factory=SequenceTracker)
    transit: int | None = None  # receive minus send time of the last datagram, ns
    jitter: float = 0.0  # RFC 3550 interarrival jitter, ns
    finals: int = 0


@dataclasses.dataclass
class _Mark:
    """The counters at the start of an interval."""

    at: float
    datagrams: int = 0
    bytes: int = 0
    gaps: int = 0
    reordered: int = 0
    duplicates: int = 0
    unnumbered: int = 0


class Measurement:
    """Counts of a stream of received datagrams, overall and per interval."""

    def __init__(self, fmt: Format = "auto", *, max_flows: int = 1024) -> None:
        self.format = fmt
        self.max_flows = max_flows
        self.flows: dict[tuple[str, int], Flow] = {}
        self.datagrams = 0
        self.bytes = 0
        self.unnumbered = 0
        self.latency = Histogram()
        self.started = time.monotonic()
        self._mark = _Mark(self.started)

    def add(self, datagrams: Iterable[Any], received_ns: int) -> None:
        """Account for ``datagrams``, all received at ``received_ns`` (ns since the epoch).

        Each is Datagram-like: it has ``payload``, ``source`` and ``source_port``. The
        numbers of consecutive datagrams of one flow go to its tracker together
        (``SequenceTracker.add_many``), and one header read (``struct``) serves the test
        for aiomcast's marker, the number and the flags: this runs for every datagram that
        ``aiomcast listen --stats`` reads.
        """
        fmt = self.format
        forced = fmt == "aiomcast"
        headers = fmt != "iperf2"  # read aiomcast's header first
        head, marked_word = _MARKED_HEAD.unpack_from, _MARKED_WORD
        word64 = _WORD64.unpack_from
        now = received_ns / 1e9
        count = size = unnumbered = 0
        flow: Flow | None = None
        last_source: object = None
        last_port: object = None
        numbers: list[int] = []
        transits: list[int] = []
        for datagram in datagrams:
            payload = datagram.payload
            length = len(payload)
            count += 1
            size += length
            sequence: int | None = None
            send_ns: int | None = None
            final = False
            if length >= 12 and headers:
                sequence, word = head(payload)
                if word >> 8 == marked_word:
                    if word & TIMESTAMPED and length >= TIMESTAMP_HEADER.size:
                        (send_ns,) = word64(payload, 12)
                elif not forced:
                    sequence = None
            elif forced and length >= 8:
                (sequence,) = word64(payload)
            if sequence is None and not forced:
                parsed = read_iperf2(payload, now)
                if parsed is not None:
                    sequence, send_ns, final = parsed
            if sequence is None and not final:
                unnumbered += 1
                continue
            source, port = datagram.source, datagram.source_port
            if flow is None or source != last_source or port != last_port:
                if flow is not None:
                    self._flush(flow, numbers, transits)
                    numbers, transits = [], []
                last_source, last_port = source, port
                flow = self._flow(source, port)
            if flow is None:  # past max_flows
                unnumbered += 1
                continue
            if final:
                flow.finals += 1
                continue
            numbers.append(sequence)  # type: ignore[arg-type]  # set unless final
            if send_ns is not None:
                transits.append(received_ns - send_ns)
        if flow is not None:
            self._flush(flow, numbers, transits)
        self.datagrams += count
        self.bytes += size
        self.unnumbered += unnumbered

    def _flow(self, source: str, port: int) -> Flow | None:
        """The flow of (source, port), made on first use; None past ``max_flows``."""
        key = (source, port)
        flow = self.flows.get(key)
        if flow is None and len(self.flows) < self.max_flows:
            flow = self.flows[key] = Flow()
        return flow

    def _flush(self, flow: Flow, numbers: list[int], transits: list[int]) -> None:
        """Give a flow the numbers and transit times of a run of its datagrams."""
        if numbers:
            flow.tracker.add_many(numbers)
        if transits:
            self.latency.add_many(transits)
            previous, jitter = flow.transit, flow.jitter
            for transit in transits:
                if previous is not None:
                    jitter += (abs(transit - previous) - jitter) / 16
                previous = transit
            flow.transit, flow.jitter = previous, jitter

    def _sum(self, name: str) -> int:
        return sum(getattr(flow.tracker, name) for flow in self.flows.values())

    @property
    def jitter_ms(self) -> float | None:
        """The largest flow's RFC 3550 jitter in ms, or None without send times."""
        timed = [flow.jitter for flow in self.flows.values() if flow.transit is not None]
        return round(max(timed) / 1e6, 3) if timed else None

    def totals(self) -> dict[str, Any]:
        """Everything counted since the start."""
        report: dict[str, Any] = {
            "received": self.datagrams,
            "bytes": self.bytes,
            "unnumbered": self.unnumbered,
            "senders": len(self.flows),
            "gaps": self._sum("gaps"),
            "duplicates": self._sum("duplicates"),
            "reordered": self._sum("reordered"),
            "late": self._sum("late"),
            "jitter_ms": self.jitter_ms,
        }
        finals = sum(flow.finals for flow in self.flows.values())
        if finals:
            report["final"] = finals
        if self.latency.total or self.latency.below_zero:
            report["latency"] = self.latency_report()
        return report

    def latency_report(self) -> dict[str, Any]:
        """One-way latency: percentiles and the largest in µs, the histogram's buckets."""
        histogram = self.latency

        def us(value: int | None) -> float | None:
            return None if value is None else round(value / 1000, 1)

        return {
            "count": histogram.total,
            "p50_us": us(histogram.percentile(0.5)),
            "p90_us": us(histogram.percentile(0.9)),
            "p99_us": us(histogram.percentile(0.99)),
            "p99.9_us": us(histogram.percentile(0.999)),
            "max_us": us(histogram.largest if histogram.total else None),
            "negative": histogram.below_zero,
            "histogram_us": [[us(top), count] for top, count in histogram.buckets()],
        }

    @property
    def unreported(self) -> int:
        """Datagrams since the last interval report."""
        return self.datagrams - self._mark.datagrams

    def interval(self, now: float | None = None) -> dict[str, Any]:
        """What arrived since the last call (or the start): the iperf2-style interval line."""
        now = time.monotonic() if now is None else now
        mark = self._mark
        gaps, reordered = self._sum("gaps"), self._sum("reordered")
        duplicates = self._sum("duplicates")
        seconds = max(now - mark.at, 1e-9)
        report = {
            "start": round(mark.at - self.started, 3),
            "end": round(now - self.started, 3),
            "datagrams": self.datagrams - mark.datagrams,
            "bytes": self.bytes - mark.bytes,
            "mbps": round((self.bytes - mark.bytes) * 8 / seconds / 1e6, 3),
            "lost": gaps - mark.gaps,
            "out_of_order": reordered - mark.reordered,
            "duplicates": duplicates - mark.duplicates,
            "unnumbered": self.unnumbered - mark.unnumbered,
            "jitter_ms": self.jitter_ms,
        }
        self._mark = _Mark(
            now, self.datagrams, self.bytes, gaps, reordered, duplicates, self.unnumbered
        )
        return report
