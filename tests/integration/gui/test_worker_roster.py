"""The app starts the workers it remembers (one on a first run) and remembers changes."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync

from celery_core.settings.celery_settings import CelerySettings
from pixcrawler_gui.services.events import WorkerState
from pixcrawler_gui.services.runtime import AppServices
from pixcrawler_gui.services.workers.worker_roster import SavedWorker, WorkerRoster
from tests.integration.gui.conftest import run, screenshot, test_options, wait_for


def test_roster_round_trip_and_first_run(tmp_path: Path) -> None:
    roster = WorkerRoster(tmp_path / "conf" / "workers.json")
    assert roster.load() is None  # never saved: a first run
    workers = [SavedWorker("prefork", 2), SavedWorker("threads", 8, ("crawl",))]
    roster.save(workers)
    assert roster.load() == workers
    roster.save([])
    assert roster.load() == []  # "start none" is remembered, unlike a first run
    assert [p.name for p in roster.path.parent.iterdir()] == ["workers.json"]  # no temp files


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"workers": {"pool": "prefork"}}',
        '{"workers": [{"pool": "gevent", "concurrency": 2}]}',
        '{"workers": [{"pool": "prefork", "concurrency": 0}]}',
        '{"workers": [{"pool": "prefork", "concurrency": 2, "queues": []}]}',
    ],
)
def test_a_damaged_roster_is_set_aside_not_lost(tmp_path: Path, content: str) -> None:
    path = tmp_path / "workers.json"
    path.write_text(content)
    assert WorkerRoster(path).load() is None
    assert not path.exists()
    assert (tmp_path / "workers.json.invalid").read_text() == content


@pytest.fixture
def autostart(
    loop: qasync.QEventLoop, qtbot: Any, settings: CelerySettings, tmp_path: Path
) -> Iterator[AppServices]:
    options = test_options(tmp_path, autostart_workers=True)
    app_services = AppServices(settings, options)
    yield app_services
    run(loop, qtbot, app_services.shutdown(keep_workers=False), timeout=60)


def test_a_first_run_starts_one_worker_and_remembers_it(
    loop: qasync.QEventLoop, qtbot: Any, autostart: AppServices, tmp_path: Path, ui_state: Any
) -> None:
    from pixcrawler_gui.views.main_window import MainWindow

    window = MainWindow(autostart, ui_state)
    window.resize(1100, 720)
    window.show()
    qtbot.waitExposed(window)
    run(loop, qtbot, autostart.start())
    workers = autostart.supervisor.workers()
    assert len(workers) == 1
    pool, concurrency = autostart.worker_defaults()
    assert (workers[0].pool, workers[0].concurrency) == (pool, concurrency)
    wait_for(qtbot, lambda: autostart.supervisor.workers()[0].state == WorkerState.READY, 60)
    wait_for(qtbot, lambda: window.workers_panel.model.rowCount() == 1)
    screenshot(window, "14-first-run-worker-started")
    window.finish_close()
    window.deleteLater()
    saved = json.loads((tmp_path / "workers.json").read_text())
    assert saved == {
        "workers": [
            {"pool": pool, "concurrency": concurrency, "queues": ["crawl", "validation", "default"]}
        ]
    }


def test_saved_workers_start_and_removing_one_is_remembered(
    loop: qasync.QEventLoop, qtbot: Any, autostart: AppServices, tmp_path: Path
) -> None:
    WorkerRoster(tmp_path / "workers.json").save(
        [SavedWorker("solo", 1, ("crawl",)), SavedWorker("threads", 3)]
    )
    run(loop, qtbot, autostart.start())
    supervisor = autostart.supervisor
    assert [(w.pool, w.concurrency, w.queues) for w in supervisor.workers()] == [
        ("solo", 1, ("crawl",)),
        ("threads", 3, ("crawl", "validation", "default")),
    ]
    first = supervisor.workers()[0].worker_id
    wait_for(qtbot, lambda: supervisor.workers()[0].state == WorkerState.READY, 60)
    supervisor.stop_worker(first)
    wait_for(qtbot, lambda: supervisor.workers()[0].state == WorkerState.STOPPED, 60)
    supervisor.remove_worker(first)
    assert WorkerRoster(tmp_path / "workers.json").load() == [SavedWorker("threads", 3)]


def test_an_empty_list_starts_no_worker(
    loop: qasync.QEventLoop, qtbot: Any, autostart: AppServices, tmp_path: Path
) -> None:
    WorkerRoster(tmp_path / "workers.json").save([])
    run(loop, qtbot, autostart.start())
    assert autostart.supervisor.workers() == []


def test_workers_left_running_last_time_are_not_started_twice(
    loop: qasync.QEventLoop,
    qtbot: Any,
    settings: CelerySettings,
    tmp_path: Path,
) -> None:
    first = AppServices(settings, test_options(tmp_path, autostart_workers=True))
    run(loop, qtbot, first.start())
    wait_for(qtbot, lambda: first.supervisor.workers()[0].state == WorkerState.READY, 60)
    left = first.supervisor.workers()[0]
    assert left.pid is not None
    run(loop, qtbot, first.shutdown(keep_workers=True), timeout=60)  # "keep running"
    second = AppServices(settings, test_options(tmp_path, autostart_workers=True))
    try:
        os.kill(left.pid, 0)  # still running, on its own
        run(loop, qtbot, second.start())
        assert second.supervisor.workers() == []  # no second worker under the same name
        # It is watched like any other worker sharing the Redis.
        wait_for(qtbot, lambda: left.node in second.remote.nodes(), timeout=30)
    finally:
        run(loop, qtbot, second.shutdown(keep_workers=False), timeout=60)
        os.killpg(left.pid, signal.SIGKILL)
        os.waitpid(left.pid, 0)
