"""The worker command line and environment are pure functions: exact argv, no secrets in it."""

from __future__ import annotations

import random

import pytest

from pixcrawler_gui.services.workers.restart_policy import RestartPolicy, crash_verdict
from pixcrawler_gui.services.workers.worker_command import (
    WorkerSpec,
    next_node_name,
    node_name,
    worker_command,
    worker_environment,
)

SECRET_URL = "redis://:s3cret@127.0.0.1:6380/0"


def test_command_under_python() -> None:
    spec = WorkerSpec(name="pixcrawler-local-1@myhost", pool="prefork", concurrency=4)
    assert worker_command(spec, "/usr/bin/python3") == [
        "/usr/bin/python3", "-m", "pixcrawler_gui", "worker",
        "--name", "pixcrawler-local-1@myhost",
        "--pool", "prefork",
        "--concurrency", "4",
        "--queues", "crawl,validation,default",
        "--loglevel", "INFO",
    ]  # fmt: skip


def test_command_of_the_packaged_app_with_extra_task_modules() -> None:
    spec = WorkerSpec(
        name="pixcrawler-local-2@pc",
        pool="threads",
        concurrency=2,
        queues=("crawl",),
        loglevel="debug",
        include=("tests.support.tasks", "extra.tasks"),
    )
    assert worker_command(spec, r"C:\Program Files\PixCrawler\PixCrawler.exe", frozen=True) == [
        r"C:\Program Files\PixCrawler\PixCrawler.exe", "worker",
        "--name", "pixcrawler-local-2@pc",
        "--pool", "threads",
        "--concurrency", "2",
        "--queues", "crawl",
        "--loglevel", "DEBUG",
        "--include", "tests.support.tasks",
        "--include", "extra.tasks",
    ]  # fmt: skip


def test_urls_travel_in_the_environment_only() -> None:
    spec = WorkerSpec(name="n@h")
    argv = worker_command(spec, "python")
    env = worker_environment({"PATH": "/bin", "PIXCRAWLER_ENV": "prod"}, SECRET_URL, SECRET_URL)
    assert not any("s3cret" in part for part in argv)
    assert env == {
        "PATH": "/bin",
        "PIXCRAWLER_ENV": "prod",
        "PIXCRAWLER_CELERY_BROKER_URL": SECRET_URL,
        "PIXCRAWLER_CELERY_RESULT_BACKEND": SECRET_URL,
        "PYTHONUNBUFFERED": "1",
    }


def test_the_endpoints_win_over_an_inherited_environment() -> None:
    base = {"PIXCRAWLER_CELERY_BROKER_URL": "redis://elsewhere:6379/0"}
    env = worker_environment(base, SECRET_URL, SECRET_URL)
    assert env["PIXCRAWLER_CELERY_BROKER_URL"] == SECRET_URL


def test_node_names() -> None:
    assert node_name(1, "myhost") == "pixcrawler-local-1@myhost"
    taken = ["pixcrawler-local-1@myhost", "pixcrawler-local-3@myhost", "pixcrawler-local-2@other"]
    assert next_node_name(taken, "myhost") == "pixcrawler-local-2@myhost"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "no-host"}, "name@host"),
        ({"pool": "gevent"}, "pool"),
        ({"concurrency": 0}, "at least 1"),
        ({"queues": ()}, "at least one queue"),
        ({"loglevel": "LOUD"}, "log level"),
    ],
)
def test_specs_are_checked(changes: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"name": "n@h", **changes}
    with pytest.raises(ValueError, match=message):
        WorkerSpec(**values)  # type: ignore[arg-type]


def test_backoff_grows_with_jitter_up_to_a_cap() -> None:
    policy = RestartPolicy(base_delay=1.0, factor=2.0, max_delay=10.0, jitter=0.25)
    rng = random.Random(7)
    delays = [policy.delay(n, rng) for n in range(1, 7)]
    for n, delay in enumerate(delays, start=1):
        raw = min(10.0, 2.0 ** (n - 1))
        assert raw * 0.75 <= delay <= raw * 1.25
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not a fixed ladder
    assert not policy.gives_up(4) and policy.gives_up(5)


@pytest.mark.parametrize(
    ("exit_code", "crashed", "stop_requested", "verdict"),
    [
        (0, False, True, "stopped"),
        (None, True, True, "stopped"),  # killed after the grace period, on request
        (2, False, False, "usage"),
        (0, False, False, "stopped"),  # shut down by a remote control command
        (1, False, False, "crashed"),
        (None, True, False, "crashed"),
    ],
)
def test_crash_verdicts(
    exit_code: int | None, crashed: bool, stop_requested: bool, verdict: str
) -> None:
    assert crash_verdict(exit_code, crashed, stop_requested) == verdict
