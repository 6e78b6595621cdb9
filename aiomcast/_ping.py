# Design: `aiomcast ping`, in the spirit of omping and ssmping. Every host runs the same
# command on one group and port. Each answers every query it gets: by unicast to the querier
# (Endpoint.send_to, from the port the query went to) and to the group (Endpoint.send). A
# host given peers also queries them, by unicast, once per interval, and counts per peer
# what came back each way: loss, round trip (on the querier's own clock, so no shared clock
# is needed), duplicates and the TTL that arrived (IP_RECVTTL / IPV6_RECVHOPLIMIT). A query
# and its answers carry the querier's random id, its number, its send time and the address
# it was sent to, echoed back: a querier tells its own answers from everyone else's on the
# group, and a peer behind NAT or with several addresses is still the peer it asked.
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import struct
import sys
import time
from typing import Any, Final

from ._address import Family, Group, max_payload, validate_port, validate_ttl
from ._console import emit_json, on_stop
from ._errors import InvalidArgumentError, KernelError
from ._interfaces import resolve_interface
from ._metadata import Metadata
from ._open import open_endpoint
from ._send import unicast_address

__all__ = ["ANSWER_GROUP", "ANSWER_UNICAST", "QUERY", "Message", "PeerStats", "Way"]

MAGIC: Final = b"amcping"
VERSION: Final = 1
QUERY: Final = 0x51  # "Q"
ANSWER_UNICAST: Final = 0x55  # "U"
ANSWER_GROUP: Final = 0x4D  # "M"
KINDS: Final = frozenset({QUERY, ANSWER_UNICAST, ANSWER_GROUP})
#: magic, version, kind, querier id, number, send time (ns, querier's clock), peer's length.
HEADER: Final = struct.Struct(">7sBB8sIQB")
#: The longest peer address a message carries (an IPv6 address with a zone fits).
MAX_PEER_TEXT: Final = 64
#: The number of the uncounted probes that find out whether a peer runs yet.
PROBE: Final = 0xFFFFFFFF
#: Seconds between probes while waiting for peers.
_PROBE_INTERVAL: Final = 0.1


@dataclasses.dataclass(frozen=True)
class Message:
    """One ping message: a query, or an answer that echoes it."""

    kind: int
    querier: bytes
    number: int
    sent_ns: int
    peer: str

    def pack(self, size: int = 0) -> bytes:
        """The message's bytes, padded with zeros to ``size`` if that is longer."""
        peer = self.peer.encode("ascii")
        data = HEADER.pack(
            MAGIC, VERSION, self.kind, self.querier, self.number, self.sent_ns, len(peer)
        )
        data += peer
        return data + bytes(max(0, size - len(data)))

    def answer(self, kind: int) -> Message:
        """The answer to this query, by unicast or to the group."""
        return dataclasses.replace(self, kind=kind)

    @staticmethod
    def unpack(payload: bytes) -> Message | None:
        """The message in ``payload``, or None if it is not one (any other traffic)."""
        if len(payload) < HEADER.size or not payload.startswith(MAGIC):
            return None
        _, version, kind, querier, number, sent_ns, length = HEADER.unpack_from(payload)
        if version != VERSION or kind not in KINDS or len(payload) < HEADER.size + length:
            return None
        try:
            peer = payload[HEADER.size : HEADER.size + length].decode("ascii")
        except UnicodeDecodeError:
            return None
        return Message(kind, querier, number, sent_ns, peer)


def new_querier_id() -> bytes:
    """A random id for this querier: its answers are told from other queriers' by it."""
    return os.urandom(8)


def smallest_size(peer: str) -> int:
    """The size of a query to ``peer`` without padding."""
    return HEADER.size + len(peer.encode("ascii"))


