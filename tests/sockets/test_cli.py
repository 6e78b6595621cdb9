"""The ``aiomcast`` command line, run as a subprocess.

Everything runs on the loopback interface (lo, 127.0.0.1, IPv4), so these tests also run
without root; the tests that need a namespace without routes or a veth pair (IPv6) build them
with ``aiomcast.testing.lab`` and need root. Seed facts are named as ``seed Sn``.
"""

from __future__ import annotations

import ipaddress
import json
import pathlib
import re
import signal
import socket
import time

import pytest

from aiomcast import pack_sequence
from aiomcast.testing import lab
from tests.conftest import LOOPBACK_V4
from tests.helpers import LinkPair, received_ttl, ttl_probe
from tests.processes import AIOMCAST, SCRIPT, Result, background, free_port, run

LO = ("--interface", "lo")
JSON_KEYS = {
    "source",
    "source_port",
    "group",
    "interface",
    "ttl",
    "timestamp_ns",
    "size",
    "payload",
}
STATS_KEYS = {
    "received",
    "bytes",
    "unnumbered",
    "senders",
    "dropped",
    "kernel_dropped",
    "gaps",
    "duplicates",
    "reordered",
    "late",
    "jitter_ms",
    "elapsed",
    "pps",
}

SEND_STATS_KEYS = {"sent", "bytes", "errors", "elapsed", "pps", "mbps", "rate", "burst"}


def cli(*args: str) -> list[str]:
    return [*AIOMCAST, *args]


def assert_one_error_line(result: Result, status: int) -> str:
    assert result.returncode == status, result
    assert "Traceback" not in result.stderr
    assert len(result.err_lines) == 1, result.stderr
    return result.err_lines[0]


# -- demo, interfaces, both entry points ------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [[*AIOMCAST, "demo"], [SCRIPT, "demo", "--interface", "lo"]],
    ids=["python-m", "console-script"],
)
def test_demo_exits_0_and_shows_what_happened(argv: list[str]) -> None:
    # seed S1, S6: every datagram sent to the group reaches the member, on lo.
    result = run(argv)
    assert result.returncode == 0, result
    out = result.stdout
    assert "IPv4: group 239.255.77.77 on lo" in out
    for n in range(1, 6):
        assert f"sent     'hello multicast #{n}' (18 bytes, ttl 1)" in out
        assert f"received 'hello multicast #{n}' from 127.0.0.1:" in out
    assert "counters: receiver received=5 delivered=5 dropped=0; sender sent=5 errors=0" in out
    assert "ok: 5 of 5 datagrams arrived through async for" in out
    assert "IPv6" not in out  # lo does not carry IPv6 multicast: the demo leaves it out


def test_demo_count() -> None:
    result = run(cli("demo", "--count", "2"))
    assert result.returncode == 0, result
    assert "counters: receiver received=2 delivered=2 dropped=0; sender sent=2" in result.stdout
    assert "'hello multicast #3'" not in result.stdout


def test_interfaces_lists_loopback() -> None:
    result = run(cli("interfaces"))
    assert result.returncode == 0, result
    lo_lines = [line for line in result.out_lines if line.split()[1:2] == ["lo"]]
    assert len(lo_lines) == 1, result.stdout
    assert "127.0.0.1" in lo_lines[0].split()
    assert "LOOPBACK" in lo_lines[0]
    assert "UP" in lo_lines[0].split()[2].split(",")


def test_interfaces_json() -> None:
    result = run(cli("interfaces", "--json"))
    assert result.returncode == 0, result
    assert len(result.out_lines) == 1  # one JSON array
    items = json.loads(result.stdout)
    assert isinstance(items, list)
    for item in items:
        assert set(item) == {
            "name",
            "index",
            "ipv4",
            "ipv6",
            "up",
            "running",
            "multicast",
            "loopback",
        }
    (lo,) = [item for item in items if item["name"] == "lo"]
    assert "127.0.0.1" in lo["ipv4"]
    assert lo["loopback"] is True
    assert lo["up"] is True
    assert isinstance(lo["index"], int)
    assert lo["index"] > 0
    assert lo["multicast"] is False  # Linux's lo lacks IFF_MULTICAST (it carries IPv4 anyway)


