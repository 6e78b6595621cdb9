# Design: `aiomcast send`. Its payloads and its schedule are pure (aiomcast/_traffic.py);
# this is the loop that carries them out on a Sender. Unpaced, it sends --burst datagrams per
# send_many call (one GSO send) and lets the event loop in about once a millisecond. Paced,
# each wake-up sends what fell due by then, in send_many calls of up to 64, and sleeps again
# for at least a millisecond (the loop's timers are no finer): the rate achieved over a run
# is the rate asked, whatever the timer's granularity. A refused send after the first is
# counted and the send goes on; the first, or a run of them, fails the command.
from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time

from ._address import Family, Group, max_payload, validate_port, validate_ttl
from ._console import emit_json, on_stop
from ._errors import InvalidArgumentError, KernelError
from ._open import open_sender
from ._sequence import IPERF2_HEADER, TIMESTAMP_HEADER, pack_iperf2
from ._traffic import Pacer, Payloads

__all__ = ["run_send"]


def _given_body(args: argparse.Namespace) -> tuple[str, bytes] | None:
    """(option, bytes) of --message, --hex or --file, or None when none was given."""
    if args.message is not None:
        # Arguments that are not valid UTF-8 reach Python as surrogate escapes: send their bytes.
        return "--message", args.message.encode("utf-8", errors="surrogateescape")
    if args.hex is not None:
        try:
            return "--hex", bytes.fromhex(args.hex)
        except ValueError:
            raise InvalidArgumentError(
                f"--hex {args.hex!r} is not hexadecimal bytes (pairs of 0-9, a-f)",
                value=args.hex,
            ) from None
    if args.file is not None:
        try:
            with open(args.file, "rb") as handle:
                data = handle.read(65536)
        except OSError as exc:
            raise InvalidArgumentError(
                f"--file {args.file!r} cannot be read: {exc.strerror or exc}", value=args.file
            ) from None
        return "--file", data
    return None


def _payloads(args: argparse.Namespace, family: Family) -> Payloads:
    """The payload builder that the body options, --format and --timestamps ask for."""
    limit = max_payload(family)
    body = _given_body(args)
    if args.format == "iperf2":
        if body is not None:
            raise InvalidArgumentError(f"--format iperf2 sends sized datagrams, not {body[0]}")
        if args.timestamps:
            raise InvalidArgumentError(
                "--timestamps writes aiomcast's header; iperf2's header carries its send time "
                "already"
            )
        kind, smallest, what = "iperf2", IPERF2_HEADER.size, "iperf2's header"
        size = 1470 if args.size is None else args.size  # iperf2's default UDP datagram size
    elif args.timestamps:
        if body is not None:
            raise InvalidArgumentError(f"--timestamps sends sized datagrams, not {body[0]}")
        kind, smallest, what = "timestamped", TIMESTAMP_HEADER.size, "the timestamped header"
        size = 64 if args.size is None else args.size
    elif args.size is not None:
        kind, smallest, what, size = "aiomcast", 8, "the sequence header", args.size
    else:
        option, message = body if body is not None else ("--message", b"hello from aiomcast")
        if len(message) > limit:
            if option == "--file":
                what = f"--file {args.file!r} holds more"
            else:
                what = f"{option} of {len(message)} bytes is more"
            raise InvalidArgumentError(
                f"{what} than the {family.label} UDP limit of {limit} bytes",
                value=len(message),
            )
        return Payloads("message", 0, message)
    if not smallest <= size <= limit:
        raise InvalidArgumentError(
            f"--size {size} must be {smallest} ({what}) to {limit} ({family.label} UDP limit)",
            value=size,
        )
    return Payloads(kind, size)


#: The shortest pacing sleep, in seconds: uvloop's timers count whole milliseconds.
_QUANTUM = 0.001

#: Consecutive refused sends after which ``send`` gives up (exit 1); fewer are counted.
_MAX_ERRORS_IN_A_ROW = 100


