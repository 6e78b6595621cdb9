"""The demo sends nothing off the host: proven with a capture on an uplink that has the route.

A namespace gets a veth "uplink" carrying the default routes (IPv4 and IPv6), exactly where a
stray membership report or datagram would go. tcpdump on the uplink sees nothing while
``aiomcast demo`` runs, and sees the datagram of a positive control that uses the default route.
"""

from __future__ import annotations

import time

import pytest

from aiomcast.testing import lab
from tests.helpers import start_capture, stop_capture
from tests.processes import AIOMCAST, run


@pytest.fixture
def uplinked(netlab: lab.Lab) -> lab.Host:
    host, upstream = netlab.host("h"), netlab.host("up")
    ends = netlab.link(host, upstream)
    host.ip("route", "add", "default", "via", ends.b_ipv4)
    host.ip("-6", "route", "add", "default", "via", ends.b_ipv6)
    host.ip("route", "add", "224.0.0.0/4", "dev", ends.a_name)
    return host


def test_demo_sends_nothing_out_of_the_uplink(uplinked: lab.Host) -> None:
    # A link that just came up sends the kernel's own unsolicited MLD reports for its
    # addresses (solicited-node groups) for about a second: let them pass first.
    time.sleep(3)
    capture = start_capture(uplinked, "veth0")
    demo = run(uplinked.command(*AIOMCAST, "demo"), timeout=30)
    seen = stop_capture(capture)
    assert demo.returncode == 0, demo.stderr
    assert "5 of 5 datagrams arrived" in demo.stdout
    assert seen == []


@pytest.mark.parametrize(("setting", "expected"), [(-1, 2), (0, 0)])
def test_router_solicitations_repeat_unless_turned_off(
    netlab: lab.Lab, setting: int, expected: int
) -> None:
    # Pinned kernel behaviour: with Linux's default (-1: without end; the first at once, then
    # every 4 s and backing off) a host solicits routers well after a link came up, which
    # broke the capture above once in CI. The lab turns them off in every namespace (0).
    host, peer = netlab.host("h"), netlab.host("peer")
    ends = netlab.link(host, peer)
    host.run("sysctl", "-qw", f"net.ipv6.conf.{ends.a_name}.router_solicitations={setting}")
    host.ip("link", "set", ends.a_name, "down")
    capture = start_capture(peer, ends.b_name, "icmp6 and ip6[40] == 133")
    host.ip("link", "set", ends.a_name, "up")
    time.sleep(6)
    seen = stop_capture(capture, settle=0)
    assert len(seen) == expected, seen
    assert all("router solicitation" in line for line in seen)


def test_positive_control_default_route_is_captured(uplinked: lab.Host) -> None:
    capture = start_capture(uplinked, "veth0")
    send = run(uplinked.command(*AIOMCAST, "send", "239.1.1.1", "5000"), timeout=30)
    seen = stop_capture(capture)
    assert send.returncode == 0, send.stderr
    assert any("239.1.1.1.5000: UDP" in line for line in seen), seen
