"""``aiomcast demo --interface IF`` runs IPv4 and IPv6 on a real (veth) interface."""

from __future__ import annotations

from aiomcast.testing import lab
from tests.processes import AIOMCAST, Result, run


def _demo_in(net: lab.Lab, *, addresses: bool = True) -> Result:
    host, peer = net.host("demo"), net.host("peer")
    net.link(host, peer, ipv4=addresses, ipv6=addresses)
    return run(host.command(*AIOMCAST, "demo", "--interface", "veth0"), timeout=30)


def test_demo_on_an_interface_runs_both_families(netlab: lab.Lab) -> None:
    result = _demo_in(netlab)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "IPv4: group 239.255.77.77 on veth0" in result.stdout
    assert "IPv6: group ff12::a10c:77 on veth0" in result.stdout
    assert result.stdout.count("ok: 5 of 5 datagrams arrived through async for") == 2


def test_demo_on_an_interface_without_addresses_is_bad_input(netlab: lab.Lab) -> None:
    result = _demo_in(netlab, addresses=False)
    assert result.returncode == 2
    assert len(result.err_lines) == 1
    assert "veth0" in result.stderr
    assert "Traceback" not in result.stderr
