"""The C extension on its own: the batch reader's arguments, errors and references, the
awaitable the async iterator hands out (the protocol an event loop or a caller may drive),
sendto and sendmmsg.

The endpoint tests run every path through it (and through the pure-Python stand-in); these
pin what they do not reach: refused arguments, a closed descriptor, reference counts, the
awaitable driven by hand, and the sendto and sendmmsg of the send paths on their own.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import gc
import select
import socket
import sys
import weakref
from collections.abc import Awaitable, Iterator
from typing import Any, NamedTuple

import pytest

from aiomcast import Datagram
from aiomcast._native import speedups_available
from aiomcast._sending import packed_sockaddr
from aiomcast.testing.lab import LinkEnds

if not speedups_available():  # test_api.py fails in CI when the extension is missing
    pytest.skip("aiomcast._speedups was not built (no C compiler)", allow_module_level=True)

from aiomcast._speedups import BatchReader, QueueIterator, sendmmsg, sendto


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A receiving and a sending UDP socket on 127.0.0.1 (unicast: the reader does not care)."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    yield rx, tx
    rx.close()
    tx.close()


class OtherLayout(NamedTuple):
    """Datagram's fields in another order: what a reader must refuse."""

    source: str
    payload: bytes
    source_port: int
    group: str | None = None
    interface: str | None = None
    ttl: int | None = None
    timestamp_ns: int | None = None
    kernel_drops: int | None = None
    truncated: bool = False


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"family": 99}, ValueError, "family 99"),
        ({"count": 0}, ValueError, "count 0 is outside 1-1024"),
        ({"count": 1025}, ValueError, "count 1025"),
        ({"slot": 0}, ValueError, "slot 0 is outside 1-65536"),
        ({"slot": 65537}, ValueError, "slot 65537"),
        ({"limit": 0}, ValueError, "limit 0 is outside 1-65536"),
        ({"datagram_type": dict}, TypeError, "tuple subclass"),
        ({"datagram_type": collections.UserList}, TypeError, "tuple subclass"),
        # A tuple type of another layout than the one the reader fills in.
        ({"datagram_type": OtherLayout}, TypeError, "not the layout this reader was built for"),
        ({"datagram_type": tuple}, TypeError, "fields None are not the layout"),
    ],
)
def test_reader_refuses_bad_arguments_naming_them(
    pair: tuple[socket.socket, socket.socket], arguments: dict[str, Any], error: type, match: str
) -> None:
    rx, _ = pair
    given: dict[str, Any] = {"fd": rx.fileno(), "family": socket.AF_INET}
    given["datagram_type"] = Datagram
    given |= arguments
    with pytest.raises(error, match=match):
        BatchReader(**given)


def test_reader_is_initialised_once(pair: tuple[socket.socket, socket.socket]) -> None:
    rx, _ = pair
    reader = BatchReader(rx.fileno(), socket.AF_INET, Datagram)
    with pytest.raises(RuntimeError, match="already"):
        reader.__init__(rx.fileno(), socket.AF_INET, Datagram)
    with pytest.raises(RuntimeError, match="not initialised"):
        BatchReader.__new__(BatchReader).read()


