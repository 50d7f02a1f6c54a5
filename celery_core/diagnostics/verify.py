"""The four checks behind `pixcrawler doctor` and `scripts/test_celery_redis.py`.

1. broker connectivity, 2. backend connectivity, 3. task dispatch and execution through a real
worker, 4. result retrieval (envelope included). A temporary worker is started when none
answers, and stopped after; queues are never purged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery

from celery_core.redis_server.connection import ping
from celery_core.settings.celery_settings import CelerySettings
from celery_core.settings.redis_urls import mask_url
from celery_core.worker.app import QUEUE_DEFAULT, create_app


@dataclass
class CheckResult:
    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class Report:
    checks: list[CheckResult] = field(default_factory=list)
    hint: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


def _timed(name: str, fn: Callable[[], str]) -> CheckResult:
    start = time.perf_counter()
    try:
        detail = fn()
        ok = True
    except Exception as exc:
        detail, ok = str(exc) or type(exc).__name__, False
    return CheckResult(name, ok, time.perf_counter() - start, detail)


def _ping_or_raise(url: str) -> str:
    reason = ping(url, timeout=3.0)
    if reason:
        raise ConnectionError(f"{mask_url(url)}: {reason}")
    return f"{mask_url(url)} answers PING"


def worker_answers(app: Celery, timeout: float = 2.0) -> list[str]:
    """Nodes of running workers that answered a ping (consuming the default queue or not)."""
    replies = app.control.ping(timeout=timeout) or []
    return sorted(name for reply in replies for name in reply)


def run_checks(
    settings: CelerySettings,
    worker_argv: Sequence[str] | None = None,
    task_timeout: float = 60.0,
    on_check: Callable[[CheckResult], None] | None = None,
) -> Report:
    """Run the four checks; `worker_argv` starts a temporary worker when none answers."""
    report = Report()

    def record(result: CheckResult) -> CheckResult:
        report.checks.append(result)
        if on_check:
            on_check(result)
        return result

    broker = record(_timed("broker", lambda: _ping_or_raise(settings.broker_url)))
    backend = record(_timed("backend", lambda: _ping_or_raise(settings.result_backend)))
    if not (broker.ok and backend.ok):
        report.hint = (
            "Redis is not reachable. Start one with `pixcrawler redis` (an embedded server), "
            "install redis-server, or set PIXCRAWLER_CELERY_BROKER_URL and "
            "PIXCRAWLER_CELERY_RESULT_BACKEND to a running Redis."
        )
        return report

    app = create_app(settings)
    temp_worker: subprocess.Popen[bytes] | None = None
    envelope: dict[str, Any] = {}
    token = uuid.uuid4().hex
    try:

        def dispatch() -> str:
            nonlocal temp_worker
            nodes = worker_answers(app)
            started_note = ""
            if not nodes and worker_argv:
                temp_worker = _start_worker(worker_argv, settings)
                nodes = _wait_for_worker(app, temp_worker, timeout=30.0)
                started_note = " (temporary worker started)"
            if not nodes:
                raise RuntimeError("no worker answered; start one with `pixcrawler worker`")
            result = app.send_task("pixcrawler.health_check", args=[token], queue=QUEUE_DEFAULT)
            value = result.get(timeout=task_timeout, propagate=True, disable_sync_subtasks=False)
            envelope.update(value)
            return f"ran on {value.get('worker')}{started_note}"

        record(_timed("dispatch+execution", dispatch))

        def retrieve() -> str:
            if not envelope:
                raise RuntimeError("no result to retrieve: the task did not run")
            missing = [k for k in ("task_id", "task_name", "status", "worker") if k not in envelope]
            if missing:
                raise RuntimeError(f"result envelope lacks {', '.join(missing)}")
            stored = app.AsyncResult(envelope["task_id"])
            if stored.state != "SUCCESS" or stored.result.get("result", {}).get("echo") != token:
                raise RuntimeError(f"stored result is {stored.state}, not the expected SUCCESS")
            return f"envelope status={envelope['status']} in {envelope['duration_s']:.3f} s"

        record(_timed("result retrieval", retrieve))
    finally:
        if temp_worker is not None:
            _stop_worker(temp_worker)
        app.close()
    return report


def _start_worker(argv: Sequence[str], settings: CelerySettings) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PIXCRAWLER_CELERY_BROKER_URL"] = settings.broker_url
    env["PIXCRAWLER_CELERY_RESULT_BACKEND"] = settings.result_backend
    return subprocess.Popen(
        list(argv),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=sys.platform != "win32",
    )


def _wait_for_worker(app: Celery, proc: subprocess.Popen[bytes], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the temporary worker exited with code {proc.returncode}")
        nodes = worker_answers(app, timeout=1.0)
        if nodes:
            return nodes
    return []


def _stop_worker(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
