# Design: how the core waits. The endpoints, the protocol and the fast transport wait in four
# places only: for a datagram (a one-shot waiter the protocol completes), for the socket's
# release on close (another waiter), for room to send (a flag the transport clears and sets),
# and for readiness of the socket (a reactor with add_reader / add_writer / call_soon). The
# interface watcher and the ring search also need time: a clock, sleeping, timers and
# timeouts. A driver hands these out, and nothing outside this module calls asyncio or anyio
# to wait (but for the adapter of asyncio's own transports, _transport.LoopTransport, which
# exists only on asyncio):
#   - AsyncioDriver: what the running asyncio loop or uvloop has (futures, asyncio.Event, the
#     loop itself as the reactor). This is the default and the code the core always ran, so
#     the asyncio hot path does not change.
#   - AnyioDriver: anyio events, and a reactor whose readers and writers are tasks in the
#     endpoint's task group, each waiting with anyio.wait_readable / wait_writable and then
#     calling the transport's callback (the same recvmmsg drain and sendmmsg code). This is
#     what runs on trio, where there is no callback-based loop.
# The driver of an endpoint being opened is carried by a context variable that aiomcast.anyio
# sets around the core's opener, so the openers' long argument lists exist once.
from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any, Protocol, final

import anyio
import anyio.abc
import anyio.lowlevel

__all__ = [
    "ASYNCIO",
    "AnyioDriver",
    "AsyncioDriver",
    "Driver",
    "Flag",
    "Reactor",
    "Timer",
    "Waiter",
    "current_driver",
]


class Waiter(Protocol):
    """A one-shot wake-up: what the core uses of an asyncio future."""

    def done(self) -> bool:
        """Whether it was completed."""

    def set_result(self, result: None, /) -> None:
        """Complete it, waking whoever awaits it."""

    def __await__(self) -> Generator[Any, None, Any]: ...


class Flag(Protocol):
    """A resettable flag: what the core uses of an asyncio.Event (send flow control)."""

    def is_set(self) -> bool:
        """Whether the flag is set."""

    def set(self) -> None:
        """Set the flag, waking every waiter."""

    def clear(self) -> None:
        """Clear the flag."""

    def wait(self) -> Awaitable[object]:
        """Wait until the flag is set."""


class Reactor(Protocol):
    """What the fast transport uses of an event loop: readiness callbacks and call_soon."""

    def add_reader(self, fd: int, callback: Callable[[], object], /) -> None:
        """Call ``callback`` whenever ``fd`` is readable."""

    def remove_reader(self, fd: int, /) -> bool:
        """Stop calling the reader of ``fd``."""

    def add_writer(self, fd: int, callback: Callable[[], object], /) -> None:
        """Call ``callback`` whenever ``fd`` is writable."""

    def remove_writer(self, fd: int, /) -> bool:
        """Stop calling the writer of ``fd``."""

    def call_soon(self, callback: Callable[[Exception | None], object], arg: None, /) -> object:
        """Call ``callback(arg)`` soon (not from inside the caller)."""


class Timer(Protocol):
    """A call scheduled for later, which can be called off."""

    def cancel(self) -> None:
        """Do not make the call (no effect once made)."""


class Driver(Protocol):
    """Hands out the waiting primitives of one concurrency library."""

    #: True when the library has asyncio's own datagram transports (create_datagram_endpoint).
    native_transports: bool

    def waiter(self) -> Waiter:
        """A new one-shot waiter."""

    def flag(self) -> Flag:
        """A new flag, set."""

    def reactor(self, on_lost: Callable[[Exception], object]) -> Reactor:
        """The reactor for a new transport; ``on_lost`` hears when it stops on its own."""

    async def wait_shielded(self, waiter: Waiter) -> None:
        """Wait for ``waiter`` even when the caller is cancelled meanwhile (close paths)."""

    async def settle(self) -> None:
        """Let callbacks scheduled with the reactor's call_soon run."""

    def time(self) -> float:
        """The library's monotonic clock, in seconds."""

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds``."""

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Call ``callback()`` after ``delay`` seconds, from the library's own context."""

    def timeout(self, seconds: float) -> contextlib.AbstractAsyncContextManager[object]:
        """A block that is cancelled after ``seconds`` and then raises TimeoutError."""


