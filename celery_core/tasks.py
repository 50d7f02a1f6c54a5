"""Celery tasks: thin wrappers that hand work to the engine and report through Redis."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from celery import shared_task

from celery_core.base import BaseTask


@shared_task(bind=True, base=BaseTask, name="pixcrawler.health_check")
def health_check(self: BaseTask, echo: str = "pong") -> dict[str, Any]:
    """A round trip through a worker: proves dispatch, execution and result storage."""
    return {
        "echo": echo,
        "worker": self.request.hostname,
        "pid": os.getpid(),
        "python": platform.python_version(),
        "time": time.time(),
    }
