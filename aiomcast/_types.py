# Design: the plain data of the package, in a leaf module that imports nothing else of it at
# run time (the annotations of Membership name types of _address and _interfaces): what a
# receiver hands out (Datagram), counts (Counters, Stats) and holds (Membership), and the
# overflow policy of its queue. Every other module may import these; they import no module
# back, so they never close an import circle.
from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from ._address import Group
    from ._interfaces import Interface

__all__ = ["Counters", "Datagram", "Membership", "Overflow", "Stats"]


class Datagram(NamedTuple):
    """One received datagram.

    The metadata fields are filled in when the receiver asked for them
    (``open_receiver(..., metadata=...)``, see Metadata) and are None otherwise.

    Attributes:
        payload: the UDP payload (cut to the receiver's ``max_size`` when ``truncated``).
        source: the sender's address (IPv6 link-local sources carry no zone here).
        source_port: the sender's UDP port.
        group: the destination address of the datagram: the group it was sent to.
        interface: the name of the interface it arrived on.
        ttl: the TTL / hop limit it arrived with.
        timestamp_ns: when the kernel received it, nanoseconds since the epoch.
        kernel_drops: the socket's count of datagrams the kernel dropped (receive buffer
            full) up to when this one was queued; a rise between two datagrams is a loss.
        truncated: True when the datagram was longer than the receiver's ``max_size`` and
            ``payload`` holds only its beginning (counted in ``stats.truncated``).
    """

    payload: bytes
    source: str
    source_port: int
    group: str | None = None
    interface: str | None = None
    ttl: int | None = None
    timestamp_ns: int | None = None
    kernel_drops: int | None = None
    truncated: bool = False


class Overflow(enum.Enum):
    """What a full receive queue does with one more datagram (each drop is counted)."""

    #: Keep what is queued and drop the arriving datagram (what a kernel socket buffer does).
    DROP_NEWEST = "drop-newest"
    #: Drop the oldest queued datagram to make room (freshest data wins).
    DROP_OLDEST = "drop-oldest"


@dataclasses.dataclass(slots=True)
class Counters:
    """Mutable counters owned by one endpoint; read them through ``Endpoint.stats``."""

    received: int = 0
    received_bytes: int = 0
    dropped: int = 0
    sent: int = 0
    sent_bytes: int = 0
    send_errors: int = 0
    socket_errors: int = 0
    truncated: int = 0

    def snapshot(self, queued: int, kernel_dropped: int = 0) -> Stats:
        """Return an immutable copy with the current queue length and kernel drop count.

        Every datagram received is delivered, dropped or still queued, so ``delivered`` is
        counted by difference: taking a datagram off the queue costs no counter update.
        """
        return Stats(
            received=self.received,
            received_bytes=self.received_bytes,
            delivered=self.received - self.dropped - queued,
            dropped=self.dropped,
            queued=queued,
            sent=self.sent,
            sent_bytes=self.sent_bytes,
            send_errors=self.send_errors,
            socket_errors=self.socket_errors,
            kernel_dropped=kernel_dropped,
            truncated=self.truncated,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of an endpoint's counters.

    Attributes:
        received: datagrams read from the socket.
        received_bytes: payload bytes read from the socket.
        delivered: datagrams handed to the consumer.
        dropped: datagrams dropped because the receive queue was full (slow consumer), or
            because the endpoint does not receive (a Sender).
        queued: datagrams waiting in the receive queue now.
        sent: datagrams accepted by the kernel or the transport.
        sent_bytes: payload bytes of those.
        send_errors: sends the kernel refused.
        socket_errors: errors the transport reported outside a send call (receive errors,
            failures of datagrams the transport had buffered).
        kernel_dropped: datagrams the kernel dropped for this socket before aiomcast saw them:
            receive buffer full, or refused by the host-scope guard (TTL 0 from another host).
            Linux (SO_MEMINFO); 0 elsewhere.
        truncated: datagrams longer than the receiver's ``max_size``, delivered cut short
            with ``Datagram.truncated`` set (also counted in received and delivered).

    ``received == delivered + dropped + queued`` holds at every moment.
    """

    received: int
    received_bytes: int
    delivered: int
    dropped: int
    queued: int
    sent: int
    sent_bytes: int
    send_errors: int
    socket_errors: int
    kernel_dropped: int = 0
    truncated: int = 0


class Membership(NamedTuple):
    """One membership held by an endpoint: group, interface and source.

    ``interface`` None is the kernel's choice by route; ``source`` None is an any-source
    membership, otherwise the one sender (normalised address text) it receives from.
    """

    group: Group
    interface: Interface | None
    source: str | None = None
