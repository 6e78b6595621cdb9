"""Real peer tools against aiomcast, used as users use them: iperf2, socat, tcpdump.

Two lab hosts on one net (``a`` sends, ``b`` receives), so every datagram crosses a veth link
inside namespaces the test builds.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

import aiomcast
from aiomcast._interfaces import kernel_memberships
from aiomcast.testing import lab
from tests.helpers import start_capture, stop_capture
from tests.processes import AIOMCAST, background, run

GROUPS = {"ipv4": "239.6.6.6", "ipv6": "ff15::6:6:6"}
PAIR = "hosts a b\nnet 1 a b\n"


@pytest.fixture
def pair() -> Iterator[lab.Lab]:
    for tool in ("iperf", "socat", "tcpdump"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (Debian packages iperf, socat, tcpdump)")
    with lab.Lab() as net:
        net.build(PAIR)
        yield net


def wait_member(host: lab.Host, family: str, group: str, timeout: float = 5.0) -> None:
    """Wait until ``host`` lists a membership of ``group`` (a peer tool has joined)."""
    address = str(aiomcast.Group(group).address)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with host.entered():
            found = kernel_memberships(aiomcast.parse_family(family)) or set()
        if any(member == address for _, member in found):
            return
        time.sleep(0.05)
    raise AssertionError(f"{group} never joined in {host.name}")


def iperf_server(host: lab.Host, family: str, group: str, port: int) -> subprocess.Popen[str]:
    argv = ["iperf", "-s", "-u", "-B", group, "-p", str(port)]
    if family == "ipv6":
        argv.append("-V")
    proc = subprocess.Popen(
        host.command(*argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_member(host, family, group)
    return proc


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    return out


REPORT = re.compile(r"(\d+)/(\d+) \((\S+)%\)")


def test_iperf2_sender_is_counted_exactly_by_listen(pair: lab.Lab, family: str) -> None:
    # iperf2 as the sender: `aiomcast listen --format iperf2 --stats` and an iperf2 server in
    # the same group count the same stream; both see every datagram.
    group, port = GROUPS[family], 5301
    a, b = pair["a"], pair["b"]
    server = iperf_server(b, family, group, port)
    listen = [
        *AIOMCAST,
        "listen",
        group,
        str(port),
        "--interface",
        "n1",
        "--stats",
        "--format",
        "iperf2",
        "--idle",
        "1.5",
    ]
    with background(b.command(*listen), ready="joined") as rx:
        client = [
            "iperf",
            "-c",
            group,
            "-u",
            "-p",
            str(port),
            "-b",
            "2M",
            "-n",
            "300K",
            "-l",
            "1000",
            "-T",
            "1",
        ]
        if family == "ipv6":
            client.append("-V")
        sent = run(a.command(*client), timeout=20)
        assert sent.returncode == 0, sent
        got = rx.finish(timeout=10)
    report = stop(server)
    assert got.returncode == 0, got
    stats = json.loads(got.stdout)
    match = REPORT.findall(report)
    assert match, report
    lost, total, _ = match[-1]
    data = 300 * 1024 // 1000 + 1  # 307 full datagrams and a short last one
    assert (int(lost), int(total)) == (0, data + 1)  # iperf2 counts its final datagram too
    assert stats["received"] == data + stats["final"]
    assert (stats["gaps"], stats["final"], stats["dropped"]) == (0, 1, 0)


def test_iperf2_server_reports_no_loss_on_aiomcast_traffic(pair: lab.Lab, family: str) -> None:
    # `aiomcast send --format iperf2` writes iperf2's header (sequence, send time) and final
    # datagram, so an iperf2 multicast server's loss and jitter report is meaningful.
    group, port = GROUPS[family], 5302
    a, b = pair["a"], pair["b"]
    server = iperf_server(b, family, group, port)
    sent = run(
        a.command(
            *AIOMCAST,
            "send",
            group,
            str(port),
            "--interface",
            "n1",
            "--format",
            "iperf2",
            "--count",
            "400",
            "--rate",
            "1000",
            "--stats",
        ),
        timeout=20,
    )
    time.sleep(0.3)
    report = stop(server)
    assert sent.returncode == 0, sent
    assert json.loads(sent.stdout)["sent"] == 400
    match = REPORT.findall(report)
    assert match, report
    lost, total, percent = match[-1]
    assert (int(lost), int(total), float(percent)) == (0, 401, 0.0)
    jitter = re.findall(r"(\d+\.\d+) ms", report)
    assert jitter, report  # a jitter figure from aiomcast's send times


def test_socat_sender_reaches_aiomcast_receiver(pair: lab.Lab) -> None:
    group, port = GROUPS["ipv4"], 5303
    a, b = pair["a"], pair["b"]
    listen = [
        *AIOMCAST,
        "listen",
        group,
        str(port),
        "--interface",
        "n1",
        "--json",
        "--count",
        "1",
        "--duration",
        "5",
    ]
    with background(b.command(*listen), ready="joined") as rx:
        sent = subprocess.run(
            a.command(
                "socat",
                "-u",
                "STDIN",
                f"UDP4-DATAGRAM:{group}:{port},ip-multicast-if={a.address(1)},ip-multicast-ttl=1",
            ),
            input="from socat",
            text=True,
            capture_output=True,
            timeout=10,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        got = rx.finish(timeout=10)
    (line,) = got.out_lines
    datagram = json.loads(line)
    assert bytes.fromhex(datagram["payload"]) == b"from socat"
    assert (datagram["source"], datagram["group"], datagram["interface"]) == (
        a.address(1),
        group,
        "n1",
    )


def test_aiomcast_sender_reaches_socat_receiver(pair: lab.Lab) -> None:
    group, port = GROUPS["ipv4"], 5304
    a, b = pair["a"], pair["b"]
    receiver = subprocess.Popen(
        b.command(
            "socat", "-u", f"UDP4-RECV:{port},ip-add-membership={group}:n1,reuseaddr", "STDOUT"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_member(b, "ipv4", group)
        sent = run(
            a.command(
                *AIOMCAST,
                "send",
                group,
                str(port),
                "--interface",
                "n1",
                "--message",
                "from aiomcast",
            )
        )
        assert sent.returncode == 0, sent
        time.sleep(0.3)
    finally:
        receiver.terminate()
        out, _err = receiver.communicate(timeout=10)
    assert out == "from aiomcast"


@pytest.mark.asyncio
async def test_join_and_leave_send_membership_reports(pair: lab.Lab, family: str) -> None:
    # seed S4, S5 on the wire: a join sends an IGMPv3 / MLDv2 report that changes the group to
    # EXCLUDE {} (any source); a leave changes it to INCLUDE {} (no source).
    group = GROUPS[family]
    a, b = pair["a"], pair["b"]
    # MLD packets carry a hop-by-hop header: "icmp6" (next header 58) would not match them.
    capture = start_capture(b, "n1", "igmp" if family == "ipv4" else "ip6")
    with a.entered():
        rx = await aiomcast.open_receiver(group, 5305, interface="n1")
    await asyncio.sleep(0.3)
    await rx.aclose()
    packets = stop_capture(capture, settle=0.8)
    reports = [p for p in packets if f"gaddr {group}" in p]
    kind = "igmp v3 report" if family == "ipv4" else "multicast listener report v2"
    assert any(kind in p and f"gaddr {group} to_ex" in p for p in reports), packets
    assert any(kind in p and f"gaddr {group} to_in" in p for p in reports), packets
    joins = [i for i, p in enumerate(reports) if "to_ex" in p]
    leaves = [i for i, p in enumerate(reports) if "to_in" in p]
    assert min(joins) < min(leaves)


@pytest.mark.asyncio
async def test_ttl_on_the_wire_equals_what_the_sender_set(pair: lab.Lab, family: str) -> None:
    # seed S7 on the wire: the IPv4 TTL / IPv6 hop limit in the header is the one set.
    group = GROUPS[family]
    a, b = pair["a"], pair["b"]
    capture = start_capture(b, "n1", "udp port 5306")
    with a.entered():
        async with aiomcast.open_sender(group, 5306, interface="n1") as tx:
            for ttl in (1, 7, 64, 255):
                tx.ttl = ttl
                await tx.send(f"ttl {ttl}".encode())
    packets = stop_capture(capture)
    field = "ttl" if family == "ipv4" else "hlim"
    seen = [int(m) for p in packets for m in re.findall(rf"\b{field} (\d+)", p)]
    assert seen == [1, 7, 64, 255], packets