def test_reader_reports_nothing_waiting_and_a_closed_descriptor(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, _ = pair
    reader = BatchReader(rx.fileno(), socket.AF_INET, Datagram, count=4)
    assert reader.read() is None  # EAGAIN
    rx.close()
    with pytest.raises(OSError, match="Bad file descriptor"):
        reader.read()


def test_reader_returns_datagrams_messages_bytes_and_cuts(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, tx = pair
    for payload in (b"one", b"", b"three-long"):
        tx.sendto(payload, rx.getsockname())
    reader = BatchReader(rx.fileno(), socket.AF_INET, Datagram, count=2, slot=5)
    got = reader.read()
    assert got is not None
    datagrams, nbytes, truncated, messages = got
    assert (nbytes, truncated, messages) == (3, 0, 2)
    assert [d.payload for d in datagrams] == [b"one", b""]
    assert all(type(d) is Datagram and not gc.is_tracked(d) for d in datagrams)
    assert datagrams[0] == Datagram(b"one", "127.0.0.1", tx.getsockname()[1])
    got = reader.read()
    assert got is not None
    assert got[0][0].payload == b"three"
    assert got[0][0].truncated
    assert got[1:] == (5, 1, 1)


def test_reader_keeps_no_reference_it_should_not(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    # The source's host and port objects are shared through the cache: reading many datagrams
    # and letting them go leaves their reference counts where they were.
    rx, tx = pair
    reader = BatchReader(rx.fileno(), socket.AF_INET, Datagram, count=64)
    tx.sendto(b"x", rx.getsockname())
    first = reader.read()
    assert first is not None
    host = first[0][0].source
    before = sys.getrefcount(host)
    for _ in range(20):
        for _ in range(64):
            tx.sendto(b"y" * 10, rx.getsockname())
        got = reader.read()
        assert got is not None
        assert len(got[0]) == 64
        del got
    assert sys.getrefcount(host) == before


class _Item:
    """A queued value that can be watched with a weak reference."""


def _queue_of(count: int) -> collections.deque[Any]:
    return collections.deque(_Item() for _ in range(count))


async def _never() -> Any:
    raise AssertionError("the queue was not empty")


@pytest.mark.asyncio
async def test_iterator_hands_over_queued_values_and_waits_when_empty() -> None:
    queue = _queue_of(3)
    expected = list(queue)
    waited: list[int] = []

    async def wait() -> Any:
        waited.append(1)
        raise StopAsyncIteration

    got = [item async for item in QueueIterator(queue, wait)]
    assert got == expected
    assert waited == [1]


@pytest.mark.asyncio
async def test_awaitable_gives_its_value_once() -> None:
    queue = _queue_of(1)
    item = queue[0]
    ready = QueueIterator(queue, _never).__anext__()
    assert await ready is item
    with pytest.raises(RuntimeError, match="already awaited"):
        await ready


def test_awaitable_driven_by_hand() -> None:
    queue = _queue_of(4)
    items = list(queue)
    iterator = QueueIterator(queue, _never)
    steps: Any = iterator.__anext__().__await__()
    with pytest.raises(StopIteration) as stop:
        steps.send(None)
    assert stop.value.value is items[0]
    steps = iterator.__anext__()
    with pytest.raises(TypeError, match="non-None"):
        steps.send(1)
    steps = iterator.__anext__()
    with pytest.raises(ValueError, match="thrown"):
        steps.throw(ValueError("thrown"))
    steps = iterator.__anext__()
    steps.close()
    with pytest.raises(RuntimeError, match="already awaited"):
        steps.send(None)


@pytest.mark.asyncio
async def test_awaitable_runs_as_a_task_and_releases_what_it_held() -> None:
    queue = _queue_of(2)
    watch = [weakref.ref(item) for item in queue]
    iterator = QueueIterator(queue, _never)
    awaitable: Awaitable[Any] = iterator.__anext__()
    task = asyncio.ensure_future(awaitable)
    assert isinstance(await task, _Item)
    del task, awaitable
    await asyncio.sleep(0)  # the loop lets go of the finished task
    dropped = iterator.__anext__()
    del dropped  # never awaited: its value goes with it
    gc.collect()
    assert [ref() for ref in watch] == [None, None]


def test_iterator_needs_a_deque_and_a_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        QueueIterator(collections.deque(), 5)  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="popleft"):
        QueueIterator([], _never)  # type: ignore[arg-type]


# -- sendto: Sender.send's hot path -------------------------------------------------------------


def _packed(address: tuple[str, int]) -> bytes:
    packed = packed_sockaddr(socket.AF_INET, address)
    assert packed is not None
    return packed


def test_sendto_sends_one_datagram_to_the_packed_address(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, tx = pair
    assert sendto(tx.fileno(), b"hello", _packed(rx.getsockname())) is True
    data, source = rx.recvfrom(64) if _readable(rx) else (b"", None)
    assert (data, source) == (b"hello", tx.getsockname())


def test_sendto_refuses_bad_arguments_naming_them(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, tx = pair
    address = _packed(rx.getsockname())
    with pytest.raises(TypeError, match="3 arguments"):
        sendto(tx.fileno(), b"x")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="bytes"):
        sendto(tx.fileno(), bytearray(b"x"), address)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes"):
        sendto(tx.fileno(), b"x", rx.getsockname())
    with pytest.raises(ValueError, match="-1 is not a file descriptor"):
        sendto(-1, b"x", address)
    with pytest.raises(ValueError, match="1 bytes is not a sockaddr"):
        sendto(tx.fileno(), b"x", b"\x02")
    with pytest.raises(ValueError, match="300 bytes is not a sockaddr"):
        sendto(tx.fileno(), b"x", bytes(300))
    assert not _readable(rx)  # nothing went out


def test_sendto_raises_the_kernels_error(pair: tuple[socket.socket, socket.socket]) -> None:
    rx, tx = pair
    address = _packed(rx.getsockname())
    spare = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fd = spare.fileno()
    spare.close()
    with pytest.raises(OSError, match="Bad file descriptor") as closed:
        sendto(fd, b"x", address)
    assert closed.value.errno == errno.EBADF
    with pytest.raises(OSError, match="Message too long") as too_long:
        sendto(tx.fileno(), bytes(70_000), address)
    assert too_long.value.errno == errno.EMSGSIZE


def test_sendto_says_false_when_the_socket_buffer_is_full(throttled: LinkEnds) -> None:
    # Through tbf the datagrams stay charged to the small send buffer until the qdisc lets
    # them go (conftest.throttled): the non-blocking call then finds it full (EAGAIN).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(throttled.a_ipv4))
        address = _packed(("239.1.2.3", 9))
        results = [sendto(tx.fileno(), bytes(1000), address) for _ in range(200)]
    assert results[0] is True
    assert False in results
    assert results.count(True) < 200


# -- sendmmsg: send_many's path without GSO ---------------------------------------------------


def test_sendmmsg_sends_64_at_a_time_from_start_in_order(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, tx = pair
    address = _packed(rx.getsockname())
    payloads = [n.to_bytes(2, "big") * (1 + n % 5) for n in range(100)]  # mixed sizes
    sent = 0
    while sent < len(payloads):
        took = sendmmsg(tx.fileno(), payloads, sent, address)
        assert took == min(64, len(payloads) - sent)
        sent += took
    assert sendmmsg(tx.fileno(), tuple(payloads[:3]), 1, address) == 2  # a tuple too
    got = [rx.recv(64) for _ in range(102) if _readable(rx)]
    assert got == payloads + payloads[1:3]


def test_sendmmsg_refuses_bad_arguments_naming_them(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    rx, tx = pair
    address = _packed(rx.getsockname())
    fd = tx.fileno()
    with pytest.raises(TypeError, match="4 arguments"):
        sendmmsg(fd, [b"x"], address)  # type: ignore[call-arg, arg-type]
    with pytest.raises(TypeError, match="list or tuple"):
        sendmmsg(fd, iter([b"x"]), 0, address)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="payload 1 is bytearray, not bytes"):
        sendmmsg(fd, [b"x", bytearray(b"y")], 0, address)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="bytes address"):
        sendmmsg(fd, [b"x"], 0, rx.getsockname())
    with pytest.raises(IndexError, match="start 2 is outside the 2 payloads"):
        sendmmsg(fd, [b"x", b"y"], 2, address)
    with pytest.raises(IndexError, match="start -1"):
        sendmmsg(fd, [b"x"], -1, address)
    with pytest.raises(IndexError, match="start 0 is outside the 0 payloads"):
        sendmmsg(fd, [], 0, address)
    with pytest.raises(ValueError, match="-1 is not a file descriptor"):
        sendmmsg(-1, [b"x"], 0, address)
    with pytest.raises(ValueError, match="1 bytes is not a sockaddr"):
        sendmmsg(fd, [b"x"], 0, b"\x02")
    assert not _readable(rx)  # nothing went out, not even the payloads before a bad one


def test_sendmmsg_raises_the_kernels_error(
    pair: tuple[socket.socket, socket.socket], throttled: LinkEnds
) -> None:
    rx, tx = pair
    address = _packed(rx.getsockname())
    with pytest.raises(OSError, match="Message too long") as too_long:
        sendmmsg(tx.fileno(), [bytes(70_000), b"x"], 0, address)
    assert too_long.value.errno == errno.EMSGSIZE
    # A full send buffer (through tbf, as for sendto above) is BlockingIOError, which the
    # transport takes as "queue the rest and wait for room".
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as full:
        full.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        full.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(throttled.a_ipv4)
        )
        group = _packed(("239.1.2.3", 9))
        taken = []
        for _ in range(200):
            try:
                taken.append(sendmmsg(full.fileno(), [bytes(1000)] * 8, 0, group))
            except BlockingIOError:
                break
        else:
            pytest.fail("the send buffer never filled")
    assert taken[0] >= 1
    assert all(1 <= n <= 8 for n in taken)


def _readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 1.0)[0])