@dataclasses.dataclass
class Way:
    """What came back one way (unicast or through the group) for one peer."""

    received: int = 0
    duplicates: int = 0
    ttl: int | None = None
    seen: set[int] = dataclasses.field(default_factory=set)
    # Running round-trip statistics (Welford), in ms.
    rtt_min: float = math.inf
    rtt_max: float = 0.0
    _mean: float = 0.0
    _m2: float = 0.0

    def add(self, number: int, rtt_ms: float, ttl: int | None) -> bool:
        """Count an answer to query ``number``; False if it is a duplicate."""
        if number in self.seen:
            self.duplicates += 1
            return False
        self.seen.add(number)
        self.received += 1
        if ttl is not None:
            self.ttl = ttl
        self.rtt_min = min(self.rtt_min, rtt_ms)
        self.rtt_max = max(self.rtt_max, rtt_ms)
        delta = rtt_ms - self._mean
        self._mean += delta / self.received
        self._m2 += delta * (rtt_ms - self._mean)
        return True

    def report(self, sent: int) -> dict[str, Any]:
        """Loss and round trip of this way, as ``--json`` prints them."""
        got = self.received
        return {
            "sent": sent,
            "received": got,
            "loss_pct": round(100.0 * (sent - got) / sent, 1) if sent else None,
            "rtt_ms": None
            if not got
            else {
                "min": round(self.rtt_min, 3),
                "avg": round(self._mean, 3),
                "max": round(self.rtt_max, 3),
                "stddev": round(math.sqrt(self._m2 / got), 3),
            },
            "duplicates": self.duplicates,
            "ttl": self.ttl,
        }


@dataclasses.dataclass
class PeerStats:
    """One peer's counts: the queries sent to it and its answers each way."""

    sent: int = 0
    unicast: Way = dataclasses.field(default_factory=Way)
    multicast: Way = dataclasses.field(default_factory=Way)

    def report(self) -> dict[str, Any]:
        """Both ways, as ``--json`` prints them."""
        return {
            "unicast": self.unicast.report(self.sent),
            "multicast": self.multicast.report(self.sent),
        }


def summary_line(peer: str, way_name: str, report: dict[str, Any]) -> str:
    """Omping's summary line for one peer and way."""
    rtt = report["rtt_ms"]
    times = (
        "min/avg/max/std-dev = -"
        if rtt is None
        else f"min/avg/max/std-dev = {rtt['min']:.3f}/{rtt['avg']:.3f}/{rtt['max']:.3f}/"
        f"{rtt['stddev']:.3f} ms"
    )
    loss = "-" if report["loss_pct"] is None else f"{report['loss_pct']:g}%"
    ttl = "-" if report["ttl"] is None else str(report["ttl"])
    return (
        f"{peer} : {way_name:>9}, xmt/rcv/%loss = {report['sent']}/{report['received']}/{loss}, "
        f"{times}, duplicates {report['duplicates']}, ttl {ttl}"
    )


def check_peer(text: str, family: Family) -> str:
    """A peer's address as given: a unicast address of ``family``, an IPv6 one maybe zoned.

    The checks are Endpoint.send_to's, made before the command opens anything.

    Raises:
        InvalidArgumentError: it is not such an address (its zone names no interface, or it is
            a group), or it is longer than a message carries.
    """
    if len(text) > MAX_PEER_TEXT:
        raise InvalidArgumentError(f"peer {text!r} is too long", value=text)
    try:
        unicast_address(text, 1, family, lambda zone: resolve_interface(zone, family).index)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"peer {exc}", value=text) from None
    return text