async def run_send(args: argparse.Namespace) -> int:
    """The ``aiomcast send`` command: datagrams to a group, paced or not, and a report."""
    group = Group(args.group)
    port = validate_port(args.port, allow_zero=False)
    ttl = validate_ttl(args.scope if args.scope else (args.ttl if args.ttl is not None else 1))
    if not (args.rate >= 0 and math.isfinite(args.rate)):
        raise InvalidArgumentError(
            f"--rate {args.rate} must be a finite number, 0 or more", value=args.rate
        )
    payloads = _payloads(args, group.family)
    # Unpaced, a burst is one send_many call; paced, datagrams leave in bursts of --burst.
    burst = args.burst if args.burst else (64 if args.rate == 0 else 1)
    chunk = max(burst, 64)  # the most one send_many call carries while catching up

    loop = asyncio.get_running_loop()
    stopped = False
    waiter: asyncio.Future[None] | None = None

    def wake() -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def stop() -> None:
        nonlocal stopped
        stopped = True
        wake()

    async def sleep_until(when: float) -> None:
        # Timers may fire a fraction of a millisecond early (uvloop rounds to whole ones).
        nonlocal waiter
        while not stopped and (left := when - time.monotonic()) > 0:
            waiter = loop.create_future()
            handle = loop.call_later(left, wake)
            try:
                await waiter
            finally:
                handle.cancel()

    on_stop(stop)
    async with open_sender(
        group, port, interface=args.interface, ttl=ttl, loopback=not args.no_loop
    ) as tx:
        send_many, make, count = tx.send_many, payloads.make, args.count
        started = time.monotonic()
        pacer = Pacer(args.rate, burst, started)
        paced = args.rate > 0
        deadline = started + args.duration if args.duration is not None else math.inf
        attempted = sent = data_bytes = errors_in_a_row = 0
        next_yield = started
        # Paced: each wake-up sends what is due by then (``target``) and sleeps again, a
        # millisecond at the least (the event loop's timers are no finer; a shorter wait
        # would spin, and so would sends of one datagram chasing the schedule: each costs
        # more than the gap between two at 100k/s). Only when a whole ``gather`` fell due
        # meanwhile does it send on without sleeping (it is behind).
        gather = max(burst, min(chunk, math.ceil(args.rate * _QUANTUM)))
        target = 0
        while not stopped and (not count or attempted < count):
            now = time.monotonic()
            if now >= deadline:
                break
            if not paced:
                n = burst
                if now >= next_yield:  # let signals and timers in, about once a millisecond
                    await asyncio.sleep(0)
                    next_yield = now + 0.001
            else:
                if attempted >= target:
                    due = pacer.due(now) or 0
                    if due - attempted >= gather:
                        target = due
                    else:
                        # Until the next burst falls due, the deadline, or a signal.
                        await sleep_until(min(max(pacer.at(attempted), now + _QUANTUM), deadline))
                        target = pacer.due(time.monotonic()) or 0
                        continue
                n = min(target - attempted, chunk)
            if count:
                n = min(n, count - attempted)
            batch = make(attempted, n)
            attempted += n
            try:
                await send_many(batch)
            except KernelError:
                # Counted in tx.stats.send_errors; the first send failing, or a run of them,
                # is a failure of the command (no route, no such interface...).
                errors_in_a_row += 1
                if not sent or errors_in_a_row >= _MAX_ERRORS_IN_A_ROW:
                    raise
                continue
            errors_in_a_row = 0
            sent += n
            data_bytes += n * payloads.size
        if args.rate and count and attempted >= count and not stopped:
            # The last burst's slot ends when the next would be due: --count N at --rate R
            # takes N / R seconds, as the rate promises.
            await sleep_until(min(pacer.end(attempted), deadline))
        elapsed = time.monotonic() - started
        if args.format == "iperf2":
            # iperf2's final datagram: a server prints its loss and jitter report on it. It is
            # not counted as data by iperf2, nor here.
            await tx.send(
                pack_iperf2(attempted % (2**31 - 1) + 1, payloads.size, time.time(), final=True)
            )
        errors = tx.stats.send_errors
        if tx.host_scope:  # TTL 0 (IPv4): aiomcast sends over the loopback interface
            where = "lo (TTL 0 stays on this host)"
        else:
            where = tx.interface.name if tx.interface is not None else "the default interface"
    pps = sent / elapsed if elapsed > 0 else 0.0
    mbps = data_bytes * 8 / elapsed / 1e6 if elapsed > 0 else 0.0
    if args.stats:
        emit_json(
            {
                "sent": sent,
                "bytes": data_bytes,
                "errors": errors,
                "elapsed": round(elapsed, 6),
                "pps": round(pps, 1),
                "mbps": round(mbps, 3),
                "rate": args.rate,
                "burst": burst,
            }
        )
    else:
        print(
            f"sent {sent} datagram{'' if sent == 1 else 's'} to {group}:{port} "
            f"with ttl {ttl} on {where}: {data_bytes} bytes in {elapsed:.3f} s, "
            f"{pps:.1f} datagrams/s, {mbps:.3f} Mbit/s, {errors} error{'' if errors == 1 else 's'}",
            file=sys.stderr,
        )
    return 0