@final
class AsyncioDriver:
    """The running asyncio loop's own primitives (asyncio or uvloop), the default."""

    native_transports = True

    def waiter(self) -> Waiter:
        """A future of the running loop."""
        return asyncio.get_running_loop().create_future()

    def flag(self) -> Flag:
        """An asyncio.Event, set."""
        event = asyncio.Event()
        event.set()
        return event

    def reactor(self, on_lost: Callable[[Exception], object]) -> Reactor:
        """The running loop (which never stops under a transport)."""
        return asyncio.get_running_loop()

    async def wait_shielded(self, waiter: Waiter) -> None:
        """asyncio.shield around the future."""
        await asyncio.shield(waiter)

    async def settle(self) -> None:
        """One pass of the loop."""
        await asyncio.sleep(0)

    def time(self) -> float:
        """The running loop's clock."""
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep."""
        await asyncio.sleep(seconds)

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """The running loop's call_later."""
        return asyncio.get_running_loop().call_later(delay, callback)

    def timeout(self, seconds: float) -> contextlib.AbstractAsyncContextManager[object]:
        """asyncio.timeout."""
        return asyncio.timeout(seconds)


#: The default driver: the running asyncio loop.
ASYNCIO = AsyncioDriver()

#: The driver of endpoints opened in this context; None means ASYNCIO.
current_driver: contextvars.ContextVar[Driver | None] = contextvars.ContextVar(
    "aiomcast_driver", default=None
)


@final
class _EventWaiter:
    """A one-shot waiter on an anyio.Event (awaitable on any anyio backend)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()

    def done(self) -> bool:
        return self._event.is_set()

    def set_result(self, result: None, /) -> None:
        self._event.set()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._event.wait().__await__()


@final
class _EventFlag:
    """A resettable flag: anyio events cannot be cleared, so clear() starts a new one."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        if self._event.is_set():
            self._event = anyio.Event()

    def wait(self) -> Awaitable[object]:
        return self._event.wait()


