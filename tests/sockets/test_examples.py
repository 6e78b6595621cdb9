"""The programs in examples/, run as subprocesses on the loopback interface (their default).

The veth test (expanding-ring search across one hop) needs root. Seed facts are named as
``seed Sn``.
"""

from __future__ import annotations

import re
import signal
import sys

import pytest

from aiomcast.testing import lab
from tests.processes import background, example, free_port, run


def test_receiver_prints_what_sender_sends() -> None:
    # seed S1, S6: datagrams sent to the group reach the member.
    group, port = "239.255.99.1", str(free_port())
    with background([*example("receiver"), group, port, "--count", "3"], ready="listening") as rx:
        assert rx.ready_line == f"listening on {group}:{port} via lo\n"
        sent = run(
            [
                *example("sender"),
                group,
                port,
                "--count",
                "3",
                "--interval",
                "0.05",
                "--message",
                "ping",
                "--ttl",
                "site",
            ]
        )
        got = rx.finish()
    assert sent.returncode == 0, sent
    assert sent.out_lines == [f"sent 'ping #{n}' to {group}:{port} with ttl 32" for n in (1, 2, 3)]
    assert got.returncode == 0, got
    assert len(got.out_lines) == 3
    for n, line in enumerate(got.out_lines, 1):
        assert re.fullmatch(rf"127\.0\.0\.1:\d+ ping #{n}", line), line


def test_receiver_metadata_shows_group_interface_and_ttl() -> None:
    # The receiver example with --metadata prints what the kernel saw.
    group, port = "239.255.99.5", str(free_port())
    receiver = [*example("receiver"), group, port, "--count", "2", "--metadata"]
    with background(receiver, ready="listening") as rx:
        sent = run([*example("sender"), group, port, "--count", "2", "--interval", "0.05"])
        got = rx.finish()
    assert sent.returncode == 0, sent
    assert got.returncode == 0, got
    assert len(got.out_lines) == 2
    for n, line in enumerate(got.out_lines, 1):
        pattern = rf"127\.0\.0\.1:\d+ -> {re.escape(group)} on lo ttl 1 at \d+\.\d{{6}} .*#{n}"
        assert re.fullmatch(pattern, line), line