def test_console_script_is_python_m() -> None:
    by_module = run(cli("interfaces", "--json"))
    by_script = run([SCRIPT, "interfaces", "--json"])
    assert by_script.returncode == by_module.returncode == 0
    assert json.loads(by_script.stdout) == json.loads(by_module.stdout)
    bad = run([SCRIPT, "listen", "10.0.0.1", "5000", *LO])
    assert assert_one_error_line(bad, 2) == assert_one_error_line(
        run(cli("listen", "10.0.0.1", "5000", *LO)), 2
    )


# -- listen and send ---------------------------------------------------------------------------


def test_listen_send_round_trip_json() -> None:
    # seed S1, S6: datagrams sent to the group arrive at the member, one JSON object each.
    group, port = "239.255.88.1", free_port()
    listen = cli("listen", group, str(port), *LO, "--json", "--count", "3", "--duration", "4")
    with background(listen, ready="joined") as rx:
        assert rx.ready_line == f"joined {group} on lo\n"
        sent = run(
            cli(
                "send",
                group,
                str(port),
                *LO,
                "--count",
                "3",
                "--rate",
                "0",
                "--message",
                "hi there",
            )
        )
        got = rx.finish()
    assert sent.returncode == 0, sent
    (said,) = sent.err_lines
    assert re.fullmatch(
        rf"sent 3 datagrams to {group}:{port} with ttl 1 on lo: 24 bytes in \d+\.\d{{3}} s, "
        r"\d+\.\d datagrams/s, \d+\.\d{3} Mbit/s, 0 errors",
        said,
    ), said
    assert got.returncode == 0, got
    records = [json.loads(line) for line in got.out_lines]
    assert len(records) == 3
    for record in records:
        assert set(record) == JSON_KEYS
        assert record["group"] == group
        assert record["interface"] == "lo"
        assert record["source"] == "127.0.0.1"
        assert record["ttl"] == 1  # read from the datagram (IP_RECVTTL), not guessed
        assert isinstance(record["timestamp_ns"], int)
        assert record["size"] == len(b"hi there")
        assert bytes.fromhex(record["payload"]) == b"hi there"
        assert isinstance(record["source_port"], int)
        assert 0 < record["source_port"] < 65536
    assert len({r["source_port"] for r in records}) == 1  # one sending socket


def test_listen_text_output_and_sized_payloads() -> None:
    group, port = "239.255.88.2", free_port()
    listen = cli("listen", group, str(port), *LO, "--count", "2", "--duration", "4")
    with background(listen, ready="joined") as rx:
        run(cli("send", group, str(port), *LO, "--message", "plain text"))
        run(cli("send", group, str(port), *LO, "--size", "10"))
        got = rx.finish()
    assert got.returncode == 0, got
    text, sized = got.out_lines
    assert re.fullmatch(
        rf"127\.0\.0\.1:\d+ -> {re.escape(group)}:{port} 10 bytes 'plain text'", text
    )
    # --size: the payload starts with its sequence number, 0, as unsigned 64-bit big-endian.
    assert sized.endswith(f"{group}:{port} 10 bytes " + "00" * 10)


def test_stats_for_a_fast_burst_of_sized_datagrams() -> None:
    group, port = "239.255.88.3", free_port()
    listen = cli("listen", group, str(port), *LO, "--stats", "--idle", "0.5", "--duration", "5")
    with background(listen, ready="joined") as rx:
        sent = run(
            cli(
                "send",
                group,
                str(port),
                *LO,
                "--size",
                "64",
                "--count",
                "200",
                "--rate",
                "0",
                "--stats",
            )
        )
        got = rx.finish()
    assert sent.returncode == 0, sent
    (sent_line,) = sent.out_lines
    tx = json.loads(sent_line)
    assert set(tx) == SEND_STATS_KEYS
    # --rate 0: send_many calls of --burst 64 datagrams (UDP GSO where the kernel has it).
    assert (tx["sent"], tx["bytes"], tx["errors"], tx["burst"]) == (200, 200 * 64, 0, 64)
    assert tx["elapsed"] >= 0
    assert tx["pps"] > 0
    assert got.returncode == 0, got
    (stats_line,) = got.out_lines
    stats = json.loads(stats_line)
    assert set(stats) == STATS_KEYS
    assert stats["received"] == 200
    assert stats["bytes"] == 200 * 64
    losses = (stats["dropped"], stats["gaps"], stats["duplicates"], stats["reordered"])
    assert losses == (0, 0, 0, 0)
    assert stats["elapsed"] >= 0
    assert stats["pps"] >= 0


