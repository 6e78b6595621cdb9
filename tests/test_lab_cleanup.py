"""The lab's safety net: what a killed test process left behind is removed."""

from __future__ import annotations

import subprocess
import time

from aiomcast.testing import lab
from tests.helpers import require_root


def test_sweep_removes_what_a_killed_process_left_behind() -> None:
    require_root("the routed lab")
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
