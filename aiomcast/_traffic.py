"""What ``aiomcast send`` sends, and when: test payloads built a batch at a time, and pacing.

Both are pure (no sockets, no event loop), so the schedule and the bytes are tested on their
own. ``Payloads`` builds a batch with one ``struct`` call per datagram and, for timestamped
payloads, one clock read per batch (datagrams of one batch leave within microseconds of each
other). ``Pacer`` is a schedule, not a sleep loop: datagram ``n`` is due at
``start + n / rate`` (rounded down to whole bursts), so a late wake-up sends everything that
fell due meanwhile and the achieved rate does not drift with the timer's granularity.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable

from ._errors import InvalidArgumentError
from ._sequence import (
    IPERF2_HEADER,
    MARKER,
    SEQUENCE_HEADER,
    TIMESTAMP_HEADER,
    TIMESTAMPED,
    pack_iperf2,
)

__all__ = ["Pacer", "Payloads"]

#: The marker and a flags byte of 0, as the 32-bit word that follows the sequence number.
_MARKER_WORD = int.from_bytes(MARKER, "big") << 8


class Payloads:
    """Builds the payloads of ``aiomcast send``: ``make(first, count)`` returns a batch.

    ``kind`` is ``"aiomcast"`` (sequence number and marker, see ``pack_sequence``),
    ``"timestamped"`` (the same with the send time, see ``pack_timestamped``), ``"iperf2"``
    (iperf2's UDP header, numbered from 1) or ``"message"`` (``message`` every time).
    """

    def __init__(self, kind: str, size: int, message: bytes = b"") -> None:
        self.kind = kind
        self.size = size if kind != "message" else len(message)
        self._message = message
        self._make: Callable[[int, int], list[bytes]]
        if kind == "message":
            self._make = lambda first, count: [message] * count
        elif kind == "aiomcast":
            self._make = self._sequenced(size)
        elif kind == "timestamped":
            if size < TIMESTAMP_HEADER.size:
                raise InvalidArgumentError(
                    f"size {size} is too small for a timestamped payload: its header takes "
                    f"{TIMESTAMP_HEADER.size} bytes",
                    value=size,
                )
            pack = struct.Struct(f">QIQ{size - TIMESTAMP_HEADER.size}x").pack
            word = _MARKER_WORD | TIMESTAMPED

            def timestamped(first: int, count: int) -> list[bytes]:
                now = time.time_ns()
                return [pack(n, word, now) for n in range(first, first + count)]

            self._make = timestamped
        elif kind == "iperf2":
            if size < IPERF2_HEADER.size:
                raise InvalidArgumentError(
                    f"size {size} is too small for iperf2's {IPERF2_HEADER.size}-byte header",
                    value=size,
                )

            def iperf2(first: int, count: int) -> list[bytes]:
                now = time.time()
                # iperf2 numbers from 1 and its 32-bit number must stay positive.
                return [
                    pack_iperf2((n % (2**31 - 1)) + 1, size, now)
                    for n in range(first, first + count)
                ]

            self._make = iperf2
        else:
            raise InvalidArgumentError(f"unknown payload kind {kind!r}", value=kind)

    @staticmethod
    def _sequenced(size: int) -> Callable[[int, int], list[bytes]]:
        if size < SEQUENCE_HEADER.size:
            raise InvalidArgumentError(
                f"size {size} is too small for the {SEQUENCE_HEADER.size}-byte sequence number",
                value=size,
            )
        if size < SEQUENCE_HEADER.size + 4:  # no room for the marker
            short = struct.Struct(f">Q{size - SEQUENCE_HEADER.size}x").pack
            return lambda first, count: [short(n) for n in range(first, first + count)]
        pack = struct.Struct(f">QI{size - SEQUENCE_HEADER.size - 4}x").pack
        return lambda first, count: [pack(n, _MARKER_WORD) for n in range(first, first + count)]

    def make(self, first: int, count: int) -> list[bytes]:
        """The payloads of datagrams ``first`` to ``first + count - 1`` (numbered from 0).

        A send numbers its datagrams from 0, so the 64-bit numbers never wrap: at a billion
        datagrams a second that would take 584 years.
        """
        return self._make(first, count)


class Pacer:
    """The send schedule at ``rate`` datagrams per second in bursts of ``burst``.

    Burst ``k`` (datagrams ``k * burst`` on) is due ``k * burst / rate`` seconds after
    ``start``. A rate of 0 means no pacing: everything is always due.
    """

    def __init__(self, rate: float, burst: int, start: float) -> None:
        if not (rate >= 0 and math.isfinite(rate)):
            raise InvalidArgumentError(
                f"rate {rate} must be a finite number, 0 or more", value=rate
            )
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise InvalidArgumentError(
                f"burst {burst!r} must be a whole number, 1 or more", value=burst
            )
        self.rate = rate
        self.burst = burst
        self.start = start

    def due(self, now: float) -> int | None:
        """How many datagrams are due by ``now`` in all (None: no pacing, all of them)."""
        if self.rate == 0:
            return None
        bursts = math.floor((now - self.start) * self.rate / self.burst) + 1
        return max(0, bursts) * self.burst

    def at(self, number: int) -> float:
        """When datagram ``number`` (counted from 0) falls due: its burst's start time."""
        if self.rate == 0:
            return self.start
        return self.start + (number // self.burst) * self.burst / self.rate

    def end(self, sent: int) -> float:
        """When the burst after the first ``sent`` datagrams falls due: the end of their slot."""
        if self.rate == 0:
            return self.start
        return self.at(-(-sent // self.burst) * self.burst)
