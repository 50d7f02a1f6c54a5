"""`BaseTask`: one result envelope for every task, and the one place retries happen.

A successful task returns an envelope (see docs/task-results.md). A failing task ends in Celery's
FAILURE state with a `TaskFailed` exception carrying the same envelope, so a failure is never
hidden inside a SUCCESS and a caller reads both the same way (`envelope_from_meta`).

Retries: transient errors (connection errors, timeouts, HTTP 429/5xx) retry with exponential
backoff and full jitter up to `task_max_retries`; anything else fails at once. Tasks must not
also use Celery's `autoretry_for`, or a failure would be retried twice over.
"""

from __future__ import annotations

import random
import socket
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from celery import Task
from celery.exceptions import Retry, SoftTimeLimitExceeded

from celery_core.settings.redis_urls import mask_secrets

ENVELOPE_VERSION = 1


class TransientError(Exception):
    """Raise (or subclass) for a failure that may succeed if tried again later."""


class HttpStatusError(Exception):
    """An HTTP response with an error status; 429 and 5xx are transient."""

    def __init__(self, status: int, url: str = "") -> None:
        super().__init__(f"HTTP {status}" + (f" from {url}" if url else ""))
        self.status = status


class TaskFailed(Exception):
    """The exception a failed task ends with; `args` = (message, envelope dict)."""

    def __init__(self, message: str, envelope: dict[str, Any] | None = None) -> None:
        super().__init__(message, envelope or {})
        self.message = message
        self.envelope = envelope or {}

    def __str__(self) -> str:
        return self.message


def is_transient(exc: BaseException) -> bool:
    """Whether trying again later may succeed."""
    if isinstance(exc, TransientError | TimeoutError | ConnectionError | socket.timeout):
        return True
    if isinstance(exc, HttpStatusError):
        return exc.status == 429 or exc.status >= 500
    if getattr(exc, "transient", False) is True:
        return True
    try:
        import redis.exceptions

        if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return True
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    return False


def backoff_delay(retries: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform in [base, min(cap, base * 2**retries)]."""
    high = min(cap, base * (2**retries))
    return (rng or random).uniform(min(base, high), high)


@dataclass(frozen=True)
class Envelope:
    """What every task returns (status SUCCESS) or fails with (status FAILURE)."""

    task_id: str
    task_name: str
    status: str
    result: Any
    error: dict[str, Any] | None
    started_at: str
    finished_at: str
    duration_s: float
    retries: int
    worker: str | None
    version: int = ENVELOPE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


class BaseTask(Task):
    """Base class of every PixCrawler task."""

    abstract = True
    # Celery's own retry knobs stay off: retries happen in __call__ only.
    autoretry_for = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.time()
        try:
            value = super().__call__(*args, **kwargs)
        except Retry:
            raise
        except TaskFailed:
            raise
        except SoftTimeLimitExceeded as exc:
            raise self._failed(exc, started) from None
        except Exception as exc:
            retries = int(self.request.retries or 0)
            max_retries = int(self.app.conf.get("pixcrawler_max_retries", 3))
            if is_transient(exc) and retries < max_retries:
                delay = backoff_delay(
                    retries,
                    float(self.app.conf.get("task_default_retry_delay", 5)),
                    float(self.app.conf.get("pixcrawler_retry_backoff_max", 300)),
                )
                raise self.retry(exc=exc, countdown=delay, max_retries=max_retries) from exc
            # `from None`: Celery stores the chained traceback verbatim, secrets included;
            # the envelope carries a masked copy instead.
            raise self._failed(exc, started) from None
        return self._envelope("SUCCESS", value, None, started).to_dict()

    def _envelope(
        self, status: str, result: Any, error: dict[str, Any] | None, started: float
    ) -> Envelope:
        finished = time.time()
        request = self.request
        return Envelope(
            task_id=str(request.id),
            task_name=str(self.name),
            status=status,
            result=result,
            error=error,
            started_at=_now_iso(started),
            finished_at=_now_iso(finished),
            duration_s=round(finished - started, 3),
            retries=int(request.retries or 0),
            worker=request.hostname,
        )

    def _failed(self, exc: BaseException, started: float) -> TaskFailed:
        message = mask_secrets(str(exc) or type(exc).__name__)
        error = {
            "type": type(exc).__name__,
            "message": message,
            "transient": is_transient(exc),
            "traceback": mask_secrets("".join(traceback.format_exception(exc))[-4000:]),
        }
        envelope = self._envelope("FAILURE", None, error, started)
        return TaskFailed(f"{type(exc).__name__}: {message}", envelope.to_dict())


def envelope_from_meta(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The envelope in a raw result-backend record (`celery-task-meta-<id>`), if there is one.

    SUCCESS stores the envelope as the result; FAILURE stores the TaskFailed exception, whose
    JSON form keeps (message, envelope) in `exc_message`.
    """
    result = meta.get("result")
    if meta.get("status") == "SUCCESS" and isinstance(result, dict) and "task_id" in result:
        return result
    if isinstance(result, dict) and result.get("exc_type") == "TaskFailed":
        args = result.get("exc_message") or []
        if isinstance(args, list | tuple) and len(args) > 1 and isinstance(args[1], dict):
            return args[1]
    return None
