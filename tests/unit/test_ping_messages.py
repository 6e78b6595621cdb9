"""aiomcast/_ping.py without sockets: the messages and the per-peer counts of ``ping``."""

from __future__ import annotations

import math
import re

import pytest

from aiomcast import Family, InvalidArgumentError
from aiomcast._ping import (
    ANSWER_GROUP,
    ANSWER_UNICAST,
    HEADER,
    QUERY,
    Message,
    PeerStats,
    Way,
    check_peer,
    summary_line,
)


def test_a_query_and_its_answers_round_trip() -> None:
    query = Message(QUERY, b"12345678", 7, 123_456_789, "fe80::1%n1")
    data = query.pack()
    assert len(data) == HEADER.size + len("fe80::1%n1")
    assert Message.unpack(data) == query
    padded = query.pack(200)
    assert len(padded) == 200
    assert Message.unpack(padded) == query
    for kind in (ANSWER_UNICAST, ANSWER_GROUP):
        answer = Message.unpack(query.answer(kind).pack())
        assert answer is not None
        assert (answer.kind, answer.querier, answer.number) == (kind, b"12345678", 7)
        assert (answer.sent_ns, answer.peer) == (123_456_789, "fe80::1%n1")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"amcping",
        b"hello from aiomcast" * 3,
        Message(QUERY, b"x" * 8, 1, 2, "10.0.0.1").pack()[:-1],  # the peer cut short
        b"amcping\x02" + bytes(40),  # another version
        b"amcping\x01Z" + bytes(40),  # an unknown kind
        Message(QUERY, b"x" * 8, 1, 2, "10.0.0.1").pack().replace(b"10.0.0.1", b"\xff" * 8),
    ],
)
def test_other_traffic_is_not_a_message(payload: bytes) -> None:
    assert Message.unpack(payload) is None


def test_a_way_counts_loss_round_trips_and_duplicates() -> None:
    way = Way()
    for number, rtt in ((0, 1.0), (1, 3.0), (2, 2.0)):
        assert way.add(number, rtt, 63)
    assert not way.add(1, 9.0, 63)  # a duplicate: not a round trip
    report = way.report(sent=4)
    assert (report["sent"], report["received"], report["duplicates"]) == (4, 3, 1)
    assert report["loss_pct"] == 25.0
    assert report["rtt_ms"] == {
        "min": 1.0,
        "avg": 2.0,
        "max": 3.0,
        "stddev": round(math.sqrt(2 / 3), 3),
    }
    assert report["ttl"] == 63


def test_no_answer_is_all_loss() -> None:
    stats = PeerStats(sent=3)
    report = stats.report()
    assert report["unicast"]["loss_pct"] == report["multicast"]["loss_pct"] == 100.0
    assert report["unicast"]["rtt_ms"] is None
    assert summary_line("10.0.0.9", "unicast", report["unicast"]) == (
        "10.0.0.9 :   unicast, xmt/rcv/%loss = 3/0/100%, min/avg/max/std-dev = -, "
        "duplicates 0, ttl -"
    )
    assert PeerStats().report()["unicast"]["loss_pct"] is None  # nothing sent yet


@pytest.mark.parametrize(
    ("text", "family"),
    [("10.0.0.1", Family.IPV4), ("fd00::1", Family.IPV6)],
)
def test_peers_are_unicast_addresses(text: str, family: Family) -> None:
    # Zones name interfaces, which a unit test cannot ask for: tests/sockets/test_cli.py.
    assert check_peer(text, family) == text


@pytest.mark.parametrize(
    ("text", "family", "words"),
    [
        ("host.example", Family.IPV4, "'host.example' is not an IP address"),
        ("", Family.IPV4, "'' is not an IP address"),
        ("10.0.0.256", Family.IPV4, "'10.0.0.256'"),
        ("fd00::1", Family.IPV4, "'fd00::1' is IPv6"),
        ("239.1.2.3", Family.IPV4, "'239.1.2.3' is a multicast group"),
        ("0.0.0.0", Family.IPV4, "unspecified"),
        ("fe80::1%" + "x" * 70, Family.IPV6, "too long"),
    ],
)
def test_other_peers_are_refused_by_name(text: str, family: Family, words: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^peer .*{re.escape(words)}"):
        check_peer(text, family)