def test_listen_stops_after_count() -> None:
    group, port = "239.255.88.4", free_port()
    listen = cli("listen", group, str(port), *LO, "--json", "--count", "2", "--duration", "8")
    with background(listen, ready="joined") as rx:
        started = time.monotonic()
        run(cli("send", group, str(port), *LO, "--count", "5", "--rate", "0"))
        got = rx.finish()
        took = time.monotonic() - started
    assert got.returncode == 0, got
    assert len(got.out_lines) == 2
    assert took < 4  # stopped by --count, long before --duration


def test_listen_stops_after_duration() -> None:
    group, port = "239.255.88.5", free_port()
    started = time.monotonic()
    result = run(cli("listen", group, str(port), *LO, "--duration", "0.5"))
    took = time.monotonic() - started
    assert result.returncode == 0, result
    assert result.stdout == ""
    assert result.err_lines == [f"joined {group} on lo"]
    assert 0.5 <= took < 4


def test_listen_idle_counts_from_the_first_datagram() -> None:
    group, port = "239.255.88.6", free_port()
    listen = cli("listen", group, str(port), *LO, "--json", "--idle", "0.4", "--duration", "8")
    with background(listen, ready="joined") as rx:
        time.sleep(0.8)
        assert rx.running  # no datagram yet: idle time has not started
        run(cli("send", group, str(port), *LO))
        sent_at = time.monotonic()
        got = rx.finish()
        took = time.monotonic() - sent_at
    assert got.returncode == 0, got
    assert len(got.out_lines) == 1
    assert 0.3 <= took < 4  # stopped by --idle, long before --duration


def test_listen_idle_restarts_with_every_datagram() -> None:
    # Datagrams 0.3 s apart keep a listener with --idle 0.5 going: it stops 0.5 s after the
    # last one, not 0.5 s after the first.
    group, port = "239.255.88.22", free_port()
    listen = cli("listen", group, str(port), *LO, "--json", "--idle", "0.5", "--duration", "8")
    with background(listen, ready="joined") as rx:
        sent = run(cli("send", group, str(port), *LO, "--count", "4", "--rate", "3.3"))
        assert sent.returncode == 0, sent
        got = rx.finish()
    assert got.returncode == 0, got
    assert len(got.out_lines) == 4


TTL_CASES = [
    (("--scope", "host"), 0),  # seed S8: TTL 0 reaches members on this host
    (("--scope", "subnet"), 1),
    (("--scope", "site"), 32),
    (("--scope", "region"), 64),
    (("--scope", "continent"), 128),
    (("--scope", "unrestricted"), 255),
    (("--ttl", "7"), 7),
    (("--ttl", "site"), 32),
    ((), 1),  # seed S7: TTL 1 by default
]


@pytest.mark.parametrize(
    ("option", "ttl"), TTL_CASES, ids=[" ".join(c[0]) or "default" for c in TTL_CASES]
)
def test_send_ttl_and_scope(option: tuple[str, ...], ttl: int) -> None:
    # seed S7, S9: the TTL set by --ttl or by scope name is the one the datagram carries.
    group, port = "239.255.88.7", free_port()
    with ttl_probe(LOOPBACK_V4, group, port) as probe:
        sent = run(cli("send", group, str(port), *LO, *option, "--message", "ttl?"))
        assert sent.returncode == 0, sent
        (said,) = sent.err_lines
        assert f" to {group}:{port} with ttl {ttl} on lo" in said
        assert received_ttl(probe) == (b"ttl?", ttl)


