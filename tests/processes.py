"""Run the ``aiomcast`` command line and the examples as subprocesses.

Subprocesses inherit the test process's network namespace (private when root, see conftest),
and every command the tests start names the loopback interface or runs inside a lab
namespace, so nothing leaves the machine either way.

``run`` waits for a command; ``background`` starts one, waits for the line it prints on
stderr once it is ready (``joined ...``, ``listening on ...``), and always reaps it and closes
its pipes, also when the test fails. It starts the command with SIGINT at the default
disposition, as a program in a terminal's foreground has it: a suite started as a background
job of a non-interactive shell (``cmd &`` without job control) runs with SIGINT ignored,
every child inherits that across exec, and Python then never turns Ctrl-C into
KeyboardInterrupt, so the tests that stop a command with SIGINT would wait for it in vain.
"""

from __future__ import annotations

import contextlib
import dataclasses
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

PYTHON = sys.executable
#: ``python -m aiomcast``.
AIOMCAST = (PYTHON, "-m", "aiomcast")
#: The console script installed next to the interpreter.
SCRIPT = str(Path(PYTHON).with_name("aiomcast"))
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Upper bound for one command; commands that should take longer say so.
TIMEOUT = 5.0


def example(name: str) -> list[str]:
    """The argv that runs ``examples/<name>.py``."""
    return [PYTHON, str(EXAMPLES / f"{name}.py")]


def free_port() -> int:
    """A UDP port nothing on this host is bound to now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class Result:
    """How a command ended."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def out_lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def err_lines(self) -> list[str]:
        return self.stderr.splitlines()


def run(argv: Sequence[str], *, timeout: float = TIMEOUT) -> Result:
    """Run a command to its end with stdin closed and return what it printed."""
    done = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def _read_line(stream: IO[bytes], timeout: float) -> str:
    # The pipe is unbuffered (bufsize=0), so reading one byte at a time takes nothing from
    # the pipe that communicate() would then miss.
    deadline = time.monotonic() + timeout
    data = bytearray()
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([stream], [], [], remaining)[0]:
            raise TimeoutError(f"no full line within {timeout} s (got {bytes(data)!r})")
        chunk = stream.read(1)
        if not chunk:
            break
        data += chunk
    return data.decode()


class Background:
    """A command started by ``background``."""

    def __init__(self, proc: subprocess.Popen[bytes], ready_line: str) -> None:
        self.proc = proc
        self.ready_line = ready_line
        self._stdout: list[str] = []

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def write(self, text: str) -> None:
        """Write ``text`` to the command's stdin (started with ``stdin=True``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())

    def read_line(self, timeout: float = TIMEOUT) -> str:
        """Wait for the next line on stdout (it is also kept for ``finish``)."""
        assert self.proc.stdout is not None
        line = _read_line(self.proc.stdout, timeout)
        self._stdout.append(line)
        return line

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = TIMEOUT) -> Result:
        """Close stdin (end of input), wait for the end and return everything printed."""
        out, err = self.proc.communicate(timeout=timeout)
        return Result(
            self.proc.returncode,
            "".join(self._stdout) + out.decode(),
            self.ready_line + err.decode(),
        )


def _default_sigint() -> None:
    # In the child, between fork and exec (see the module's docstring).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def background(
    argv: Sequence[str], *, ready: str | None, stdin: bool = False, timeout: float = TIMEOUT
) -> Iterator[Background]:
    """Start a command and wait until its first stderr line contains ``ready`` (None: no wait)."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
        preexec_fn=_default_sigint,
    )
    with proc:
        try:
            assert proc.stderr is not None
            if ready is None:
                yield Background(proc, "")
                return
            try:
                line = _read_line(proc.stderr, timeout)
            except TimeoutError as exc:
                raise AssertionError(f"{argv!r} did not say {ready!r}: {exc}") from None
            if ready not in line:
                proc.kill()
                out, err = proc.communicate(timeout=timeout)
                raise AssertionError(
                    f"{argv!r} said {line!r} instead of {ready!r}; then stderr {err!r}, "
                    f"stdout {out!r}"
                )
            yield Background(proc, line)
        finally:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(ValueError):  # pipes already closed by finish()
                proc.communicate(timeout=timeout)
