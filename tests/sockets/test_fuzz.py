"""Hostile input: every public constructor, opener, option and setter, fed anything.

The property, for each: the input is accepted and round-trips (what goes in can be read back),
or it is refused with a subclass of ``aiomcast.AiomcastError``; never a bare OSError,
TypeError, ValueError, struct.error or OverflowError. The pure layer's value tables are in
test_properties.py; this file throws arbitrary Python objects at everything else, including
setters and joins on real endpoints over the loopback interface.

Safety: without root the suite runs in the host's network namespace, so every interface value
that would resolve to another interface than the loopback one is replaced by ``"lo"`` before
an endpoint sees it, and IPv6 endpoints (whose joins and sends have no loopback interface to
stay on) run only in the private namespace.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import uvloop
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import aiomcast
from aiomcast._interfaces import kernel_memberships
from aiomcast.testing import lab

T = TypeVar("T")

#: Bounded so the whole file stays well under 20 s on 2 vCPUs.
FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ_FEW = settings(FUZZ, max_examples=100)

PRIVATE = lab.in_private_network()


def outcome(call: Callable[[], T]) -> T | aiomcast.AiomcastError:
    """The result of ``call``, or the library error it raised; any other exception escapes."""
    try:
        return call()
    except aiomcast.AiomcastError as exc:
        return exc


async def outcome_async(call: Callable[[], Awaitable[T]]) -> T | aiomcast.AiomcastError:
    """Like ``outcome`` for a coroutine."""
    try:
        return await call()
    except aiomcast.AiomcastError as exc:
        return exc


# -- strategies -------------------------------------------------------------------------------

HUGE = 10**5000  # repr() of it raises ValueError: messages must still be built

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.just(HUGE),
    st.just(-HUGE),
    st.floats(),
    st.complex_numbers(max_magnitude=1e6),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.lists(st.integers(min_value=-3, max_value=300), max_size=3),
    st.tuples(st.text(max_size=5), st.integers()),
    st.ip_addresses(),
    st.builds(object),
    st.just(math.inf),
    st.just(float("nan")),
    st.sampled_from([aiomcast.Family.IPV4, aiomcast.TTLScope.SITE, aiomcast.Overflow.DROP_OLDEST]),
)

groups = st.one_of(
    anything,
    st.sampled_from(
        ["239.1.2.3", "224.0.0.1", "232.1.1.1", "ff12::1", "ff02::1%lo", "ff05::1:3", "0.0.0.0"]
    ),
    st.ip_addresses(v=4, network="224.0.0.0/4").map(str),
    st.ip_addresses(v=6, network="ff00::/8").map(str),
    st.builds(aiomcast.Group, st.sampled_from(["239.9.9.9", "ff15::9"])),
)

interfaces = st.one_of(
    anything,
    st.sampled_from(["lo", "1", 1, "127.0.0.1", " lo ", "lo0", "", "nosuchif", 0, -1, 2**40]),
    st.builds(lambda: aiomcast.resolve_interface("lo")),
)

ports = st.one_of(anything, st.integers(min_value=-5, max_value=70000), st.just("5000"))

payloads = st.one_of(
    anything,
    st.binary(max_size=200),
    st.binary(max_size=64).map(bytearray),
    st.binary(max_size=64).map(lambda b: memoryview(b)),
    st.sampled_from([0, 1, 1472, 1473, 65507, 65508, 65527, 65528, 70000]).map(bytes),
    st.text(max_size=10),
)


def lo_only(value: object) -> object:
    """Replace an interface value that resolves to another interface than lo by ``"lo"``."""
    if PRIVATE:
        return value
    if value is None:
        return "lo"  # the kernel's choice by route could be a real interface here
    found = outcome(lambda: aiomcast.resolve_interface(value))  # type: ignore[arg-type]
    if isinstance(found, aiomcast.Interface) and not found.loopback:
        return "lo"
    return value


# -- an event loop per test, asyncio and uvloop -------------------------------------------------


@pytest.fixture(params=["asyncio", "uvloop"])
def runner(request: pytest.FixtureRequest) -> Iterator[asyncio.Runner]:
    factory = asyncio.new_event_loop if request.param == "asyncio" else uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as r:
        yield r


def run(runner: asyncio.Runner, awaitable: Awaitable[T]) -> T:
    async def wrapper() -> T:
        return await awaitable

    return runner.run(wrapper())


# -- the pure functions ----------------------------------------------------------------------


@FUZZ
@given(anything)
def test_pure_functions_accept_or_refuse(value: object) -> None:
    # Group, TTL, scope, port, family, payload limit: one value through every pure entry point.
    checks: list[Callable[[], object]] = [
        lambda: aiomcast.Group(value),  # type: ignore[arg-type]
        lambda: aiomcast.validate_ttl(value),
        lambda: aiomcast.scope_of_ttl(value),  # type: ignore[arg-type]
        lambda: aiomcast.validate_port(value, allow_zero=True),
        lambda: aiomcast.parse_family(value),
        lambda: aiomcast.max_payload(value),
        lambda: aiomcast.unpack_sequence(value),  # type: ignore[arg-type]
        lambda: aiomcast.pack_sequence(value, 8),  # type: ignore[arg-type]
        lambda: aiomcast.pack_sequence(1, value),  # type: ignore[arg-type]
        lambda: aiomcast.SequenceTracker(value),  # type: ignore[arg-type]
        lambda: aiomcast.resolve_interface(value),  # type: ignore[arg-type]
        lambda: aiomcast.resolve_interface("lo", value),
    ]
    for check in checks:
        result = outcome(check)
        if isinstance(result, aiomcast.AiomcastError):
            assert isinstance(result, aiomcast.InvalidArgumentError), result


@FUZZ
@given(anything)
@example(aiomcast.Family.IPV6)
@example(socket.AF_INET)
def test_max_payload_only_for_a_family(value: object) -> None:
    result = outcome(lambda: aiomcast.max_payload(value))
    if isinstance(result, aiomcast.AiomcastError):
        assert isinstance(result, aiomcast.InvalidArgumentError)
        return
    family = aiomcast.parse_family(value)
    assert result == (65507 if family is aiomcast.Family.IPV4 else 65527)


@FUZZ
@given(st.one_of(anything, st.integers(min_value=0, max_value=2**64 + 5)), ports)
@example(2**64 - 1, 8)
@example(0, 10**30)
@example(0, -(10**30))
@example(7, 65527)
def test_pack_sequence_round_trips(sequence: object, size: object) -> None:
    payload = outcome(lambda: aiomcast.pack_sequence(sequence, size))  # type: ignore[arg-type]
    if isinstance(payload, aiomcast.AiomcastError):
        assert isinstance(payload, aiomcast.InvalidArgumentError)
        return
    assert isinstance(sequence, int)
    assert isinstance(size, int)
    assert len(payload) == max(8, size)
    assert aiomcast.unpack_sequence(payload) == sequence
    assert aiomcast.unpack_sequence(bytearray(payload)) == sequence
    assert aiomcast.unpack_sequence(memoryview(payload)[:7]) is None


@FUZZ
@given(
    st.one_of(anything, st.integers(min_value=1, max_value=1000)),
    st.lists(st.one_of(anything, st.integers(min_value=0, max_value=2000)), max_size=40),
)
def test_sequence_tracker_takes_any_stream(window: object, numbers: list[object]) -> None:
    tracker = outcome(lambda: aiomcast.SequenceTracker(window))  # type: ignore[arg-type]
    if isinstance(tracker, aiomcast.AiomcastError):
        assert isinstance(tracker, aiomcast.InvalidArgumentError)
        return
    added = 0
    for number in numbers:
        result = outcome(lambda n=number: tracker.add(n))  # type: ignore[misc]
        if isinstance(result, aiomcast.AiomcastError):
            assert isinstance(result, aiomcast.InvalidArgumentError)
            continue
        added += 1
    # Every accepted number is counted once: unique, duplicate, late or unnumbered.
    assert tracker.unique + tracker.duplicates + tracker.late + tracker.unnumbered == added
    if tracker.highest is not None and tracker.first is not None:
        assert tracker.unique + tracker.gaps == tracker.highest - tracker.first + 1


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(
                [
                    "routers r1",
                    "hosts a b",
                    "net 1 a r1",
                    "net 2 r1/5 b",
                    "net 2 r1/x b",
                    "net 1 a",
                    "net x a b",
                    "net 99999 a b",
                    f"net {'9' * 5000} a b",
                    f"net 1 r1/{'9' * 5000} a",
                    "net \u0661 a b",  # an Arabic-Indic digit: isdecimal(), not ASCII
                    "hosts a a",
                    "routers toolongname12345",
                    "hosts b@d",
                    "# comment",
                    "net 3 r1/0 a",
                    "net 4 r1/256 a",
                    "route r1 from 1 to 2 group 239.1.1.1",
                    "route r1 from 1 to 2 group 232.1.1.1 source a",
                    "route r1 from 2 to 1 group ff35::1 source fd00::1",
                    "route r1 from 1 to 1 group 239.0.0.0/8",
                    "route a from 1 to 2 group 239.1.1.1",
                    "route r1 from 1 to 2 group 10.0.0.1",
                    "route r1 from 1 to 2 group ff15::1 source 10.0.0.1",
                    "route r1 from 1 to 2 group 239.1.1.1/33",
                    "route r1 from 1 to 2 group 239.1.1.1 source r1",
                    "route r1 from 1 to 2",
                    "route r1 from 1 to 3 group 239.1.1.1",
                ]
            ),
        ),
        max_size=8,
    )
)
def test_lab_description_parser(lines: list[str]) -> None:
    # The lab DSL: any text is read into a plan, or refused with LabError naming the line.
    text = "\n".join(lines)
    try:
        plan = lab.parse_description(text)
    except lab.LabError as exc:
        refusal = str(exc)
        assert refusal.startswith(("line ", "net ")), refusal
        return
    for name in plan.routers | plan.hosts:
        assert name.isascii()
        assert name.replace("_", "").isalnum()
        assert len(name) <= 12
    for number, members in plan.nets:
        assert 0 < number < 256
        assert len(members) >= 2
        for name, threshold in members:
            assert name in plan.routers or name in plan.hosts
            assert threshold is None or (name in plan.routers and 1 <= threshold <= 255)
    on = {(name, number) for number, members in plan.nets for name, _ in members}
    for route in plan.routes:
        assert route.router in plan.routers
        assert route.inbound not in route.outbound
        assert all((route.router, n) in on for n in (route.inbound, *route.outbound))
        assert (
            route.source is None
            or route.source in plan.hosts
            or ":" in route.source
            or (route.source.count(".") == 3)
        )


# -- openers: what is checked when open_* is called ----------------------------------------------


receive_options = st.fixed_dictionaries(
    {},
    optional={
        "interface": interfaces,
        "family": st.one_of(anything, st.sampled_from(["ipv4", "ipv6", 4, 6])),
        "queue_size": st.one_of(anything, st.integers(min_value=-2, max_value=10**6)),
        "overflow": st.one_of(anything, st.sampled_from(["drop-newest", "drop-oldest", "x"])),
        "reuse_port": anything,
        "bind_address": st.one_of(anything, st.sampled_from(["0.0.0.0", "::", "239.1.2.3"])),
        "host_scope_guard": anything,
        "transport": st.one_of(anything, st.sampled_from(["batch", "loop", "fast"])),
        "gro": anything,
        "receive_buffer": st.one_of(anything, st.integers(min_value=-1, max_value=2**31)),
    },
)

send_options = st.fixed_dictionaries(
    {},
    optional={
        "interface": interfaces,
        "ttl": st.one_of(anything, st.integers(min_value=-1, max_value=256), st.just("site")),
        "loopback": anything,
        "transport": st.one_of(anything, st.sampled_from(["batch", "loop", "fast"])),
    },
)


def _is_transport(value: object) -> bool:
    return value is None or value in ("batch", "loop")


@FUZZ
@given(groups, ports, receive_options, st.booleans())
@example("239.1.2.3", 0, {"reuse_port": "no"}, False)
@example("239.1.2.3", 0, {"gro": 1}, True)
@example([], 0, {}, False)
@example(iter(["239.1.2.3"]), 0, {}, False)
def test_open_receiver_and_endpoint_check_their_arguments(
    group: object, port: object, options: dict[str, Any], endpoint: bool
) -> None:
    opener = aiomcast.open_endpoint if endpoint else aiomcast.open_receiver
    result = outcome(lambda: opener(group, port, **options))  # type: ignore[arg-type]
    if isinstance(result, aiomcast.AiomcastError):
        assert isinstance(result, aiomcast.InvalidArgumentError)
        return
    assert isinstance(result, aiomcast.Opener)
    # Accepted: flags are real booleans, the transport one of the two (or None), and the loop
    # transport never with an option only the batch transport honours; sizes are positive.
    for name in ("reuse_port", "host_scope_guard", "gro"):
        if name in options:
            assert isinstance(options[name], bool), name
    if "transport" in options:
        assert _is_transport(options["transport"])
        assert not (options["transport"] == "loop" and options.get("gro"))
    if "queue_size" in options:
        assert isinstance(options["queue_size"], int)
        assert options["queue_size"] >= 1
    aiomcast.validate_port(port, allow_zero=True)


@FUZZ
@given(groups, ports, send_options)
def test_open_sender_checks_its_arguments(
    group: object, port: object, options: dict[str, Any]
) -> None:
    result = outcome(lambda: aiomcast.open_sender(group, port, **options))  # type: ignore[arg-type]
    if isinstance(result, aiomcast.AiomcastError):
        assert isinstance(result, aiomcast.InvalidArgumentError)
        return
    assert isinstance(result, aiomcast.Opener)
    aiomcast.Group(group)  # type: ignore[arg-type]
    aiomcast.validate_port(port, allow_zero=False)
    if "ttl" in options:
        aiomcast.validate_ttl(options["ttl"])
    if "loopback" in options:
        assert isinstance(options["loopback"], bool)
    if "transport" in options:
        assert _is_transport(options["transport"])


socks = st.one_of(
    anything,
    st.sampled_from(["udp4", "udp6", "tcp4", "closed4", "raw-unix"]),
)


def _make_sock(kind: object) -> object:
    if kind == "udp4":
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if kind == "udp6":
        return socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    if kind == "tcp4":
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if kind == "raw-unix":
        return socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if kind == "closed4":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.close()
        return sock
    return kind


def _refused_to_adopt(result: object) -> bool:
    # The refusals of adopt_socket: the socket itself is unfit for this endpoint.
    return isinstance(result, aiomcast.InvalidSocketError) and any(
        words in str(result) for words in ("SOCK_DGRAM", "but the endpoint is", "sock is closed")
    )


@FUZZ_FEW
@given(
    st.one_of(st.just("239.1.2.3"), st.just("ff12::1"), groups),
    st.one_of(st.just(0), ports),
    st.fixed_dictionaries(
        {},
        optional={
            "interface": interfaces,
            "queue_size": st.one_of(anything, st.integers(min_value=1, max_value=5)),
            "overflow": st.sampled_from(["drop-newest", "drop-oldest"]),
            "bind_address": st.one_of(
                anything, st.sampled_from(["0.0.0.0", "127.0.0.1", "239.1.2.3", "::", "10.9.9.9"])
            ),
            "transport": st.sampled_from([None, "batch", "loop"]),
            "gro": st.booleans(),
            "receive_buffer": st.one_of(st.none(), st.integers(min_value=1, max_value=1 << 22)),
            "sock": socks,
        },
    ),
    st.sampled_from(["receiver", "endpoint", "sender"]),
)
def test_opening_any_arguments_opens_or_refuses(
    runner: asyncio.Runner, group: object, port: object, options: dict[str, Any], kind: str
) -> None:
    # Awaited for real: arguments checked at open time (interface, sock, bind address) are
    # refused with the library's error, and the socket of a refused open is closed.
    options = dict(options)
    options["interface"] = lo_only(options.get("interface"))
    if "sock" in options:
        options["sock"] = _make_sock(options["sock"])
    if kind == "sender":
        for name in ("queue_size", "overflow", "bind_address", "gro", "receive_buffer"):
            options.pop(name, None)
        port = port or 9
        opener: Callable[..., Any] = aiomcast.open_sender
    else:
        opener = aiomcast.open_endpoint if kind == "endpoint" else aiomcast.open_receiver
    if (
        not PRIVATE
        and isinstance(outcome(lambda: aiomcast.Group(group)), aiomcast.Group)  # type: ignore[arg-type]
        and aiomcast.Group(group).family is aiomcast.Family.IPV6  # type: ignore[arg-type]
    ):
        group = "239.1.2.3"  # IPv6 joins have no loopback interface to stay on

    async def attempt() -> object:
        endpoint = await opener(group, port, **options)
        try:
            assert not endpoint.closed
            if kind != "sender":
                assert endpoint.queue_size == options.get("queue_size", 4096)
                joined = {m.group for m in endpoint.memberships}
                assert joined == {aiomcast.Group(group)}  # type: ignore[arg-type]
            else:
                assert endpoint.destination == (aiomcast.Group(group), int(port))  # type: ignore[arg-type, call-overload]
        finally:
            await endpoint.aclose()
        return endpoint

    sock = options.get("sock")
    was_open = isinstance(sock, socket.socket) and sock.fileno() >= 0
    checked = outcome(lambda: opener(group, port, **{**options, "sock": None}))
    result = run(runner, outcome_async(attempt))
    if isinstance(checked, aiomcast.AiomcastError):
        # Refused when called (before any socket is touched): a given socket is left alone,
        # it never became the endpoint's.
        assert isinstance(result, aiomcast.InvalidArgumentError)
        if was_open:
            assert isinstance(sock, socket.socket)
            assert sock.fileno() >= 0
    elif isinstance(sock, socket.socket) and _refused_to_adopt(result):
        assert sock.fileno() >= 0  # never taken (S3 type, or the other family): the owner's
    elif isinstance(sock, socket.socket):
        assert sock.fileno() == -1  # taken by the endpoint: closed, opened or not
    if isinstance(sock, socket.socket):
        sock.close()


# -- options and joins on real endpoints -------------------------------------------------------


@pytest.fixture
def sender(runner: asyncio.Runner) -> Iterator[aiomcast.Sender]:
    tx = run(runner, aiomcast.open_sender("239.1.2.3", 9, interface="lo"))
    yield tx
    run(runner, tx.aclose())


@FUZZ
@given(
    st.one_of(anything, st.integers(min_value=-1, max_value=256), st.just(" Region ")),
    anything,
    interfaces,
)
@example(0, True, "lo")
@example("host", False, None)
def test_sender_setters(
    runner: asyncio.Runner, sender: aiomcast.Sender, ttl: object, loop: object, iface: object
) -> None:
    # This sender never sends: any interface may be set on it (the setter only resolves it).
    result = outcome(lambda: setattr(sender, "ttl", ttl))
    if isinstance(result, aiomcast.AiomcastError):
        assert isinstance(result, aiomcast.InvalidTTLError | aiomcast.InterfaceError)
    else:
        assert sender.ttl == aiomcast.validate_ttl(ttl)
    result = outcome(lambda: setattr(sender, "loopback", loop))
    if isinstance(result, aiomcast.AiomcastError):
        assert isinstance(result, aiomcast.InvalidArgumentError)
        assert not isinstance(loop, bool)
    else:
        assert sender.loopback is loop
    result = outcome(lambda: setattr(sender, "interface", iface))
    if isinstance(result, aiomcast.AiomcastError):
        assert isinstance(result, aiomcast.InterfaceError)
    else:
        chosen = sender.interface
        assert (chosen is None) is (iface is None)
        if chosen is not None:
            assert chosen == aiomcast.resolve_interface(iface)  # type: ignore[arg-type]
    sender.interface = "lo"
    sender.ttl = 1


@pytest.fixture
def receivers(runner: asyncio.Runner) -> Iterator[list[aiomcast.Receiver]]:
    rxs = [run(runner, aiomcast.open_receiver(None, 0, family="ipv4", interface="lo"))]
    if PRIVATE:
        rxs.append(run(runner, aiomcast.open_receiver(None, 0, family="ipv6")))
    yield rxs
    for rx in rxs:
        run(runner, rx.aclose())


@FUZZ
@given(groups, interfaces, st.booleans())
@example("239.1.2.3", "lo", True)
@example("239.1.2.3", None, True)
@example("ff12::1", "lo", True)
@example("ff02::1%lo", None, False)
@example("224.0.0.1", 1, True)
def test_join_and_leave_any_arguments(
    receivers: list[aiomcast.Receiver], group: object, iface: object, twice: bool
) -> None:
    iface = lo_only(iface) if iface is not None else None  # None: the endpoint's lo
    for rx in receivers:
        membership = outcome(lambda rx=rx: rx.join(group, iface))  # type: ignore[misc]
        if isinstance(membership, aiomcast.AiomcastError):
            assert isinstance(membership, aiomcast.InvalidArgumentError | aiomcast.KernelError), (
                membership
            )
            assert not rx.memberships
            continue
        assert rx.memberships == {membership}
        assert membership.group == aiomcast.Group(group)  # type: ignore[arg-type]
        if membership.interface is not None:
            held = kernel_memberships(rx.family)
            assert held is not None
            assert (membership.interface.name, str(membership.group.address)) in held
        if twice:
            with pytest.raises(aiomcast.AlreadyJoinedError):
                rx.join(group, iface)  # type: ignore[arg-type]
        rx.leave(group, iface)  # type: ignore[arg-type]
        assert not rx.memberships
        with pytest.raises(aiomcast.NotJoinedError):
            rx.leave(group, iface)  # type: ignore[arg-type]


@FUZZ
@given(
    payloads,
    st.one_of(st.none(), groups),
    st.one_of(st.none(), ports),
    st.sampled_from(["send", "send_many", "batches"]),
)
@example(b"", None, None, "send")
@example(bytes(65508), None, None, "send")
@example(5, None, None, "send_many")
@example(b"abc", None, None, "send_many")
@example(None, None, None, "send_many")
def test_send_any_payload(
    runner: asyncio.Runner, payload: object, group: object, port: object, how: str
) -> None:
    # A sender that only ever sends on lo (its interface is never changed here).
    async def attempt() -> None:
        async with aiomcast.open_sender("239.1.2.3", 9, interface="lo") as tx:
            result: object
            if how == "send":
                result = await outcome_async(
                    lambda: tx.send(payload, group, port)  # type: ignore[arg-type]
                )
                items = 1
            elif how == "send_many":
                many = [payload, payload] if not isinstance(payload, list) else payload
                source = payload if isinstance(payload, str | bytes | int) else many
                result = await outcome_async(
                    lambda: tx.send_many(source, group, port)  # type: ignore[arg-type]
                )
                items = result if isinstance(result, int) else 0
            else:
                rx = await aiomcast.open_receiver(None, 0, family="ipv4", interface="lo")
                async with rx:
                    batches = outcome(lambda: rx.batches(payload))  # type: ignore[arg-type]
                    if not isinstance(batches, aiomcast.AiomcastError):
                        assert isinstance(payload, int)
                        assert payload >= 1
                return
            if isinstance(result, aiomcast.AiomcastError):
                assert isinstance(result, aiomcast.InvalidArgumentError | aiomcast.KernelError)
                assert tx.stats.sent == 0 or how == "send_many"
            else:
                assert tx.stats.sent == items

    run(runner, attempt())


@FUZZ_FEW
@given(
    st.one_of(anything, st.lists(st.integers(min_value=-2, max_value=300), max_size=4)),
    st.one_of(anything, st.floats(min_value=1e-4, max_value=1e-3)),
    st.one_of(anything, st.integers(min_value=-1, max_value=300)),
)
def test_expanding_ring_search_arguments(
    runner: asyncio.Runner, ttls: object, wait: object, max_ttl: object
) -> None:
    async def attempt() -> object:
        async with aiomcast.open_endpoint("239.1.2.3", 0, interface="lo", loopback=True) as ep:
            try:
                async with asyncio.timeout(0.05):
                    return await outcome_async(
                        lambda: aiomcast.expanding_ring_search(
                            ep,
                            b"q",
                            ttls=ttls,  # type: ignore[arg-type]
                            wait=wait,  # type: ignore[arg-type]
                            max_ttl=max_ttl,  # type: ignore[arg-type]
                        )
                    )
            except TimeoutError:
                return "still searching"  # accepted: it was running
            finally:
                assert ep.ttl == 1  # restored, also after a refusal or a timeout

    result = run(runner, attempt())
    if isinstance(result, aiomcast.AiomcastError):
        assert isinstance(result, aiomcast.InvalidArgumentError)


def test_run_refuses_what_is_not_a_coroutine() -> None:
    for value in (None, 5, "main", lambda: None):
        with pytest.raises(aiomcast.InvalidArgumentError, match="coroutine"):
            aiomcast.run(value)  # type: ignore[arg-type]


def test_ipaddress_objects_are_groups_and_interfaces() -> None:
    assert aiomcast.Group(ipaddress.IPv4Address("239.1.2.3")) == aiomcast.Group("239.1.2.3")
    assert aiomcast.resolve_interface(ipaddress.IPv4Address("127.0.0.1")).loopback
