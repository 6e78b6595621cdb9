# Design: typed attributes after anyio's TypedAttributeProvider pattern. Every endpoint answers
# ``endpoint.extra(attribute)`` for aiomcast's own MulticastAttribute set and for the members
# of anyio's SocketAttribute that an unconnected datagram socket has (raw_socket,
# local_address, local_port, family), so code written against anyio's socket streams finds
# the same things here. The values are read when asked for, not copied at open.
from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Any

from anyio import TypedAttributeSet, typed_attribute
from anyio.abc import SocketAttribute

from ._address import Family
from ._interfaces import Interface

__all__ = ["MulticastAttribute", "typed_attributes"]


class MulticastAttribute(TypedAttributeSet):
    """aiomcast's typed attributes of an endpoint, for ``endpoint.extra(...)``."""

    #: the endpoint's socket, for options aiomcast does not cover (do not close it)
    raw_socket: socket.socket = typed_attribute()
    #: the (address, port) the socket is bound to
    local_address: tuple[str, int] = typed_attribute()
    #: the local UDP port (0 for a sender that has not sent yet)
    local_port: int = typed_attribute()
    #: the endpoint's address family
    family: Family = typed_attribute()
    #: the outgoing interface of a sender or endpoint, the default join interface of a
    #: receiver; None is the kernel's choice
    interface: Interface | None = typed_attribute()


def typed_attributes(
    sock: socket.socket,
    family: Family,
    local_address: Callable[[], tuple[str, int]],
    interface: Callable[[], Interface | None],
) -> Mapping[Any, Callable[[], Any]]:
    """The ``extra_attributes`` mapping of an endpoint."""
    return {
        MulticastAttribute.raw_socket: lambda: sock,
        MulticastAttribute.local_address: local_address,
        MulticastAttribute.local_port: lambda: local_address()[1],
        MulticastAttribute.family: lambda: family,
        MulticastAttribute.interface: interface,
        SocketAttribute.raw_socket: lambda: sock,
        SocketAttribute.local_address: local_address,
        SocketAttribute.local_port: lambda: local_address()[1],
        SocketAttribute.family: lambda: socket.AddressFamily(int(family)),
    }
