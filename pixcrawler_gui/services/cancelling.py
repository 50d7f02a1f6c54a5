"""Stopping background tasks without letting one of them hang the app's exit.

A plain `task.cancel(); await task` waits forever if the task absorbs its cancellation (a
library that catches `CancelledError` while closing a socket, a timeout context that takes
an outside cancel for its own). Shutdown must end regardless: the tasks are cancelled again
until they finish, and one still running after `timeout` is logged with where it waits and
left behind.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

_RECANCEL_EVERY = 0.5


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