def test_send_rate_paces_datagrams() -> None:
    group, port = "239.255.88.8", free_port()
    result = run(cli("send", group, str(port), *LO, "--count", "10", "--rate", "20", "--stats"))
    assert result.returncode == 0, result
    stats = json.loads(result.stdout)
    assert set(stats) == SEND_STATS_KEYS
    assert (stats["sent"], stats["bytes"], stats["errors"]) == (10, 10 * 19, 0)
    # Ten slots of 1/20 s: the last datagram's slot ends before send does.
    assert stats["elapsed"] >= 0.5
    assert stats["pps"] <= 20.0
    assert stats["mbps"] == pytest.approx(stats["bytes"] * 8 / stats["elapsed"] / 1e6, abs=2e-3)


# -- bad input and failures ----------------------------------------------------------------

G, P = "239.255.88.9", "5000"
BAD_INPUT = [
    (["listen", "10.0.0.1", P, *LO], "'10.0.0.1'"),
    (["listen", "224.0.0.0", P, *LO], "'224.0.0.0'"),
    (["send", "240.0.0.1", P, *LO], "'240.0.0.1'"),
    (["listen", "ff02::1:zz", P, *LO], "'ff02::1:zz'"),
    (["send", "not-an-ip", P, *LO], "'not-an-ip'"),
    (["send", G, "0", *LO], "port 0"),
    (["listen", G, "-1", *LO], "port -1"),
    (["send", G, "-1", *LO], "port -1"),
    (["listen", G, "70000", *LO], "port 70000"),
    (["send", G, "70000", *LO], "port 70000"),
    (["send", G, "http", *LO], "'http'"),
    (["send", G, P, *LO, "--ttl", "-1"], "TTL -1"),
    (["send", G, P, *LO, "--ttl", "256"], "TTL 256"),
    (["send", G, P, *LO, "--ttl", "x"], "'x'"),
    (["send", G, P, *LO, "--scope", "galaxy"], "'galaxy'"),
    (["listen", G, P, "--interface", "nope0"], "'nope0'"),
    (["send", G, P, "--interface", "nope0"], "'nope0'"),
    (["listen", "ff12::a10c:1", P, *LO], "'lo'"),  # no IPv6 multicast on lo
    (["send", "ff12::a10c:1", P, *LO], "'lo'"),
    (["listen", G, P, *LO, "--count", "-3"], "'-3'"),
    (["listen", G, P, *LO, "--duration", "0"], "'0'"),
    (["listen", G, P, *LO, "--idle", "soon"], "'soon'"),
    (["send", G, P, *LO, "--size", "4"], "--size 4"),
    (["send", G, P, *LO, "--rate", "-1"], "--rate -1"),
    (["send", G, P, *LO, "--size", "70000"], "70000"),  # more than one UDP datagram holds
    (["send", G, P, *LO, "--ttl", "1", "--scope", "site"], "--scope"),
    (["demo", "--interface", "nope0"], "'nope0'"),
    (["frobnicate"], "'frobnicate'"),
    ([], "command"),
    (["listen"], "group, port"),
    (["send", G], "port"),
    (["ping", G, P, "nope", *LO], "'nope'"),
    (["ping", G, P, "::1", *LO], "'::1' is IPv6"),
    (["ping", "ff12::a10c:1", P, "fe80::1%nosuch0"], "nosuch0"),
    (["ping", G, P, "239.1.2.3", *LO], "'239.1.2.3' is a multicast group"),
    (["ping", G, P, *LO, "--ttl", "300"], "TTL 300"),
    (["ping", G, P, *LO, "--size", "70000"], "--size 70000"),
    (["ping", G, P, *LO, "--interval", "0"], "'0'"),
    (["ping", "10.0.0.1", P, *LO], "'10.0.0.1'"),
    (["ping", G, "0", *LO], "port 0"),
    (["listen", G, P, *LO, "--json", "--stats"], "--stats"),
]


