"""The lab on this host: what a killed test process left behind is removed, and the kernel is
asked for multicast routing before the lab picks a forwarding engine."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import time

import pytest

from aiomcast.testing import lab
from aiomcast.testing._routing import MRT_INIT, Ipmr


def test_sweep_removes_what_a_killed_process_left_behind() -> None:
    fake_owner = 999_999_999  # no such process: its lab was "killed" mid-test
    name = f"amc{fake_owner}x1-ghost"
    lab._run(["ip", "netns", "add", name])
    sleeper = subprocess.Popen(["ip", "netns", "exec", name, "sleep", "60"])
    try:
        time.sleep(0.2)
        assert lab.sweep(fake_owner) == [name]
        assert sleeper.wait(5) != 0  # killed
        assert name not in lab.leftover_namespaces()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
        lab._run(["ip", "netns", "del", name], check=False)


def test_multicast_routing_probe_agrees_with_the_kernel() -> None:
    # Pinned kernel behaviour: a kernel built without CONFIG_IP_MROUTE / CONFIG_IPV6_MROUTE
    # refuses MRT_INIT / MRT6_INIT with ENOPROTOOPT, and has no /proc/net/ip_mr_vif /
    # ip6_mr_vif. smcrouted starts there all the same and forwards nothing, so the lab asks
    # the kernel (Ipmr.missing) before choosing an engine. The two signs must agree.
    why = Ipmr.missing()
    has_v4 = os.path.exists("/proc/net/ip_mr_vif")
    has_v6 = os.path.exists("/proc/net/ip6_mr_vif")
    if has_v4 and has_v6:
        assert why == ""
    else:
        missing = "CONFIG_IP_MROUTE" if not has_v4 else "CONFIG_IPV6_MROUTE"
        assert why == f"the kernel has no multicast routing ({missing} is not set)"
        assert lab.engines_present()["ipmr"] == why
        for family, protocol, level in (
            (socket.AF_INET, socket.IPPROTO_IGMP, socket.IPPROTO_IP),
            (socket.AF_INET6, socket.IPPROTO_ICMPV6, socket.IPPROTO_IPV6),
        ):
            if (has_v4, has_v6)[family == socket.AF_INET6]:
                continue
            with socket.socket(family, socket.SOCK_RAW, protocol) as probe:
                with pytest.raises(OSError, match=os.strerror(errno.ENOPROTOOPT)) as refused:
                    probe.setsockopt(level, MRT_INIT, 1)
            assert refused.value.errno == errno.ENOPROTOOPT
