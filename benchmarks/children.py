"""The harness's child processes: each receiver, sender and load is a process of its own."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Self

#: The benchmarks folder: the scripts and C tools the children run.
HERE: Final = Path(__file__).resolve().parent


class BenchError(RuntimeError):
    """A measurement could not be made (a child failed or did not answer in time)."""


# -- child processes -----------------------------------------------------------------------------

_children: list[Child] = []


def kill_children() -> None:
    """Kill every child this harness started that still runs (each by its own pid)."""
    for child in list(_children):
        child.close()


class Child:
    """A process the harness started: lines with a timeout, CPU time, RSS and rusage.

    Use it as a context manager: leaving the block kills the child if it still runs, reaps
    it and closes its pipes.
    """

    def __init__(self, argv: Sequence[str], label: str) -> None:
        self.label = label
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr
        )
        assert self.proc.stdout is not None
        self._stdout = self.proc.stdout
        self._buffer = b""
        self._eof = False
        self.returncode: int | None = None
        #: User + system CPU seconds of the whole process, from wait4's rusage once reaped.
        self.cpu_total: float | None = None
        _children.append(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pid(self) -> int:
        """The child's process id (``ip netns exec`` and ``taskset`` exec, so it is the tool's)."""
        return self.proc.pid

    def readline(self, timeout: float) -> str | None:
        """The next line of stdout, or None at end of file or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        fd = self._stdout.fileno()
        while b"\n" not in self._buffer and not self._eof:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            self._eof = not chunk
            self._buffer += chunk
        if b"\n" not in self._buffer:
            return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")

    def wait_for(self, pattern: str, timeout: float) -> str:
        """Read lines until one contains ``pattern``; BenchError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self.readline(left)
            if line is None:
                break
            if pattern in line:
                return line
        raise BenchError(f"{self.label}: no {pattern!r} within {timeout:.0f} s{self.stderr_tail()}")

    def cpu_now(self) -> float:
        """User + system CPU seconds so far, from /proc/PID/stat (in clock ticks)."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int | None:
        """Resident set size now (VmRSS in /proc/PID/status), None once it is gone."""
        try:
            with open(f"/proc/{self.pid}/status", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def running(self) -> bool:
        """True until the child has exited; reaps it when it has."""
        return self.returncode is None and not self._reap(os.WNOHANG)

    def _reap(self, flags: int) -> bool:
        pid, status, usage = os.wait4(self.pid, flags)
        if pid == 0:
            return False
        self.returncode = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.returncode  # reaped here: Popen must not wait again
        self.cpu_total = usage.ru_utime + usage.ru_stime
        return True

    def wait(self, timeout: float) -> int:
        """Wait for the exit and return the exit code; kill and BenchError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                self.kill()
                raise BenchError(f"{self.label}: still running after {timeout:.0f} s, killed")
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode

    def terminate(self) -> None:
        """Send SIGTERM (iperf2's server prints its report on it)."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the child if it still runs, and reap it."""
        if self.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            self._reap(0)

    def close(self) -> None:
        """Kill (if needed) and reap the child, and close its pipes."""
        self.kill()
        self._stdout.close()
        self._stderr.close()
        if self in _children:
            _children.remove(self)

    def rest(self) -> str:
        """Everything left on stdout (call after the child exited)."""
        chunks = [self._buffer]
        self._buffer = b""
        while not self._eof:
            chunk = os.read(self._stdout.fileno(), 65536)
            self._eof = not chunk
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def stderr_tail(self, lines: int = 3) -> str:
        """The last lines of the child's stderr, ready to append to an error message."""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return ": " + " | ".join(text.splitlines()[-lines:]) if text else ""

    def json_result(self, timeout: float) -> dict[str, Any]:
        """Wait for the exit and return the last JSON line it printed on stdout."""
        code = self.wait(timeout)
        lines = [line for line in self.rest().splitlines() if line.startswith("{")]
        if code != 0 or not lines:
            raise BenchError(f"{self.label} exited with {code}{self.stderr_tail()}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result
