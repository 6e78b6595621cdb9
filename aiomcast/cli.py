"""The ``aiomcast`` command line: interfaces, listen, send, ping and demo.

Bad input exits with status 2 and one line on stderr; runtime failures exit with 1; Ctrl-C
(SIGINT) or SIGTERM stops ``listen`` and ``send`` cleanly, with their summaries printed. The
commands run on uvloop when it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__
from ._address import Family, Group, TTLScope, validate_port
from ._console import emit_json, on_stop
from ._endpoint import Receiver
from ._errors import AiomcastError, InterfaceError, InvalidArgumentError
from ._interfaces import Interface, kernel_memberships, list_interfaces, resolve_interface
from ._measure import FORMATS, Measurement
from ._metadata import Metadata
from ._open import open_receiver, open_sender
from ._ping import run_ping
from ._run import run
from ._sendcmd import run_send
from ._types import Datagram
from ._watch import InterfaceWatcher, JoinResult

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

DEMO_GROUP_V4 = "239.255.77.77"
DEMO_GROUP_V6 = "ff12::a10c:77"


class _UsageError(Exception):
    pass


class _Failure(Exception):
    """A runtime failure that is not the user's input (exit status 1)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _number(text: str, *, zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 if zero else value > 0) or value == float("inf"):
        wanted = "0 or more" if zero else "greater than 0"
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number {wanted}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, zero=False)


def _non_negative_float(text: str) -> float:
    return _number(text, zero=True)


