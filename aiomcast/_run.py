# Design: run a coroutine on uvloop when it is installed, on the plain asyncio loop otherwise,
# through asyncio.Runner's loop_factory: the user's event-loop policy is never changed.
from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._errors import InvalidArgumentError, show

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return uvloop's loop constructor when uvloop is importable, else None (plain asyncio)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where the platform has it
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], *, use_uvloop: object = True) -> T:
    """Run ``main`` to completion on a new loop: uvloop when installed and ``use_uvloop``.

    Raises:
        InvalidArgumentError: ``main`` is not a coroutine, or ``use_uvloop`` not a bool.
    """
    if not asyncio.iscoroutine(main):
        raise InvalidArgumentError(
            f"run() needs a coroutine, such as main(), not {type(main).__name__}",
            value=type(main).__name__,
        )
    if not isinstance(use_uvloop, bool):
        main.close()  # never started: no "never awaited" warning
        raise InvalidArgumentError(
            f"use_uvloop must be True or False, not {show(use_uvloop)}", value=use_uvloop
        )
    factory = loop_factory() if use_uvloop else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