async def run_ping(args: Any) -> int:
    """The ``aiomcast ping`` command.

    Exit status 0 when every peer answered at least once each way (unicast and through the
    group), 1 otherwise; a responder without peers exits 0 when stopped.
    """
    group = Group(args.group)
    port = validate_port(args.port, allow_zero=False)
    ttl = validate_ttl(args.ttl)
    peers = list(dict.fromkeys(check_peer(text, group.family) for text in args.peers))
    limit = max_payload(group.family)
    if args.size > limit:
        raise InvalidArgumentError(
            f"--size {args.size} exceeds the {group.family.label} UDP limit of {limit}",
            value=args.size,
        )
    iface = resolve_interface(args.interface, group.family) if args.interface else None
    me = new_querier_id()
    stats = {peer: PeerStats() for peer in peers}
    errors: dict[str, int] = {}
    answered: dict[str, int] = {}
    up: set[str] = set()
    stopped = asyncio.Event()
    on_stop(stopped.set)

    async with open_endpoint(group, port, interface=iface, ttl=ttl, metadata=Metadata.TTL) as ep:
        where = ep.interface.name if ep.interface is not None else "the default interface"
        print(f"joined {group} on {where}", file=sys.stderr, flush=True)

        def zoned(source: str) -> str:
            if ep.interface is not None and source.startswith("fe80:") and "%" not in source:
                return f"{source}%{ep.interface.name}"
            return source

        async def answer(message: Message, source: str, source_port: int) -> None:
            try:
                await ep.send_to(
                    message.answer(ANSWER_UNICAST).pack(args.size), zoned(source), source_port
                )
                await ep.send(message.answer(ANSWER_GROUP).pack(args.size))
            except KernelError:
                errors[source] = errors.get(source, 0) + 1
                return
            if message.number != PROBE:
                answered[source] = answered.get(source, 0) + 1

        async def read() -> None:
            async for batch in ep.batches():
                now = time.monotonic_ns()
                for datagram in batch:
                    message = Message.unpack(datagram.payload)
                    if message is None:
                        continue
                    if message.kind == QUERY:
                        await answer(message, datagram.source, datagram.source_port)
                        continue
                    peer = stats.get(message.peer)
                    if message.querier != me or peer is None:
                        continue  # another querier's answers, on the group
                    if message.number == PROBE:
                        up.add(message.peer)  # it runs: the counted queries may start
                        continue
                    unicast = message.kind == ANSWER_UNICAST
                    way = peer.unicast if unicast else peer.multicast
                    rtt = (now - message.sent_ns) / 1e6
                    if way.add(message.number, rtt, datagram.ttl) and not args.json:
                        kind = "unicast" if unicast else "multicast"
                        print(
                            f"{message.peer} : {kind:>9}, seq={message.number + 1}, "
                            f"size={len(datagram.payload)} bytes, time={rtt:.3f} ms, "
                            f"ttl={'-' if datagram.ttl is None else datagram.ttl}",
                            flush=True,
                        )

        async def send_query(message: Message) -> None:
            try:
                await ep.send_to(message.pack(args.size), message.peer, port)
            except KernelError as exc:
                errors[message.peer] = errors.get(message.peer, 0) + 1
                if errors[message.peer] == 1:
                    print(f"{message.peer} : query failed: {exc}", file=sys.stderr, flush=True)

        async def wait_for_peers() -> None:
            # As omping does: probe (uncounted) until every peer answered once, so that a
            # peer started a moment later does not count as loss; at most --wait-for-peers.
            deadline = time.monotonic() + args.wait_for_peers
            while not stopped.is_set() and time.monotonic() < deadline:
                missing = [peer for peer in peers if peer not in up]
                if not missing:
                    return
                for peer in missing:
                    await send_query(Message(QUERY, me, PROBE, time.monotonic_ns(), peer))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopped.wait(), _PROBE_INTERVAL)
            for peer in peers:
                if peer not in up:
                    print(
                        f"{peer} : no answer within {args.wait_for_peers:g} s; querying anyway",
                        file=sys.stderr,
                        flush=True,
                    )

        async def query() -> None:
            if args.wait_for_peers:
                await wait_for_peers()
            number = 0
            started = time.monotonic()
            while not args.count or number < args.count:
                for peer in peers:
                    stats[peer].sent += 1
                    number_sent = number % PROBE  # PROBE itself is never a counted number
                    await send_query(Message(QUERY, me, number_sent, time.monotonic_ns(), peer))
                number += 1
                due = started + number * args.interval
                if args.count and number >= args.count:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopped.wait(), max(0.0, due - time.monotonic()))
                    return
            # The last answers may still be on their way.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), args.wait)

        async def until_done() -> None:
            if peers:
                await query()
            else:
                await stopped.wait()

        reader = asyncio.ensure_future(read())
        waiting = asyncio.ensure_future(until_done())
        try:
            await asyncio.wait(
                {waiting, reader}, timeout=args.duration, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (waiting, reader):
                task.cancel()
            for task in (waiting, reader):
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # a failure of the reader is the command's
    if not peers:
        total = sum(answered.values())
        print(
            f"answered {total} quer{'y' if total == 1 else 'ies'} from {len(answered)} "
            f"querier{'' if len(answered) == 1 else 's'}",
            file=sys.stderr,
        )
        return 0
    reports = {peer: s.report() for peer, s in stats.items()}
    for peer in peers:
        reports[peer]["errors"] = errors.get(peer, 0)
    if args.json:
        emit_json({"group": str(group), "port": port, "peers": reports})
    else:
        for peer in peers:
            print(summary_line(peer, "unicast", reports[peer]["unicast"]))
            print(summary_line(peer, "multicast", reports[peer]["multicast"]))
    both = all(r["unicast"]["received"] and r["multicast"]["received"] for r in reports.values())
    return 0 if both else 1
