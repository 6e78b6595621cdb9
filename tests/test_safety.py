"""The demo sends nothing off the host: proven with a capture on an uplink that has the route.

A namespace gets a veth "uplink" carrying the default routes (IPv4 and IPv6), exactly where a
stray membership report or datagram would go. tcpdump on the uplink sees nothing while
``aiomcast demo`` runs, and sees the datagram of a positive control that uses the default route.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from aiomcast import lab
from tests.helpers import require_root
from tests.processes import AIOMCAST, run


def _capture(host: lab.Host, interface: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        host.command("tcpdump", "-i", interface, "-nn", "-l", "-U", "-p"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for _ in range(5):  # "listening on IF, ..." once the capture is live
        line = proc.stderr.readline()
        seen.append(line)
        if "listening on" in line:
            return proc
    proc.kill()
    proc.communicate()
    raise AssertionError(f"tcpdump did not start: {seen}")


def _stop(proc: subprocess.Popen[str]) -> list[str]:
    time.sleep(0.5)
    proc.terminate()
    out, _err = proc.communicate(timeout=10)
    return [line for line in out.splitlines() if line.strip()]


@pytest.fixture
def uplinked(netlab: lab.Lab) -> lab.Host:
    require_root("the capture")
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
    capture = _capture(uplinked, "veth0")
    demo = run(uplinked.command(*AIOMCAST, "demo"), timeout=30)
    seen = _stop(capture)
    assert demo.returncode == 0, demo.stderr
    assert "5 of 5 datagrams arrived" in demo.stdout
    assert seen == []


def test_positive_control_default_route_is_captured(uplinked: lab.Host) -> None:
    capture = _capture(uplinked, "veth0")
    send = run(uplinked.command(*AIOMCAST, "send", "239.1.1.1", "5000"), timeout=30)
    seen = _stop(capture)
    assert send.returncode == 0, send.stderr
    assert any("239.1.1.1.5000: UDP" in line for line in seen), seen
