"""Stopping background tasks: shutdown ends even when a task absorbs its cancellation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pixcrawler_gui.services.background import cancel_and_wait


async def _absorbs_cancellations(times: int, started: asyncio.Event, give_in: list[bool]) -> None:
    """Like a library that catches CancelledError while closing a socket, `times` times
    (or until `give_in` holds True)."""
    started.set()
    absorbed = 0
    while True:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            absorbed += 1
            if absorbed > times or give_in[0]:
                raise


def test_a_task_that_absorbs_a_cancellation_is_cancelled_again() -> None:
    async def main() -> tuple[bool, bool]:
        started = asyncio.Event()
        task = asyncio.create_task(_absorbs_cancellations(2, started, [False]))
        await started.wait()
        stopped = await cancel_and_wait(task, timeout=5)
        return stopped, task.cancelled()

    assert asyncio.run(main()) == (True, True)


def test_a_task_that_never_stops_is_left_behind_and_named(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> tuple[bool, float, bool]:
        started = asyncio.Event()
        give_in = [False]
        task = asyncio.create_task(_absorbs_cancellations(10**9, started, give_in), name="stubborn")
        await started.wait()
        loop = asyncio.get_running_loop()
        began = loop.time()
        stopped = await cancel_and_wait(task, timeout=1.0)
        took = loop.time() - began
        still_running = not task.done()
        give_in[0] = True
        await cancel_and_wait(task)
        return stopped, took, still_running

    with caplog.at_level(logging.WARNING):
        stopped, took, still_running = asyncio.run(main())
    assert not stopped and still_running and took < 3
    assert "stubborn did not stop" in caplog.text and "_absorbs_cancellations" in caplog.text


def test_an_error_while_stopping_is_not_raised() -> None:
    async def fails_on_cancel(started: asyncio.Event) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("closing failed") from None

    async def main() -> bool:
        started = asyncio.Event()
        task = asyncio.create_task(fails_on_cancel(started))
        await started.wait()
        return await cancel_and_wait(task)

    assert asyncio.run(main()) is True
