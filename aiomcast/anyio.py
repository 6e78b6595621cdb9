# Design: aiomcast for anyio programs, which run on asyncio, on asyncio with uvloop, or on
# trio. The openers take exactly the core openers' arguments (they wrap them, so the argument
# lists, checks and documentation exist once) and return the core's Receiver, Sender and
# Endpoint, so the API and its types are the same on every backend.
#   - On asyncio and uvloop they open the core endpoints as they are: the same transports and
#     the same hot path as aiomcast.open_receiver.
#   - On trio the core runs with the anyio driver (_driver.py): its waits use anyio events,
#     and the fast transport's reader and writer are tasks in a task group, waiting with
#     anyio.wait_readable / wait_writable and draining with the same recvmmsg code.
# Structured concurrency: that task group is the endpoint's own under ``async with`` (it ends
# when the endpoint closes), or one the caller passes to ``start()``. Awaiting an opener
# without a task group is not offered, because on trio the reader would have nowhere to live.
"""aiomcast on any anyio backend: asyncio, asyncio with uvloop, and trio.

    import anyio
    import aiomcast.anyio

    async def main() -> None:
        async with aiomcast.anyio.open_receiver("239.1.2.3", 5000, interface="eth0") as rx:
            async for datagram in rx:
                print(datagram.source, datagram.payload)

    anyio.run(main, backend="trio")

The openers take the arguments of aiomcast.open_receiver, open_sender and open_endpoint and
return the same Receiver, Sender and Endpoint.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Generic, ParamSpec, TypeVar, final

import anyio
import anyio.abc

from . import _endpoint, _open
from ._attributes import MulticastAttribute
from ._driver import AnyioDriver, current_driver
from ._endpoint import Endpoint, Receiver, Sender
from ._open import Opener

__all__ = [
    "AnyioOpener",
    "Endpoint",
    "MulticastAttribute",
    "Receiver",
    "Sender",
    "open_endpoint",
    "open_receiver",
    "open_sender",
]

P = ParamSpec("P")
E = TypeVar("E", bound=_endpoint._Core)


def _on_asyncio() -> bool:
    """Whether the running anyio backend is asyncio (with or without uvloop)."""
    try:
        import sniffio
    except ImportError:  # pragma: no cover - trio depends on sniffio: without it, asyncio
        return True
    try:
        return sniffio.current_async_library() == "asyncio"
    except sniffio.AsyncLibraryNotFoundError:  # pragma: no cover - not in async code
        return True


@final
class AnyioOpener(Generic[E]):
    """The result of ``aiomcast.anyio.open_*``.

    Use it as ``async with open_receiver(...) as rx`` (the endpoint owns a task group for its
    background work, which ends with it), or ``rx = await open_receiver(...).start(tg)`` to
    run that work in your task group ``tg``.
    """

    __slots__ = ("_core", "_endpoint", "_group")

    def __init__(self, core: Opener[E]) -> None:
        self._core = core
        self._endpoint: E | None = None
        self._group: anyio.abc.TaskGroup | None = None

    async def start(self, task_group: anyio.abc.TaskGroup) -> E:
        """Open the endpoint with its background work in ``task_group`` and return it.

        Close the endpoint (``aclose()`` or ``async with``) before the task group's block
        ends: on trio the task group waits for the endpoint's reader until then. On asyncio
        one small task holds the task group open in the same way. Cancelling the task group
        stops the reader; the endpoint then raises BrokenEndpointError until it is closed.
        """
        if _on_asyncio():
            endpoint = await self._core
            task_group.start_soon(_hold, endpoint)
            return endpoint
        token = current_driver.set(AnyioDriver(task_group))
        try:
            return await self._core
        finally:
            current_driver.reset(token)

    async def __aenter__(self) -> E:
        if _on_asyncio():
            self._endpoint = await self._core
            return self._endpoint
        group = anyio.create_task_group()
        await group.__aenter__()
        try:
            self._endpoint = await self.start(group)
        except BaseException:
            # A failed open has stopped whatever it started; the group ends empty.
            await group.__aexit__(None, None, None)
            raise
        self._group = group
        return self._endpoint

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        endpoint, group = self._endpoint, self._group
        self._endpoint = self._group = None
        try:
            if endpoint is not None:
                await endpoint.aclose()
        finally:
            if group is not None:
                # The endpoint's tasks were cancelled by its close. The block's own exception
                # is not handed to the task group, so it propagates as it is, not wrapped in
                # an exception group (trio's nurseries would wrap it).
                await group.__aexit__(None, None, None)


async def _hold(endpoint: _endpoint._Core) -> None:
    """On asyncio: tie the endpoint to a task group as its reader task does on trio.

    The task group does not end while the endpoint is open, and cancelling it breaks the
    endpoint (BrokenEndpointError until it is closed), on every backend alike.
    """
    protocol = endpoint._protocol
    try:
        # Shielded: a cancelled task cancels the future it awaits, and aclose() awaits this one.
        await asyncio.shield(protocol.lost)
    except anyio.get_cancelled_exc_class():
        protocol.connection_lost(ConnectionAbortedError("the endpoint's task group was cancelled"))
        raise


def _for_anyio(core: Callable[P, Opener[E]], summary: str) -> Callable[P, AnyioOpener[E]]:
    @functools.wraps(core)
    def opener(*args: P.args, **kwargs: P.kwargs) -> AnyioOpener[E]:
        return AnyioOpener(core(*args, **kwargs))

    opener.__doc__ = (
        f"{summary}\n\nSame arguments as aiomcast.{core.__name__}; returns an AnyioOpener: "
        f"``async with {core.__name__}(...) as ep`` or ``ep = await "
        f"{core.__name__}(...).start(task_group)``.\n\n{core.__doc__}"
    )
    opener.__module__ = __name__
    signature = inspect.signature(core)
    opener.__signature__ = signature.replace(  # type: ignore[attr-defined]
        return_annotation=f"Anyio{signature.return_annotation}"
    )
    return opener


#: Open a Receiver on any anyio backend (asyncio, uvloop, trio).
open_receiver = _for_anyio(
    _open.open_receiver, "Open a Receiver on any anyio backend (asyncio, uvloop, trio)."
)
#: Open a Sender on any anyio backend (asyncio, uvloop, trio).
open_sender = _for_anyio(
    _open.open_sender, "Open a Sender on any anyio backend (asyncio, uvloop, trio)."
)
#: Open an Endpoint on any anyio backend (asyncio, uvloop, trio).
open_endpoint = _for_anyio(
    _open.open_endpoint, "Open an Endpoint on any anyio backend (asyncio, uvloop, trio)."
)
