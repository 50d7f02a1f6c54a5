"""Tasks that only tests load (`pixcrawler worker --include tests.support.tasks`).

They record each execution in Redis so a test can count runs across worker processes.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from celery import shared_task

from celery_core.worker.task_base import BaseTask, HttpStatusError


def _store(task: BaseTask) -> redis.Redis:
    return redis.Redis.from_url(task.app.conf.result_backend)


@shared_task(bind=True, base=BaseTask, name="tests.slow")
def slow(self: BaseTask, key: str, seconds: float) -> dict[str, Any]:
    store = _store(self)
    store.rpush(f"{key}:started", self.request.hostname or "")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)  # the workload itself: a long task, not test synchronisation
    store.rpush(f"{key}:finished", self.request.hostname or "")
    return {"key": key}


@shared_task(bind=True, base=BaseTask, name="tests.flaky")
def flaky(self: BaseTask, key: str, failures: int) -> str:
    attempt = int(_store(self).incr(f"{key}:attempts"))
    if attempt <= failures:
        raise HttpStatusError(503, "http://example.test/")
    return f"succeeded on attempt {attempt}"


@shared_task(bind=True, base=BaseTask, name="tests.broken")
def broken(self: BaseTask, key: str) -> None:
    _store(self).incr(f"{key}:attempts")
    raise ValueError("the input file is not a job file (password=redis://:hunter2@db:6379/0)")


@shared_task(bind=True, base=BaseTask, name="tests.counter")
def counter(self: BaseTask, key: str) -> int:
    return int(_store(self).incr(key))


@shared_task(bind=True, base=BaseTask, name="tests.loaded")
def loaded(self: BaseTask, modules: list[str]) -> list[str]:
    """Which of `modules` this pool process had imported before running this task."""
    import sys

    return [name for name in modules if name in sys.modules]
