"""``aiomcast demo --interface IF`` runs IPv4 and IPv6 on a real (veth) interface."""

from __future__ import annotations

import subprocess
import sys

from aiomcast import lab


def test_demo_on_an_interface_runs_both_families(netlab: lab.Lab) -> None:
    host, peer = netlab.host("demo"), netlab.host("peer")
    netlab.link(host, peer)
    result = subprocess.run(
        host.command(sys.executable, "-m", "aiomcast", "demo", "--interface", "veth0"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "IPv4: group 239.255.77.77 on veth0" in result.stdout
    assert "IPv6: group ff12::a10c:77 on veth0" in result.stdout
    assert result.stdout.count("ok: 5 of 5 datagrams arrived through async for") == 2


def test_demo_on_an_interface_without_addresses_is_bad_input(netlab: lab.Lab) -> None:
    host, peer = netlab.host("bare"), netlab.host("peer")
    netlab.link(host, peer, ipv4=False, ipv6=False)
    result = subprocess.run(
        host.command(sys.executable, "-m", "aiomcast", "demo", "--interface", "veth0"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "veth0" in result.stderr
    assert "Traceback" not in result.stderr