@pytest.mark.parametrize(("args", "named"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_exits_2_with_one_line(args: list[str], named: str) -> None:
    result = run(cli(*args))
    line = assert_one_error_line(result, 2)
    assert line.startswith("aiomcast: error: ")
    assert named in line
    assert result.stdout == ""


def test_listen_without_route_fails_with_enodev(netlab: lab.Lab) -> None:
    # A fresh namespace has lo and no route for 224.0.0.0/4: the kernel cannot choose an
    # interface for the join (ENODEV), a runtime failure, not bad input.
    host = netlab.host("x")
    result = run(host.command(*cli("listen", "239.1.1.1", "5000", "--duration", "2")))
    line = assert_one_error_line(result, 1)
    assert "ENODEV" in line or "No such device" in line
    assert line.startswith("aiomcast: listen failed: ")
    assert result.stdout == ""


def test_listen_without_interface_joins_where_the_route_points(netlab: lab.Lab) -> None:
    # With no --interface the kernel picks the interface by route; "joined" names it.
    x, y = netlab.host("x"), netlab.host("y")
    ends = netlab.link(x, y)
    x.ip("route", "add", "224.0.0.0/4", "dev", ends.a_name)
    result = run(x.command(*cli("listen", "239.1.1.1", "5000", "--duration", "0.3")))
    assert result.returncode == 0, result
    assert result.err_lines == [f"joined 239.1.1.1 on {ends.a_name}"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_listen_with_stats(signum: int) -> None:
    group, port = "239.255.88.10", free_port()
    listen = cli("listen", group, str(port), *LO, "--stats", "--duration", "20")
    with background(listen, ready="joined") as rx:
        sent = run(
            cli("send", group, str(port), *LO, "--size", "32", "--count", "5", "--rate", "0")
        )
        assert sent.returncode == 0, sent
        time.sleep(0.3)  # let the listener read them
        assert rx.running
        rx.send_signal(signum)
        got = rx.finish()
    assert got.returncode == 0, got
    assert "Traceback" not in got.stderr
    (line,) = got.out_lines
    stats = json.loads(line)
    assert set(stats) == STATS_KEYS
    assert (stats["received"], stats["bytes"], stats["gaps"]) == (5, 5 * 32, 0)


def test_sigint_stops_endless_send_with_stats() -> None:
    group, port = "239.255.88.11", free_port()
    endless = cli("send", group, str(port), *LO, "--count", "0", "--rate", "200", "--stats")
    with ttl_probe(LOOPBACK_V4, group, port) as probe, background(endless, ready=None) as tx:
        assert received_ttl(probe) == (b"hello from aiomcast", 1)  # it is sending
        time.sleep(0.3)
        assert tx.running
        tx.send_signal(signal.SIGINT)
        got = tx.finish()
    assert got.returncode == 0, got
    assert "Traceback" not in got.stderr
    (line,) = got.out_lines
    stats = json.loads(line)
    assert stats["sent"] >= 10  # about 60 in 0.3 s at 200 per second
    assert stats["sent"] <= 200 * stats["elapsed"] + 1
    assert stats["errors"] == 0


@pytest.mark.parametrize(
    "group",
    [
        "ff15::a10c:77",  # site-local scope
        "ff12::a10c:77",  # link-local scope: an address that needs an interface (scope id)
    ],
)
def test_ipv6_round_trip_across_a_veth_pair(netlab: lab.Lab, group: str) -> None:
    # seed S1, S2, S5: an IPv6 group (ff00::/8) sent from one host reaches a member on another.
    a, b = netlab.host("a"), netlab.host("b")
    ends = netlab.link(a, b)
    port = "5077"
    listen = b.command(
        *cli(
            "listen",
            group,
            port,
            "--interface",
            ends.b_name,
            "--json",
            "--count",
            "2",
            "--duration",
            "5",
        )
    )
    with background(listen, ready="joined") as rx:
        assert rx.ready_line == f"joined {group} on {ends.b_name}\n"
        sent = run(
            a.command(
                *cli(
                    "send",
                    group,
                    port,
                    "--interface",
                    ends.a_name,
                    "--count",
                    "2",
                    "--rate",
                    "0",
                    "--message",
                    "over veth",
                )
            )
        )
        got = rx.finish()
    assert sent.returncode == 0, sent
    assert got.returncode == 0, got
    shown = a.ip("-6", "addr", "show", "dev", ends.a_name).stdout
    a_addresses = {ipaddress.IPv6Address(m) for m in re.findall(r"inet6 ([0-9a-f:]+)/", shown)}
    records = [json.loads(line) for line in got.out_lines]
    assert len(records) == 2
    for record in records:
        assert set(record) == JSON_KEYS
        assert record["group"] == group
        assert record["interface"] == ends.b_name
        assert ipaddress.IPv6Address(record["source"]) in a_addresses
        assert bytes.fromhex(record["payload"]) == b"over veth"
        assert record["size"] == 9


# -- review findings, pinned ------------------------------------------------------------------


def test_sigterm_wakes_a_slowly_pacing_send() -> None:
    # One datagram every 5 s: a signal must not wait for the next one to be due.
    slow = cli("send", "239.255.88.12", str(free_port()), *LO, "--count", "3", "--rate", "0.2")
    with background(slow, ready=None) as tx:
        time.sleep(0.5)
        started = time.monotonic()
        tx.send_signal(signal.SIGTERM)
        got = tx.finish()
        took = time.monotonic() - started
    assert got.returncode == 0, got
    assert took < 2.0, f"send took {took:.1f} s to stop"
    assert got.stderr.strip().startswith("sent 1 datagram to")


def test_send_duration_bounds_a_slow_rate() -> None:
    started = time.monotonic()
    got = run(
        cli(
            "send",
            "239.255.88.13",
            str(free_port()),
            *LO,
            "--count",
            "0",
            "--rate",
            "0.25",
            "--duration",
            "1",
            "--stats",
        ),
        timeout=5,
    )
    took = time.monotonic() - started
    assert got.returncode == 0, got
    assert json.loads(got.stdout)["sent"] == 1
    assert took < 3.0, f"--duration 1 took {took:.1f} s"


@pytest.mark.parametrize("size", ["999999999999", "65508", "7"])
def test_send_size_outside_the_datagram_is_bad_input(size: str) -> None:
    line = assert_one_error_line(run(cli("send", "239.255.88.14", "5000", *LO, "--size", size)), 2)
    assert size in line


def test_send_timestamps_give_listen_one_way_latency() -> None:
    # The sender's clock and the receiver's are one here (one host), as --timestamps needs.
    group, port = "239.255.88.16", free_port()
    listen = cli("listen", group, str(port), *LO, "--stats", "--count", "20", "--duration", "8")
    with background(listen, ready="joined") as rx:
        before = time.time_ns()
        sent = run(
            cli("send", group, str(port), *LO, "--timestamps", "--count", "20", "--rate", "200")
        )
        after = time.time_ns()
        got = rx.finish()
    assert sent.returncode == 0, sent
    assert got.returncode == 0, got
    stats = json.loads(got.stdout)
    assert (stats["received"], stats["bytes"], stats["gaps"]) == (20, 20 * 64, 0)
    assert stats["unnumbered"] == 0
    latency = stats["latency"]
    assert latency["count"] == 20
    assert latency["negative"] == 0
    assert 0 < latency["p50_us"] <= latency["p90_us"] <= latency["p99_us"] <= latency["max_us"]
    assert latency["max_us"] * 1000 <= after - before  # each sent and read within the run
    assert sum(count for _, count in latency["histogram_us"]) == 20
    assert stats["jitter_ms"] is not None


def test_send_timestamped_payload_layout() -> None:
    group, port = "239.255.88.17", free_port()
    with ttl_probe(LOOPBACK_V4, group, port) as probe:
        before = time.time_ns()
        got = run(cli("send", group, str(port), *LO, "--timestamps", "--size", "24"))
        assert got.returncode == 0, got
        payload, _ = received_ttl(probe)
    assert len(payload) == 24
    assert payload[:8] == bytes(8)  # sequence number 0
    assert payload[8:12] == b"amc\x01"  # the marker, flag TIMESTAMPED
    assert before <= int.from_bytes(payload[12:20], "big") <= time.time_ns()
    assert payload[20:] == bytes(4)


def test_send_burst_sends_datagrams_back_to_back() -> None:
    # Two bursts of 5 at 10 per second: the second burst falls due 0.5 s after the first.
    group, port = "239.255.88.18", free_port()
    listen = cli("listen", group, str(port), *LO, "--json", "--count", "10", "--duration", "8")
    with background(listen, ready="joined") as rx:
        sent = run(
            cli(
                "send",
                group,
                str(port),
                *LO,
                "--size",
                "16",
                "--count",
                "10",
                "--rate",
                "10",
                "--burst",
                "5",
                "--stats",
            )
        )
        got = rx.finish()
    assert sent.returncode == 0, sent
    stats = json.loads(sent.stdout)
    assert (stats["sent"], stats["burst"], stats["rate"]) == (10, 5, 10.0)
    assert stats["elapsed"] >= 1.0  # two slots of 5 / 10 s
    arrived = [json.loads(line)["timestamp_ns"] / 1e9 for line in got.out_lines]
    assert len(arrived) == 10
    first, second = arrived[:5], arrived[5:]
    assert max(first) - min(first) < 0.1
    assert max(second) - min(second) < 0.1
    assert min(second) - max(first) > 0.3


def test_send_duration_ends_an_unpaced_send() -> None:
    started = time.monotonic()
    got = run(
        cli(
            "send",
            "239.255.88.20",
            str(free_port()),
            *LO,
            "--size",
            "64",
            "--count",
            "0",
            "--rate",
            "0",
            "--duration",
            "0.5",
            "--stats",
        ),
        timeout=10,
    )
    took = time.monotonic() - started
    assert got.returncode == 0, got
    stats = json.loads(got.stdout)
    assert stats["sent"] > 64
    assert 0.5 <= stats["elapsed"] < 2.0
    assert took < 5.0


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--timestamps", "--size", "19"], "--size 19"),
        (["--timestamps", "--message", "x"], "--message"),
        (["--timestamps", "--format", "iperf2"], "iperf2"),
        (["--burst", "0"], "'0'"),
        (["--burst", "many"], "'many'"),
        (["--rate", "nan"], "--rate nan"),
        (["--rate", "inf"], "--rate inf"),
        (["--format", "iperf2", "--size", "15"], "--size 15"),
    ],
)
def test_send_bad_measurement_options(extra: list[str], named: str) -> None:
    line = assert_one_error_line(run(cli("send", "239.255.88.21", "5000", *LO, *extra)), 2)
    assert named in line


def test_send_message_that_is_not_utf8_sends_its_bytes() -> None:
    group, port = "239.255.88.15", free_port()
    with ttl_probe(LOOPBACK_V4, group, port) as probe:
        got = run([*cli("send", group, str(port), *LO), "--message", "caf\udce9"])
        assert got.returncode == 0, got
        assert received_ttl(probe) == (b"caf\xe9", 1)


def test_send_hex_sends_its_bytes() -> None:
    group, port = "239.255.88.23", free_port()
    with ttl_probe(LOOPBACK_V4, group, port) as probe:
        got = run(cli("send", group, str(port), *LO, "--hex", "00ff10 7f"))
        assert got.returncode == 0, got
        assert received_ttl(probe) == (b"\x00\xff\x10\x7f", 1)


def test_send_file_sends_its_bytes(tmp_path: pathlib.Path) -> None:
    group, port = "239.255.88.24", free_port()
    path = tmp_path / "payload.bin"
    path.write_bytes(bytes(range(256)))
    with ttl_probe(LOOPBACK_V4, group, port) as probe:
        got = run(cli("send", group, str(port), *LO, "--file", str(path)))
        assert got.returncode == 0, got
        assert received_ttl(probe) == (bytes(range(256)), 1)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--hex", "0g"], "--hex '0g'"),
        (["--hex", "abc"], "--hex 'abc'"),
        (["--file", "/nonexistent/payload"], "'/nonexistent/payload'"),
        (["--hex", "00", "--message", "x"], "--message"),
        (["--hex", "00", "--timestamps"], "not --hex"),
        (["--file", "/etc/hostname", "--format", "iperf2"], "not --file"),
    ],
)
def test_send_bad_payload_options(extra: list[str], named: str) -> None:
    line = assert_one_error_line(run(cli("send", "239.255.88.25", "5000", *LO, *extra)), 2)
    assert named in line