def test_examples_default_to_loopback_and_report_errors() -> None:
    # Defaults: group 239.255.77.77 port 5077 on lo. A bad interface is one line, exit 1.
    with background([*example("receiver"), "--count", "1"], ready="listening") as rx:
        assert rx.ready_line == "listening on 239.255.77.77:5077 via lo\n"
        sent = run([*example("sender"), "--count", "1"])
        got = rx.finish()
    assert sent.out_lines == ["sent 'hello, multicast #1' to 239.255.77.77:5077 with ttl 1"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+ hello, multicast #1", got.stdout.strip())
    bad = run([*example("receiver"), "--interface", "nope0"])
    assert bad.returncode == 1
    assert len(bad.err_lines) == 1, bad.stderr
    assert bad.err_lines[0].startswith("receiver: interface 'nope0' does not exist")
    assert "Traceback" not in bad.stderr


def test_chat_lines_reach_the_other_chat() -> None:
    group, port = "239.255.99.2", str(free_port())

    def chat(name: str) -> list[str]:
        return [*example("chat"), group, port, "--name", name]

    with (
        background(chat("ada"), ready="chatting in", stdin=True) as ada,
        background(chat("bob"), ready="chatting in", stdin=True) as bob,
    ):
        assert ada.ready_line == f"chatting in {group}:{port} via lo as ada; Ctrl-D ends\n"
        ada.write("hello bob\n")
        assert bob.read_line() == "ada> hello bob\n"
        bob.write("hi ada, bye\n")
        assert ada.read_line() == "bob> hi ada, bye\n"
        ada_done = ada.finish()  # end of input ends the chat
        bob_done = bob.finish()
    assert ada_done.returncode == bob_done.returncode == 0
    # Each chat hears its own lines (loopback, seed S14) but does not print them.
    assert ada_done.stdout == "bob> hi ada, bye\n"
    assert bob_done.stdout == "ada> hello bob\n"


@pytest.mark.parametrize(
    ("ada_backend", "bob_backend"),
    [("asyncio", "asyncio"), ("uvloop", "uvloop"), ("trio", "trio"), ("trio", "uvloop")],
)
def test_anyio_chat_runs_unchanged_on_every_backend(ada_backend: str, bob_backend: str) -> None:
    # One program, three anyio backends; chats on different backends talk too.
    group, port = "239.255.99.6", str(free_port())

    def chat(name: str, backend: str) -> list[str]:
        return [*example("anyio_chat"), group, port, "--name", name, "--backend", backend]

    with (
        background(chat("ada", ada_backend), ready="chatting in", stdin=True) as ada,
        background(chat("bob", bob_backend), ready="chatting in", stdin=True) as bob,
    ):
        assert ada.ready_line == (
            f"chatting in {group}:{port} via lo as ada on {ada_backend}; Ctrl-D ends\n"
        )
        ada.write("hello bob\n")
        assert bob.read_line() == "ada> hello bob\n"
        bob.write("hi ada, bye\n")
        assert ada.read_line() == "bob> hi ada, bye\n"
        ada_done = ada.finish()  # end of input ends the chat
        bob_done = bob.finish()
    assert ada_done.returncode == bob_done.returncode == 0, (ada_done, bob_done)
    assert ada_done.stdout == "bob> hi ada, bye\n"
    assert bob_done.stdout == "ada> hello bob\n"


def test_anyio_chat_reports_errors_in_one_line() -> None:
    bad = run([*example("anyio_chat"), "--interface", "nope0", "--backend", "trio"])
    assert bad.returncode == 1
    assert len(bad.err_lines) == 1, bad.stderr
    assert bad.err_lines[0].startswith("chat: interface 'nope0' does not exist")


def test_background_commands_get_sigint_even_when_the_suite_ignores_it() -> None:
    # Started as `pytest &` from a non-interactive shell, the suite runs with SIGINT ignored
    # and a child would inherit that across exec (POSIX), so the examples below would never
    # see Ctrl-C. background() starts its commands with the default disposition.
    show = [
        sys.executable,
        "-c",
        "import signal, sys; ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN; "
        "print('SIGINT ignored' if ignored else 'SIGINT handled', file=sys.stderr)",
    ]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with background(show, ready="SIGINT handled") as child:
            assert child.finish().returncode == 0
        inherited = run(show)  # a child started otherwise inherits the ignoring
    finally:
        signal.signal(signal.SIGINT, previous)
    assert inherited.stderr.strip() == "SIGINT ignored"


def test_ring_search_finds_a_responder_on_this_host_at_ttl_0() -> None:
    # seed S8, S10: the TTL 0 query stays on this host but reaches its members, so a local
    # responder is found at the first step.
    group, port = "239.255.99.3", str(free_port())
    responder = [*example("ring_search"), group, port, "--respond", "--name", "local-one"]
    with background(responder, ready="answering queries") as rsp:
        found = run([*example("ring_search"), group, port, "--wait", "0.5", "--max-ttl", "3"])
        rsp.send_signal(signal.SIGINT)
        answered = rsp.finish()
    assert found.returncode == 0, found
    assert re.fullmatch(
        rf"found 'local-one' at TTL 0 \(127\.0\.0\.1:{port}\), after trying TTL 0",
        found.stdout.strip(),
    ), found.stdout
    assert answered.returncode == 0, answered
    assert re.fullmatch(r"answered 127\.0\.0\.1:\d+", answered.stdout.strip())


def test_ring_search_without_responder_tries_every_ttl() -> None:
    group, port = "239.255.99.4", str(free_port())
    result = run([*example("ring_search"), group, port, "--wait", "0.2", "--max-ttl", "2"])
    assert result.returncode == 1, result
    assert result.err_lines == ["no responder within TTL 0-2"]
    assert result.stdout == ""


def test_ring_search_finds_a_neighbour_at_ttl_1(netlab: lab.Lab) -> None:
    # seed S8, S10: a TTL 0 query is sent on no subnet; the responder one link away answers
    # the TTL 1 query.
    a, b = netlab.host("a"), netlab.host("b")
    ends = netlab.link(a, b)
    group, port = "239.255.99.5", "5079"
    responder = b.command(
        *example("ring_search"), group, port, "--respond", "--name", "b", "--interface", ends.b_name
    )
    with background(responder, ready="answering queries") as rsp:
        found = run(
            a.command(
                *example("ring_search"),
                group,
                port,
                "--wait",
                "0.4",
                "--max-ttl",
                "4",
                "--interface",
                ends.a_name,
            )
        )
        rsp.send_signal(signal.SIGINT)
        answered = rsp.finish()
    assert found.returncode == 0, found
    assert found.stdout.strip() == (
        f"found 'b' at TTL 1 ({ends.b_ipv4}:{port}), after trying TTL 0-1"
    )
    assert answered.returncode == 0, answered
    assert answered.out_lines == [
        line for line in answered.out_lines if line.startswith(f"answered {ends.a_ipv4}:")
    ]
    assert len(answered.out_lines) == 1  # only the TTL 1 query crossed the link


def test_all_interfaces_on_loopback() -> None:
    # The default joins on lo only: nothing leaves the host.
    group, port = "239.255.99.6", str(free_port())
    argv = [*example("all_interfaces"), group, port, "--count", "1"]
    with background(argv, ready="listening") as rx:
        assert rx.ready_line == f"listening on {group}:{port} via 1 of 1 interfaces\n"
        assert rx.read_line() == f"joined {group} on lo\n"
        sent = run([*example("sender"), group, port, "--count", "1", "--message", "hi"])
        got = rx.finish()
    assert sent.returncode == 0, sent
    assert got.returncode == 0, got
    assert re.fullmatch(r"127\.0\.0\.1:\d+ hi #1", got.out_lines[-1]), got.out_lines


def test_all_interfaces_follows_an_interface_that_comes_up(netlab: lab.Lab) -> None:
    # --all --follow in a namespace with one usable and one down interface: the down one is
    # reported, joined once it comes up, and a datagram sent on it arrives.
    host, peer = netlab.host("h"), netlab.host("peer")
    netlab.link(host, peer, a_name="up0", b_name="up0", subnet=1)
    ends = netlab.link(host, peer, a_name="late0", b_name="late0", subnet=2)
    host.ip("link", "set", "late0", "down")
    group, port = "239.255.99.7", "5080"
    argv = host.command(*example("all_interfaces"), group, port, "--all", "--follow", "-c", "1")
    with background(argv, ready="listening") as rx:
        assert rx.ready_line == f"listening on {group}:{port} via 2 of 3 interfaces\n"
        assert [rx.read_line() for _ in range(3)] == [
            f"joined {group} on lo\n",
            f"joined {group} on up0\n",
            "not joined on late0: interface 'late0' is down\n",
        ]
        host.ip("link", "set", "late0", "up")
        line = rx.read_line()
        assert line.startswith("change: late0 (#"), line
        assert f"up; joined {group}" in line
        sent = run(
            peer.command(*example("sender"), group, port, "-i", "late0", "-c", "1", "-m", "on")
        )
        got = rx.finish()
    assert sent.returncode == 0, sent
    assert got.returncode == 0, got
    assert re.fullmatch(rf"{re.escape(ends.b_ipv4)}:\d+ on #1", got.out_lines[-1]), got.out_lines


def test_ssm_receiver_hears_only_its_source() -> None:
    # Over lo, without root: the sender's source is 127.0.0.1. A receiver joined to
    # (127.0.0.1, G) prints its datagrams; one joined to (127.0.0.2, G) gets none of them.
    group, port = "232.255.99.6", str(free_port())
    mine = [*example("ssm_receiver"), group, port, "--count", "2"]
    other = [*example("ssm_receiver"), group, port, "--source", "127.0.0.2", "--count", "1"]
    with (
        background(mine, ready="listening") as rx,
        background(other, ready="listening") as stranger,
    ):
        assert rx.ready_line == f"listening on {group}:{port} via lo from 127.0.0.1\n"
        sent = run([*example("sender"), group, port, "--count", "2", "--message", "ssm"])
        got = rx.finish()
        stranger.send_signal(signal.SIGINT)
        ignored = stranger.finish()
    assert sent.returncode == 0, sent
    assert got.returncode == 0, got
    assert [re.sub(r":\d+ ", ":PORT ", line) for line in got.out_lines] == [
        "127.0.0.1:PORT ssm #1",
        "127.0.0.1:PORT ssm #2",
    ]
    assert ignored.returncode == 0, ignored
    assert ignored.stdout == ""
