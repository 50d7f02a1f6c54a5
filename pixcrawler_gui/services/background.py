"""Background tasks: kept while they run, and stopped without letting one hang the app's exit.

A plain `task.cancel(); await task` waits forever if the task absorbs its cancellation (a
library that catches `CancelledError` while closing a socket, a timeout context that takes
an outside cancel for its own). Shutdown must end regardless: the tasks are cancelled again
until they finish, and one still running after `timeout` is logged with where it waits and
left behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

log = logging.getLogger(__name__)

_RECANCEL_EVERY = 0.5
T = TypeVar("T")


class TaskSet:
    """Tasks started by one owner and still running.

    The event loop keeps only weak references to tasks, so a task nobody holds can vanish
    mid-run; this holds each one until it ends, then forgets it. `close()` stops the rest.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks))

    def cancel(self) -> list[asyncio.Task[Any]]:
        """Ask every task to stop; returns them, to wait for."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return tasks

    async def close(self, timeout: float = 5.0) -> bool:
        """Cancel every task and wait for them (see `cancel_and_wait`)."""
        return await cancel_and_wait(*self.cancel(), timeout=timeout)


async def cancel_and_wait(*tasks: asyncio.Future[Any], timeout: float = 5.0) -> bool:
    """Cancel `tasks` and wait for them; True when all ended within `timeout` seconds."""
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(_RECANCEL_EVERY, left))
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: an error while stopping is not worth a warning
    for task in pending:
        log.warning("%s did not stop within %.1f s; left behind at %s", _name(task), timeout,
                    where(task))  # fmt: skip
    return not pending


def _name(task: asyncio.Future[Any]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)


def where(task: asyncio.Future[Any]) -> str:
    """The chain of awaits a task is suspended in, innermost last."""
    if not isinstance(task, asyncio.Task):
        return repr(task)
    places: list[str] = []
    # A suspended coroutine's frame has no f_back: follow what each one awaits instead.
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            places.append(repr(awaited))
            break
        places.append(f"{frame.f_code.co_filename}:{frame.f_lineno} ({frame.f_code.co_name})")
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return " -> ".join(places)
