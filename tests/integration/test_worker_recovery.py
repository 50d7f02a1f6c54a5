"""Real workers against a real Redis: round trips, retries, failures, crashes and outages."""

from __future__ import annotations

import time
import uuid

import pytest
from celery import Celery

from celery_core.worker.task_base import TaskFailed, envelope_from_meta
from tests.support.redis_proc import RedisProcess
from tests.support.waiting import wait_until
from tests.support.worker_proc import WorkerProcess


def test_health_check_returns_the_envelope(test_app: Celery, worker: WorkerProcess) -> None:
    result = test_app.send_task("pixcrawler.health_check", args=["hello"])
    envelope = result.get(timeout=30)
    assert envelope["status"] == "SUCCESS"
    assert envelope["task_id"] == result.id
    assert envelope["task_name"] == "pixcrawler.health_check"
    assert envelope["worker"] == worker.name
    assert envelope["result"]["echo"] == "hello"
    assert envelope["error"] is None and envelope["retries"] == 0
    assert envelope["duration_s"] >= 0 and envelope["started_at"] <= envelope["finished_at"]


def test_pool_processes_start_with_the_crawler_loaded(
    test_app: Celery, worker: WorkerProcess
) -> None:
    # Imported once in the main process before the pool forks, not by each pool process
    # on its first crawl (about half a second of CPU each).
    wanted = ["celery_core.worker.crawl_task", "aiohttp", "PIL.WebPImagePlugin"]
    result = test_app.send_task("tests.loaded", args=[wanted])
    assert result.get(timeout=30)["result"] == wanted


def test_transient_error_retries_then_succeeds(
    test_app: Celery, worker: WorkerProcess, redis_proc: RedisProcess
) -> None:
    key = f"flaky-{uuid.uuid4().hex}"
    result = test_app.send_task("tests.flaky", args=[key, 2])
    envelope = result.get(timeout=60)
    assert envelope["status"] == "SUCCESS"
    assert envelope["result"] == "succeeded on attempt 3"
    assert envelope["retries"] == 2
    assert int(redis_proc.client(1).get(f"{key}:attempts") or 0) == 3


def test_permanent_error_fails_once_with_its_message(
    test_app: Celery, worker: WorkerProcess, redis_proc: RedisProcess
) -> None:
    key = f"broken-{uuid.uuid4().hex}"
    result = test_app.send_task("tests.broken", args=[key])
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=30)
    assert result.state == "FAILURE"
    assert "not a job file" in str(info.value)
    assert "hunter2" not in str(info.value)  # secrets masked in results
    assert int(redis_proc.client(1).get(f"{key}:attempts") or 0) == 1
    raw = redis_proc.client(1).get(f"celery-task-meta-{result.id}")
    assert raw is not None and b"hunter2" not in raw
    import json

    envelope = envelope_from_meta(json.loads(raw))
    assert envelope is not None and envelope["status"] == "FAILURE"
    assert envelope["error"]["type"] == "ValueError"
    assert envelope["error"]["transient"] is False


def test_killed_worker_task_runs_again_on_a_new_worker(
    test_app: Celery, celery_env: dict[str, str], redis_proc: RedisProcess
) -> None:
    key = f"slow-{uuid.uuid4().hex}"
    store = redis_proc.client(1)
    first = WorkerProcess(celery_env).start()
    try:
        first.wait_ready()
        result = test_app.send_task("tests.slow", args=[key, 3.0])
        wait_until(lambda: store.llen(f"{key}:started") == 1, timeout=30, what="task started")
        first.kill_hard()
    finally:
        first.stop()
    second = WorkerProcess(celery_env).start()
    try:
        second.wait_ready()
        up = time.monotonic()
        envelope = result.get(timeout=60)
        redelivered_after = time.monotonic() - up
        assert envelope["status"] == "SUCCESS"
        assert envelope["worker"] == second.name
        assert redelivered_after < 30, f"redelivery took {redelivered_after:.1f} s"
        assert store.lrange(f"{key}:finished", 0, -1) == [second.name.encode()]
        assert store.llen(f"{key}:started") == 2
    finally:
        second.stop()


def test_work_goes_on_after_redis_restarts_mid_run(
    test_app: Celery, worker: WorkerProcess, redis_proc: RedisProcess
) -> None:
    key = f"outage-{uuid.uuid4().hex}"
    store = redis_proc.client(1)
    result = test_app.send_task("tests.slow", args=[key, 2.0])
    wait_until(lambda: store.llen(f"{key}:started") >= 1, timeout=30, what="task started")
    redis_proc.stop()
    wait_until(
        lambda: "connection to broker lost" in worker.log().lower(),
        timeout=30,
        what="the worker to notice that Redis went away",
    )
    redis_proc.start()  # same port and password; data kept in the append-only file
    envelope = result.get(timeout=90)
    assert envelope["status"] == "SUCCESS"
    after = test_app.send_task("tests.counter", args=[f"{key}:after"]).get(timeout=60)
    assert after["status"] == "SUCCESS" and after["worker"] == worker.name
