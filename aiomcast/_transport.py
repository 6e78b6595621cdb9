# Design: the one transport interface of the endpoints. aiomcast's batch transport
# (_fastio.FastDatagramTransport) has it natively; LoopTransport gives the event loop's own
# datagram transport (asyncio's or uvloop's, transport="loop") the same operations, so that
# the endpoints never ask which transport they have:
#   - try_send: send now or say no (the hot path of send()); the loop's transport says no,
#     and send() takes its general path;
#   - send_many: several datagrams to one destination, held in order past the socket's room;
#   - zero-length datagrams: the loop's transports skip them, so the adapter sends them on
#     the socket itself, after what the transport still holds (``drained`` waits for that);
#   - gso: always off on the loop's transport, and refused when asked for.
from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Any, Protocol, final

from ._errors import InvalidArgumentError
from ._protocol import MulticastProtocol

__all__ = ["LoopTransport", "Transport"]


class Transport(Protocol):
    """What an endpoint uses of its transport."""

    @property
    def gso(self) -> bool:
        """Whether send_many may use UDP_SEGMENT (GSO)."""

    @gso.setter
    def gso(self, value: bool) -> None: ...

    def try_send(self, data: bytes, addr: Any) -> bool:
        """Send ``data`` now if nothing waits before it and the socket takes it; else False."""

    def sendto(self, data: Any, addr: Any = None) -> None:
        """Send one datagram (zero-length too), after what is held."""

    def send_many(self, payloads: Sequence[bytes], addr: Any, uniform: int = 0) -> None:
        """Send ``payloads`` to ``addr`` in order (``uniform``: their one size, or 0)."""

    async def drained(self) -> None:
        """Return once nothing the transport holds would be sent after a new datagram."""

    def get_write_buffer_size(self) -> int:
        """Bytes held, not yet sent."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Asyncio's transport information (``socket``, ``sockname``...)."""

    def is_closing(self) -> bool:
        """True once closing began."""

    def close(self) -> None:
        """Close after what is held is sent; the protocol hears connection_lost."""

    def abort(self) -> None:
        """Close at once, dropping what is held."""


@final
class LoopTransport:
    """The event loop's own datagram transport with the operations of the batch transport."""

    __slots__ = ("_inner", "_protocol", "_sock")

    def __init__(
        self, inner: asyncio.DatagramTransport, protocol: MulticastProtocol, sock: socket.socket
    ) -> None:
        # ``sock`` is the socket itself (asyncio's get_extra_info("socket") is a wrapper
        # without sendto), for zero-length datagrams.
        self._inner = inner
        self._protocol = protocol
        self._sock = sock

    @property
    def gso(self) -> bool:
        """Always False: the loop's transport sends each datagram on its own."""
        return False

    @gso.setter
    def gso(self, value: bool) -> None:
        if value:
            raise InvalidArgumentError(
                "gso needs aiomcast's own transport (transport='batch', Linux)", value=value
            )

    def try_send(self, data: bytes, addr: Any) -> bool:
        """Always False: send() takes its general path, with the loop's flow control."""
        return False

    def sendto(self, data: Any, addr: Any = None) -> None:
        """The loop's sendto; a zero-length datagram goes on the socket itself.

        Call ``drained`` first for a zero-length one, so that it leaves after what the
        transport holds. A refusal is reported to the protocol, as the loop's transport
        reports its own.
        """
        if len(data):
            self._inner.sendto(data, addr)
            return
        try:
            self._sock.sendto(b"", addr)
        except OSError as exc:
            self._protocol.error_received(exc)

    def send_many(self, payloads: Sequence[bytes], addr: Any, uniform: int = 0) -> None:
        """Hand each to the loop's sendto, which holds in order what the socket cannot take.

        Stops at the first refusal (reported to the protocol), as the batch transport does.
        """
        protocol = self._protocol
        for payload in payloads:
            self.sendto(payload, addr)
            if protocol.send_failure is not None:
                return

    async def drained(self) -> None:
        """Wait until the loop's transport holds nothing (or is closing)."""
        # The loop's transports signal only the water marks (resume_writing), not "empty":
        # look every millisecond, as rarely as zero-length datagrams behind a backlog occur.
        while self.get_write_buffer_size() and not self._inner.is_closing():  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    def get_write_buffer_size(self) -> int:
        """Bytes the loop's transport holds."""
        # Both asyncio's and uvloop's datagram transports have it; the type does not declare it.
        size: int = getattr(self._inner, "get_write_buffer_size", lambda: 0)()
        return size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The loop's transport's (low, high) water marks."""
        limits: tuple[int, int] = self._inner.get_write_buffer_limits()  # type: ignore[attr-defined]
        return limits

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The loop's transport's information."""
        return self._inner.get_extra_info(name, default)

    def is_closing(self) -> bool:
        """The loop's transport's is_closing."""
        return self._inner.is_closing()

    def close(self) -> None:
        """Close the loop's transport."""
        self._inner.close()

    def abort(self) -> None:
        """Abort the loop's transport."""
        self._inner.abort()