def test_send_file_larger_than_a_datagram_is_bad_input(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(70000))
    line = assert_one_error_line(
        run(cli("send", "239.255.88.26", "5000", *LO, "--file", str(path))), 2
    )
    assert f"--file {str(path)!r} holds more than the IPv4 UDP limit of 65507 bytes" in line


def test_version() -> None:
    import aiomcast

    got = run(cli("--version"))
    assert got.returncode == 0, got
    assert got.out_lines == [f"aiomcast {aiomcast.__version__}"]


def test_every_argument_has_help_that_gives_its_default() -> None:
    import argparse

    from aiomcast.cli import _build_parser

    parser = _build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in commands.choices.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.dest} has no help"
            if action.default not in (None, False):
                assert "default" in action.help, f"{name} {action.dest}: {action.help}"


def test_help_texts_carry_no_internal_labels() -> None:
    # The facts the tests name (S1-S15) are the project's, not its users'.
    for command in ("listen", "send", "ping", "demo", "interfaces"):
        got = run(cli(command, "--help"))
        assert got.returncode == 0, got
        assert not re.search(r"\bS\d+\b", got.stdout), got.stdout


@pytest.mark.root("a veth pair in the private namespace")
def test_a_ttl_0_send_says_it_went_over_lo(local_veth: LinkPair | None) -> None:
    # aiomcast sends IPv4 TTL 0 over the loopback interface (host scope), whatever -i says.
    assert local_veth is not None
    v4 = local_veth.ipv4
    group, port = "239.255.88.27", free_port()
    got = run(cli("send", group, str(port), "-i", v4.interface, "--ttl", "0"))
    assert got.returncode == 0, got
    (said,) = got.err_lines
    assert "with ttl 0 on lo (TTL 0 stays on this host): " in said, said
    assert v4.interface not in said


