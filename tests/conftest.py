"""Fixtures shared by all tests: isolated config and data dirs, a real Redis, real workers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_proc import RedisProcess
from tests.support.worker_proc import WorkerProcess

# Qt tests run without a display; set before any test imports PySide6.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every test off the user's real settings, data and Redis."""
    config = tmp_path / "config"
    data = tmp_path / "data"
    monkeypatch.setenv("PIXCRAWLER_CONFIG_DIR", str(config))
    monkeypatch.setenv("PIXCRAWLER_DATA_DIR", str(data))
    monkeypatch.setenv("PIXCRAWLER_LOG_DIR", str(tmp_path / "logs"))
    # The system's trash and other per-user data (Qt's moveToTrash needs the folder to exist).
    (tmp_path / "xdg-data").mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("PIXCRAWLER_ENV", raising=False)
    for key in list(os.environ):
        if key.startswith(("PIXCRAWLER_CELERY_", "PIXCRAWLER_CRAWLER_")):
            monkeypatch.delenv(key)
    from celery_core.settings.celery_settings import get_settings

    get_settings.cache_clear()
    return tmp_path


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def celery_env(redis_proc: RedisProcess) -> dict[str, str]:
    """Environment that points a worker (and the test's own app) at `redis_proc`."""
    return {
        "PIXCRAWLER_CELERY_BROKER_URL": redis_proc.url(0),
        "PIXCRAWLER_CELERY_RESULT_BACKEND": redis_proc.url(1),
        "PIXCRAWLER_CELERY_TASK_DEFAULT_RETRY_DELAY": "1",
        "PIXCRAWLER_CELERY_TASK_RETRY_BACKOFF_MAX": "2",
    }


@pytest.fixture
def test_app(celery_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    from celery_core.settings.celery_settings import CelerySettings
    from celery_core.worker.app import create_app

    for key, value in celery_env.items():
        monkeypatch.setenv(key, value)
    app = create_app(CelerySettings.load())
    yield app
    app.close()


@pytest.fixture
def worker(celery_env: dict[str, str]) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(celery_env).start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()
