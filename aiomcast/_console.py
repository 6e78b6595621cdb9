# Design: what every command of the command line shares, apart from cli.py so that the
# commands in modules of their own (_sendcmd.py, _ping.py) use it without importing the
# parser: one JSON line on stdout, and SIGINT / SIGTERM as a clean stop.
from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable

__all__ = ["emit_json", "on_stop"]


def emit_json(obj: object) -> None:
    """Print ``obj`` as one JSON line on stdout (looked up at each call: it may be redirected)."""
    sys.stdout.write(json.dumps(obj, separators=(", ", ": ")) + "\n")
    sys.stdout.flush()


def on_stop(callback: Callable[[], object]) -> None:
    """Call ``callback`` on SIGINT and SIGTERM (where the running loop can take signals)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, callback)