@pytest.mark.root("a veth pair in the private namespace")
def test_listen_all_interfaces_reports_each_failure_and_follows_changes() -> None:
    # Every interface from the command line: a down interface is reported and skipped, the
    # others are joined; with --follow it is joined once it comes up with an address.
    # --all-interfaces joins everywhere: only ever inside the suite's private namespace.
    assert lab.in_private_network()
    group, port = "239.255.88.40", free_port()
    run(["ip", "link", "add", "amcl0", "type", "veth", "peer", "name", "amcl1"])
    try:
        run(["ip", "addr", "add", "10.223.0.1/24", "dev", "amcl0"])
        run(["ip", "link", "set", "amcl0", "up"])
        listen = cli(
            "listen", group, str(port), "--all-interfaces", "--follow", "--count", "1",
            "--duration", "8",
        )  # fmt: skip
        with background(listen, ready=None) as rx:
            time.sleep(1.0)
            run(["ip", "addr", "add", "10.223.0.2/24", "dev", "amcl1"])
            run(["ip", "link", "set", "amcl1", "up"])
            time.sleep(1.0)
            sent = run(cli("send", group, str(port), *LO, "--message", "everywhere"))
            got = rx.finish()
    finally:
        run(["ip", "link", "del", "amcl0"])
    assert sent.returncode == 0, sent
    assert got.returncode == 0, got
    assert "not joined on amcl1: interface 'amcl1' is down" in got.err_lines
    joined = next(line for line in got.err_lines if line.startswith(f"joined {group} on "))
    assert {"lo", "amcl0"} <= set(joined.removeprefix(f"joined {group} on ").split(","))
    changes = [line for line in got.err_lines if line.startswith("interface change: amcl1")]
    assert any(f"joined {group}" in line for line in changes), got.err_lines
    assert got.out_lines[0].endswith("10 bytes 'everywhere'")


def test_listen_stats_counts_reordering_and_duplicates_exactly() -> None:
    # This kernel has no netem to reorder on a link, so the sender reorders itself:
    # 0 1 3 2 4 4 5 -> one late arrival (2), one duplicate (4), no gap.
    group, port = "239.255.88.41", free_port()
    listen = cli("listen", group, str(port), *LO, "--stats", "--count", "7", "--duration", "5")
    with background(listen, ready="joined") as rx:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            sock.setsockopt(
                socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1")
            )
            for number in (0, 1, 3, 2, 4, 4, 5):
                sock.sendto(pack_sequence(number, 64), (group, port))
        got = rx.finish()
    assert got.returncode == 0, got
    stats = json.loads(got.out_lines[0])
    assert (stats["received"], stats["gaps"]) == (7, 0)
    assert (stats["reordered"], stats["duplicates"]) == (1, 1)
