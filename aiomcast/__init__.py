"""aiomcast: IP multicast for asyncio.

Open endpoints, join and leave IPv4 and IPv6 groups, set every multicast option and read
datagrams with ``async for``::

    async with aiomcast.open_receiver("239.1.2.3", 5000, interface="eth0") as rx:
        async for datagram in rx:
            print(datagram.source, datagram.payload)

The whole public API is listed in ``__all__`` below; the modules behind it are private.
"""

from ._address import (
    DEFAULT_LOOPBACK,
    DEFAULT_TTL,
    MAX_PAYLOAD_IPV4,
    MAX_PAYLOAD_IPV6,
    AddressScope,
    Family,
    Group,
    GroupLike,
    TTLScope,
    max_payload,
    parse_family,
    scope_of_ttl,
    validate_port,
    validate_ttl,
)
from ._endpoint import Endpoint, Receiver, Sender
from ._errors import (
    AiomcastError,
    AlreadyJoinedError,
    BrokenEndpointError,
    BusyError,
    EndpointClosedError,
    InterfaceError,
    InvalidArgumentError,
    InvalidGroupError,
    InvalidPortError,
    InvalidSocketError,
    InvalidSourceError,
    InvalidTTLError,
    KernelError,
    MembershipError,
    NotJoinedError,
    PayloadTooLargeError,
    SourceFilterError,
    TransportOptionError,
)
from ._interfaces import (
    Interface,
    InterfaceFilter,
    InterfaceLike,
    list_interfaces,
    resolve_interface,
)
from ._metadata import Metadata
from ._open import DEFAULT_QUEUE_SIZE, Opener, open_endpoint, open_receiver, open_sender
from ._ring import RingSearchResult, expanding_ring_search
from ._run import run
from ._sequence import SequenceTracker, pack_sequence, unpack_sequence
from ._types import Datagram, Membership, Overflow, Stats
from ._watch import ChangeKind, InterfaceChange, InterfaceWatcher, JoinResult, WatchStats

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_LOOPBACK",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_TTL",
    "MAX_PAYLOAD_IPV4",
    "MAX_PAYLOAD_IPV6",
    "AddressScope",
    "AiomcastError",
    "AlreadyJoinedError",
    "BrokenEndpointError",
    "BusyError",
    "ChangeKind",
    "Datagram",
    "Endpoint",
    "EndpointClosedError",
    "Family",
    "Group",
    "GroupLike",
    "Interface",
    "InterfaceChange",
    "InterfaceError",
    "InterfaceFilter",
    "InterfaceLike",
    "InterfaceWatcher",
    "InvalidArgumentError",
    "InvalidGroupError",
    "InvalidPortError",
    "InvalidSocketError",
    "InvalidSourceError",
    "InvalidTTLError",
    "JoinResult",
    "KernelError",
    "Membership",
    "MembershipError",
    "Metadata",
    "NotJoinedError",
    "Opener",
    "Overflow",
    "PayloadTooLargeError",
    "Receiver",
    "RingSearchResult",
    "Sender",
    "SequenceTracker",
    "SourceFilterError",
    "Stats",
    "TTLScope",
    "TransportOptionError",
    "WatchStats",
    "__version__",
    "expanding_ring_search",
    "list_interfaces",
    "max_payload",
    "open_endpoint",
    "open_receiver",
    "open_sender",
    "pack_sequence",
    "parse_family",
    "resolve_interface",
    "run",
    "scope_of_ttl",
    "unpack_sequence",
    "validate_port",
    "validate_ttl",
]