def _count(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _positive_int(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _build_parser() -> _Parser:
    parser = _Parser(prog="aiomcast", description="IP multicast for asyncio.")
    parser.add_argument("--version", action="version", version=f"aiomcast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("interfaces", help="list interfaces, their addresses and flags")
    p.add_argument("--json", action="store_true", help="one JSON array")

    p = sub.add_parser("listen", help="join a group and print what arrives")
    p.add_argument("group", help="the multicast group to join, IPv4 or IPv6 (ff02::1%%eth0)")
    p.add_argument("port", help="the UDP port, 1-65535")
    p.add_argument("--interface", "-i", help="name, index or local address")
    p.add_argument("--count", "-c", type=_count, default=0, help="stop after N datagrams")
    p.add_argument("--duration", type=_positive_float, help="stop after S seconds")
    p.add_argument("--idle", type=_positive_float, help="stop S idle seconds after a datagram")
    filters = p.add_mutually_exclusive_group()
    filters.add_argument(
        "--source",
        action="append",
        metavar="ADDR",
        help="receive only from this sender (source-specific join; repeatable); required for "
        "SSM groups (232.0.0.0/8, ff3x::/32)",
    )
    filters.add_argument(
        "--block",
        action="append",
        metavar="ADDR",
        help="receive from any sender but this one (repeatable)",
    )
    p.add_argument(
        "--all-interfaces",
        action="store_true",
        help="join on every interface that can carry the group's family (one line per failure)",
    )
    p.add_argument(
        "--follow",
        action="store_true",
        help="keep the memberships in step with interfaces that go and come; report changes",
    )
    p.add_argument(
        "--queue", type=_count, default=65536, help="receive queue bound (default 65536)"
    )
    p.add_argument(
        "--receive-buffer",
        type=_positive_int,
        default=8 << 20,
        metavar="BYTES",
        help="the socket's receive buffer (default 8 MiB: it absorbs bursts), granted past "
        "net.core.rmem_max where permitted (root)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="auto",
        help="how --stats and --interval read sequence numbers: auto (aiomcast's marked test "
        "payloads and iperf2's UDP header, told apart per datagram; the rest is counted as "
        "unnumbered; the default), aiomcast (the 64-bit number at the start of any payload), "
        "iperf2",
    )
    p.add_argument(
        "--interval",
        type=_positive_float,
        metavar="S",
        help="every S seconds, a report of that interval: datagrams, bytes, Mbit/s, lost, out "
        "of order, duplicates, jitter (JSON lines with --json)",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per datagram")
    out.add_argument(
        "--stats",
        action="store_true",
        help="one JSON summary at the end; with sends that carry their send time (send "
        "--timestamps, iperf2) it has jitter and one-way latency, which is right only when "
        "sender and receiver share a clock (namespaces of one host, or hosts synced by PTP)",
    )

    p = sub.add_parser("send", help="send datagrams to a group")
    p.add_argument("group", help="the multicast group to send to, IPv4 or IPv6")
    p.add_argument("port", help="the UDP port, 1-65535")
    p.add_argument("--interface", "-i", help="outgoing interface: name, index or local address")
    hops = p.add_mutually_exclusive_group()
    hops.add_argument("--ttl", help="TTL / hop limit 0-255 (default 1)")
    hops.add_argument(
        "--scope",
        choices=[s.name.lower() for s in TTLScope],
        help="TTL by scope name: " + ", ".join(f"{s.name.lower()} {int(s)}" for s in TTLScope),
    )
    p.add_argument("--no-loop", action="store_true", help="no copy to members on this host")
    p.add_argument(
        "--count", "-c", type=_count, default=1, help="datagrams to send (default 1; 0: no end)"
    )
    p.add_argument("--duration", type=_positive_float, help="stop after S seconds")
    p.add_argument(
        "--rate",
        type=float,
        default=100.0,
        help="datagrams per second (default 100); 0: as fast as the socket takes them, in "
        "send_many batches (UDP GSO where the kernel has it)",
    )
    p.add_argument(
        "--burst",
        type=_positive_int,
        metavar="N",
        help="send N datagrams back to back at each pacing step (default 1; with --rate 0, "
        "the datagrams per send_many call, default 64)",
    )
    body = p.add_mutually_exclusive_group()
    body.add_argument(
        "--size",
        type=_count,
        help="payload bytes; a test payload: a 64-bit sequence number, then (from 12 bytes) "
        "aiomcast's marker, which listen --format auto recognises",
    )
    body.add_argument("--message", help="payload text (default: hello from aiomcast)")
    body.add_argument("--hex", metavar="HEX", help="payload bytes in hexadecimal: 00ff10...")
    body.add_argument("--file", metavar="PATH", help="payload: the bytes of a file")
    p.add_argument(
        "--format",
        choices=["aiomcast", "iperf2"],
        default="aiomcast",
        help="aiomcast (the default): aiomcast's test payloads; iperf2: write iperf2's UDP "
        "header (sequence, send time) and a final datagram, so an iperf2 server reports loss "
        "and jitter",
    )
    p.add_argument(
        "--timestamps",
        action="store_true",
        help="put the send time in each test payload (size 20 or more, default 64) so that "
        "listen --stats reports one-way latency; it is right only when sender and receiver "
        "share a clock (namespaces of one host, or hosts synced by PTP)",
    )
    p.add_argument(
        "--stats",
        action="store_true",
        help="one JSON summary at the end: sent, bytes, errors, elapsed, pps, mbps",
    )

    p = sub.add_parser(
        "ping",
        help="ask peers how multicast and unicast reach them (as omping and ssmping do)",
        description="Every host runs it on one group and port; each answers every query by "
        "unicast and through the group. Given peers, it also queries them once per "
        "interval and reports per peer: loss each way, round trip min/avg/max/std-dev (on "
        "this host's clock), duplicates and the TTL that arrived. Exit status 0 when every "
        "peer answered each way at least once, 1 otherwise.",
    )
    p.add_argument("group", help="the multicast group the answers come back on")
    p.add_argument("port", help="the UDP port every host uses")
    p.add_argument("peers", nargs="*", metavar="PEER", help="addresses to query; none: only answer")
    p.add_argument("--interface", "-i", help="name, index or local address")
    p.add_argument(
        "--count", "-c", type=_count, default=5, help="queries per peer (default 5; 0: no end)"
    )
    p.add_argument(
        "--interval", type=_positive_float, default=1.0, help="seconds between queries (default 1)"
    )
    p.add_argument(
        "--wait",
        type=_positive_float,
        default=1.0,
        help="seconds to wait for answers after the last query (default 1)",
    )
    p.add_argument(
        "--wait-for-peers",
        type=_non_negative_float,
        default=5.0,
        metavar="S",
        help="before counting, probe until every peer answers, at most S seconds (default 5; "
        "0: count from the first query)",
    )
    p.add_argument(
        "--ttl", default="64", help="TTL / hop limit of the answers through the group (default 64)"
    )
    p.add_argument("--size", type=_count, default=0, help="pad messages to N bytes")
    p.add_argument("--duration", type=_positive_float, help="stop after S seconds")
    p.add_argument("--json", action="store_true", help="one JSON summary, no line per answer")

    p = sub.add_parser("demo", help="show multicast working on this host, no set-up needed")
    p.add_argument("--interface", "-i", help="run on this interface, IPv4 and IPv6 (default lo)")
    p.add_argument("--count", "-c", type=_count, default=5, help="datagrams per family (default 5)")
    return parser


def _payload_text(payload: bytes) -> str:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload[:32].hex() + ("..." if len(payload) > 32 else "")
    return repr(text) if text.isprintable() else payload[:32].hex()


def _joined_on(group: Group, interface: Interface | None) -> str:
    if interface is not None:
        return interface.name
    memberships = kernel_memberships(group.family) or set()
    names = sorted(dev for dev, addr in memberships if addr == str(group.address))
    return ",".join(names) if names else "the default interface"


def _filter_text(args: argparse.Namespace) -> str:
    if args.source:
        return f" from {', '.join(args.source)}"
    if args.block:
        return f" blocking {', '.join(args.block)}"
    return ""


_JSON_METADATA = Metadata.GROUP | Metadata.INTERFACE | Metadata.TTL | Metadata.TIMESTAMP


def _join_everywhere(rx: Receiver, group: Group, args: argparse.Namespace) -> None:
    # One line on stderr per interface that could not be joined; the others still are.
    results: list[JoinResult] = []
    for source in args.source or [None]:
        results.extend(rx.join_all_interfaces(group, source=source))
    for result in results:
        if result.error is not None:
            print(f"not joined on {result.interface}: {result.error}", file=sys.stderr)
    if not any(result.membership is not None for result in results):
        raise InterfaceError(f"{group} could not be joined on any interface", value=str(group))
    for blocked in args.block or ():
        for membership in rx.memberships:
            rx.block(group, blocked, membership.interface)


async def _report_changes(watcher: InterfaceWatcher) -> None:
    async for change in watcher:
        print(f"interface change: {change}", file=sys.stderr, flush=True)


class _Printer:
    """What ``listen`` prints for each batch of datagrams, in its output mode."""

    def __init__(self, args: argparse.Namespace, group: Group, port: int) -> None:
        self.args = args
        self.target = f"{_host(str(group))}:{port}"
        self.known_group: str | None = None
        self.iface_name: str | None = None

    def write(self, batch: list[Datagram]) -> None:
        if self.args.json:
            lines = [
                json.dumps(
                    {
                        "source": d.source,
                        "source_port": d.source_port,
                        "group": d.group or self.known_group,
                        "interface": d.interface or self.iface_name,
                        "ttl": d.ttl,
                        "timestamp_ns": d.timestamp_ns,
                        "size": len(d.payload),
                        "payload": d.payload.hex(),
                    },
                    separators=(", ", ": "),
                )
                for d in batch
            ]
        else:
            lines = [
                f"{_host(d.source)}:{d.source_port} -> {self.target} "
                f"{len(d.payload)} bytes {_payload_text(d.payload)}"
                for d in batch
            ]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


def _host(address: str) -> str:
    """An address as it goes before ``:port``: IPv6 in brackets."""
    return f"[{address}]" if ":" in address else address


class _Status:
    """A live status line on stderr while stderr is a terminal: rate, loss so far, elapsed."""

    def __init__(self, measurement: Measurement | None, rx: Receiver) -> None:
        self.measurement, self.rx = measurement, rx
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.last = (self.started, 0)
        self.handle: asyncio.TimerHandle | None = None
        if sys.stderr.isatty():
            self.handle = self.loop.call_later(1.0, self.tick)

    def tick(self) -> None:
        now = self.loop.time()
        received = self.rx.stats.received
        rate = (received - self.last[1]) / max(now - self.last[0], 1e-9)
        self.last = (now, received)
        lost = ""
        if self.measurement is not None and self.measurement.flows:
            lost = f", lost {self.measurement.totals()['gaps']}"
        sys.stderr.write(
            f"\r{received} datagrams, {rate:,.0f}/s{lost}, {now - self.started:.0f} s \x1b[K"
        )
        sys.stderr.flush()
        self.handle = self.loop.call_later(1.0, self.tick)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            sys.stderr.write("\n")


async def _listen(args: argparse.Namespace) -> int:
    group = Group(args.group)
    port = validate_port(args.port, allow_zero=False)
    iface = resolve_interface(args.interface, group.family) if args.interface else None
    if args.queue < 1:
        raise InvalidArgumentError(f"--queue {args.queue} must be at least 1", value=args.queue)
    if args.all_interfaces and iface is not None:
        raise InvalidArgumentError("give --interface or --all-interfaces, not both", value=None)
    # Bound to the group address, the socket receives only datagrams sent to the group, so
    # "group" in --json is known, not guessed. Membership on one interface (with
    # IP_MULTICAST_ALL off) makes "interface" known too.
    # A link-scoped IPv6 group can be bound only with an interface (scope id); without one the
    # socket binds the wildcard address and "group" stays null (not known for certain).
    needs_scope = group.family is Family.IPV6 and group.is_link_local
    bound_group = None if needs_scope and iface is None and group.zone is None else str(group)
    measuring = args.stats or args.interval is not None
    measurement = Measurement(args.format) if measuring else None
    printer = None if measuring else _Printer(args, group, port)
    async with open_receiver(
        None if args.all_interfaces else group,
        port,
        family=group.family,
        interface=iface,
        bind_address=bound_group,
        sources=None if args.all_interfaces else args.source,
        queue_size=args.queue,
        receive_buffer=args.receive_buffer,
        # --json reports what the kernel saw: destination group, ingress interface, TTL.
        metadata=_JSON_METADATA if printer is not None and args.json else None,
    ) as rx:
        # What exists now (modules, the endpoint) lives as long as the command: frozen, the
        # cyclic collector's full passes skip it. A pass over it takes milliseconds, long
        # enough to overflow the socket buffer at several hundred thousand datagrams a
        # second (the benchmark's listen --stats row lost from about 100k/s lower without).
        gc.freeze()
        if args.all_interfaces:
            _join_everywhere(rx, group, args)
        else:
            for blocked in args.block or ():
                rx.block(group, blocked)
        print(
            f"joined {group} on {_joined_on(group, iface)}{_filter_text(args)}",
            file=sys.stderr,
            flush=True,
        )
        if printer is not None:
            printer.iface_name = iface.name if iface is not None else None
            printer.known_group = str(group.address) if bound_group is not None else None
        reporter = (
            asyncio.ensure_future(_report_changes(rx.follow_interfaces())) if args.follow else None
        )
        status = _Status(measurement, rx)
        try:
            first, last = await _consume(rx, args, measurement, printer)
        finally:
            status.close()
            if reporter is not None:
                reporter.cancel()
        stats = rx.stats
    if args.stats and measurement is not None:
        elapsed = last - first if first is not None and last is not None else 0.0
        count = measurement.datagrams
        emit_json(
            {
                **measurement.totals(),
                # Not received by aiomcast at all: dropped from its queue (a slow consumer)
                # and by this host's kernel (socket buffer full); part of "gaps", not lost
                # on the network.
                "dropped": stats.dropped,
                "kernel_dropped": stats.kernel_dropped,
                "elapsed": round(elapsed, 6),
                "pps": round((count - 1) / elapsed, 1) if elapsed > 0 else 0.0,
            }
        )
    return EXIT_OK


async def _consume(
    rx: Receiver,
    args: argparse.Namespace,
    measurement: Measurement | None,
    printer: _Printer | None,
) -> tuple[float | None, float | None]:
    """Read batches until --count, --duration, --idle or a signal.

    Returns the loop times of the first and the last datagram.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    end = started + args.duration if args.duration is not None else None
    first: float | None = None
    last: float | None = None
    count = 0
    ticker: asyncio.TimerHandle | None = None
    if measurement is not None and args.interval is not None:
        interval = args.interval

        def report() -> None:
            nonlocal ticker
            _emit_interval(measurement.interval(), json_lines=args.json)
            ticker = loop.call_later(interval, report)

        ticker = loop.call_later(interval, report)
    idle = args.idle
    idle_timer: asyncio.TimerHandle | None = None
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(end) as scope:
            on_stop(lambda: scope.reschedule(loop.time()))

            def idle_check() -> None:
                # --idle, checked lazily: a timer per idle period, not a reschedule per batch.
                nonlocal idle_timer
                assert last is not None
                assert idle is not None
                if loop.time() >= last + idle:
                    scope.reschedule(loop.time())
                else:
                    idle_timer = loop.call_at(last + idle, idle_check)

            async for batch in rx.batches():
                if args.count and count + len(batch) > args.count:
                    batch = batch[: args.count - count]
                last = loop.time()
                if first is None:
                    first = last
                    if idle is not None:
                        idle_timer = loop.call_at(last + idle, idle_check)
                count += len(batch)
                if measurement is not None:
                    measurement.add(batch, time.time_ns())
                elif printer is not None:
                    printer.write(batch)
                if args.count and count >= args.count:
                    break
    if idle_timer is not None:
        idle_timer.cancel()
    if ticker is not None:
        ticker.cancel()
        if measurement is not None and measurement.unreported:
            _emit_interval(measurement.interval(), json_lines=args.json)
    return first, last


def _emit_interval(report: dict[str, Any], *, json_lines: bool) -> None:
    if json_lines:
        emit_json({"interval": report})
        return
    jitter = report["jitter_ms"]
    print(
        f"{report['start']:7.2f}-{report['end']:<7.2f} s  {report['datagrams']:>9} datagrams  "
        f"{report['bytes']:>11} bytes  {report['mbps']:9.3f} Mbit/s  lost {report['lost']}  "
        f"out of order {report['out_of_order']}  duplicates {report['duplicates']}  "
        f"jitter {'-' if jitter is None else f'{jitter:.3f} ms'}",
        flush=True,
    )


async def _send(args: argparse.Namespace) -> int:
    return await run_send(args)


async def _ping(args: argparse.Namespace) -> int:
    return await run_ping(args)


def _interfaces(args: argparse.Namespace) -> int:
    items = list_interfaces()
    if args.json:
        emit_json([i.to_json() for i in items])
        return EXIT_OK
    for i in items:
        flags = [
            f
            for f, on in (
                ("UP", i.up),
                ("MULTICAST", i.multicast),
                ("LOOPBACK", i.loopback),
                ("RUNNING", i.running),
            )
            if on
        ]
        addrs = [str(a) for a in (*i.ipv4, *i.ipv6)]
        print(f"{i.index:>3} {i.name:<16} {','.join(flags) or '-':<34} {' '.join(addrs) or '-'}")
    return EXIT_OK


async def _demo_family(group_text: str, iface: Interface, count: int) -> bool:
    group = Group(group_text)
    print(f"\n{group.family.label}: group {group} on {iface.name}")
    async with open_receiver(group, 0, interface=iface) as rx:
        print(f"  receiver bound to port {rx.port}, joined {group} on {iface.name}")
        async with open_sender(group, rx.port, interface=iface, ttl=1) as tx:
            for n in range(1, count + 1):
                payload = f"hello multicast #{n}".encode()
                await tx.send(payload)
                print(f"  sent     {payload.decode()!r} ({len(payload)} bytes, ttl {tx.ttl})")
            got = 0
            try:
                async with asyncio.timeout(2.0):
                    async for datagram in rx:
                        got += 1
                        print(
                            f"  received {datagram.payload.decode()!r} from "
                            f"{datagram.source}:{datagram.source_port}"
                        )
                        if got == count:
                            break
            except TimeoutError:
                pass
            r, s = rx.stats, tx.stats
            print(
                f"  counters: receiver received={r.received} delivered={r.delivered} "
                f"dropped={r.dropped}; sender sent={s.sent} errors={s.send_errors}"
            )
    ok = got == count
    print(f"  {'ok' if ok else 'FAILED'}: {got} of {count} datagrams arrived through async for")
    return ok


async def _demo(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise InvalidArgumentError(
            f"--count {args.count} must be at least 1 for the demo", value=args.count
        )
    plans: list[tuple[str, Interface]] = []
    if args.interface is None:
        try:
            lo = resolve_interface("127.0.0.1", Family.IPV4)
        except InterfaceError as exc:
            # The environment, not the user's input, is at fault: a runtime failure.
            raise _Failure(f"the loopback interface is not usable: {exc}") from exc
        print(
            f"aiomcast demo over the loopback interface {lo.name} (127.0.0.1): "
            "nothing leaves this host"
        )
        plans.append((DEMO_GROUP_V4, lo))
    else:
        iface = resolve_interface(args.interface)
        print(f"aiomcast demo on {iface.name}: datagrams go out of {iface.name} with TTL 1")
        if iface.ipv4 and iface.supports(Family.IPV4):
            plans.append((DEMO_GROUP_V4, iface))
        if iface.ipv6 and iface.supports(Family.IPV6):
            plans.append((DEMO_GROUP_V6, iface))
        if not plans:
            raise InvalidArgumentError(
                f"interface {iface.name!r} has no address that can carry multicast",
                value=args.interface,
            )
    results = [await _demo_family(group, iface, args.count) for group, iface in plans]
    return EXIT_OK if all(results) else EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 failure, 2 bad input)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"aiomcast: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as done:  # --help and --version print and end here
        return done.code if isinstance(done.code, int) else EXIT_OK
    try:
        if args.command == "interfaces":
            return _interfaces(args)
        command = {"listen": _listen, "send": _send, "demo": _demo, "ping": _ping}[args.command]
        return run(command(args))
    except InvalidArgumentError as exc:
        print(f"aiomcast: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (AiomcastError, OSError, _Failure) as exc:
        print(f"aiomcast: {args.command} failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:  # pragma: no cover - signal handlers normally take SIGINT
        return 130