@final
class _TaskReactor:
    """Readers and writers as tasks in a task group, waiting with anyio.wait_readable/writable.

    Each registration is one task in its own cancel scope; removing it cancels the scope. On
    trio a task blocked in wait_readable is unregistered from the kernel's poller at once when
    its scope is cancelled, so the transport may close the socket right after. A task checks
    for cancellation before each wait, so one started after its removal never registers a
    closed descriptor. A reader or writer cancelled from outside (its task group was
    cancelled) reports the endpoint broken through ``on_lost``.
    """

    __slots__ = ("_group", "_on_lost", "_readers", "_writers")

    def __init__(self, group: anyio.abc.TaskGroup, on_lost: Callable[[Exception], object]) -> None:
        self._group = group
        self._on_lost = on_lost
        self._readers: dict[int, tuple[anyio.CancelScope, list[Callable[[], object]]]] = {}
        self._writers: dict[int, tuple[anyio.CancelScope, list[Callable[[], object]]]] = {}

    def _add(
        self,
        table: dict[int, tuple[anyio.CancelScope, list[Callable[[], object]]]],
        wait: Callable[[int], Awaitable[None]],
        fd: int,
        callback: Callable[[], object],
    ) -> None:
        current = table.get(fd)
        if current is not None and not current[0].cancel_called:
            current[1][0] = callback  # as asyncio does: a new callback replaces the old
            return
        entry = (anyio.CancelScope(), [callback])
        table[fd] = entry
        self._group.start_soon(self._watch, wait, fd, entry)

    @staticmethod
    def _remove(
        table: dict[int, tuple[anyio.CancelScope, list[Callable[[], object]]]], fd: int
    ) -> bool:
        entry = table.pop(fd, None)
        if entry is None:
            return False
        entry[0].cancel()
        return True

    async def _watch(
        self,
        wait: Callable[[int], Awaitable[None]],
        fd: int,
        entry: tuple[anyio.CancelScope, list[Callable[[], object]]],
    ) -> None:
        scope, callback = entry
        try:
            with scope:
                while True:
                    await anyio.lowlevel.checkpoint_if_cancelled()
                    await wait(fd)
                    callback[0]()
        finally:
            if not scope.cancel_called:
                # Cancelled from outside (an enclosing scope), not by remove_*: nothing reads
                # or writes for the endpoint any more. On trio every task under the cancelled
                # scope was already woken with Cancelled, so this wakes only outsiders.
                self._on_lost(ConnectionAbortedError("the endpoint's I/O task was cancelled"))

    def add_reader(self, fd: int, callback: Callable[[], object], /) -> None:
        """Start a task that calls ``callback`` each time ``fd`` is readable."""
        self._add(self._readers, anyio.wait_readable, fd, callback)

    def remove_reader(self, fd: int, /) -> bool:
        """Cancel the reader task of ``fd``."""
        return self._remove(self._readers, fd)

    def add_writer(self, fd: int, callback: Callable[[], object], /) -> None:
        """Start a task that calls ``callback`` each time ``fd`` is writable."""
        self._add(self._writers, anyio.wait_writable, fd, callback)

    def remove_writer(self, fd: int, /) -> bool:
        """Cancel the writer task of ``fd``."""
        return self._remove(self._writers, fd)

    def call_soon(self, callback: Callable[[Exception | None], object], arg: None, /) -> object:
        """Call ``callback(arg)`` now.

        The transport calls this from close(), after removing its reader and writer, to
        report the loss and close the socket; nothing waits on the descriptor any more, so
        doing it at once is safe, and it needs no task (the task group may be closing).
        """
        return callback(arg)


@final
class _TaskTimer:
    """A call after a delay, made by a task of the driver's task group; cancel() cancels it."""

    __slots__ = ("_scope",)

    def __init__(
        self, group: anyio.abc.TaskGroup, delay: float, callback: Callable[[], object]
    ) -> None:
        self._scope = anyio.CancelScope()
        group.start_soon(self._run, delay, callback)

    async def _run(self, delay: float, callback: Callable[[], object]) -> None:
        with self._scope:
            await anyio.sleep(delay)
            callback()

    def cancel(self) -> None:
        self._scope.cancel()


@contextlib.asynccontextmanager
async def _fail_after(seconds: float) -> AsyncIterator[object]:
    with anyio.fail_after(seconds):
        yield None


@final
class AnyioDriver:
    """anyio's primitives, with readers and writers as tasks in ``task_group`` (for trio)."""

    native_transports = False

    def __init__(self, task_group: anyio.abc.TaskGroup) -> None:
        self._group = task_group

    def waiter(self) -> Waiter:
        """A one-shot waiter on an anyio.Event."""
        return _EventWaiter()

    def flag(self) -> Flag:
        """A resettable flag on anyio events, set."""
        return _EventFlag()

    def reactor(self, on_lost: Callable[[Exception], object]) -> Reactor:
        """A reactor whose readers and writers are tasks in the driver's task group."""
        return _TaskReactor(self._group, on_lost)

    async def wait_shielded(self, waiter: Waiter) -> None:
        """Wait in a shielded cancel scope."""
        with anyio.CancelScope(shield=True):
            await waiter

    async def settle(self) -> None:
        """A checkpoint (the reactor's call_soon already ran its callback)."""
        await anyio.lowlevel.checkpoint()

    def time(self) -> float:
        """anyio.current_time."""
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        """anyio.sleep."""
        await anyio.sleep(seconds)

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """A task in the driver's task group that sleeps, then calls ``callback``."""
        return _TaskTimer(self._group, delay, callback)

    def timeout(self, seconds: float) -> contextlib.AbstractAsyncContextManager[object]:
        """anyio.fail_after (TimeoutError once the time is up)."""
        return _fail_after(seconds)
