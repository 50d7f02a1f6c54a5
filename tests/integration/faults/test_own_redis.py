"""The app's own Redis killed with `kill -9` (the pid in its state file) under a real crawl: the
app starts it again on the same port, the job shows Paused while Redis is away and goes back
to Running by itself, and the dataset ends with every image once. A server that keeps dying
ends in a plain failed state with its log, and Quit with Redis gone stays under 3 s."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtCore import QSettings, Qt

from celery_core.jobs.spec import parse_job
from celery_core.redis_server.control import Identity, probe
from celery_core.redis_server.embedded import shutdown_server
from celery_core.redis_server.state import info_from_state, read_state
from celery_core.settings.celery_settings import CelerySettings
from pixcrawler_gui.models.jobs_model import JobRow
from pixcrawler_gui.presentation.redis_text import JOB_PAUSED
from pixcrawler_gui.services.events import EmbeddedServerStatus, OwnServerState, WorkerState
from pixcrawler_gui.services.jobs.job_events import WatcherLink
from pixcrawler_gui.services.jobs.jobs_runtime import JobsRuntime
from pixcrawler_gui.services.redis.own_server import OWN_REDIS_POLICY
from pixcrawler_gui.services.runtime import AppServices
from pixcrawler_gui.services.workers.restart_policy import RestartPolicy
from pixcrawler_gui.views.main_window import MainWindow
from tests.integration.gui.conftest import run, screenshot, test_options, wait_for
from tests.integration.gui.jobs_fixtures import JobsApp, close_jobs_window, job_dict
from tests.support.image_server import ImageServer
from tests.support.redis_proc import free_port

IMAGES = 30  # slow pictures, about half a second each, one download at a time
_NUMBERED = (".jpg", ".jpeg", ".png", ".webp", ".gif")


@pytest.fixture
def redis_policy() -> RestartPolicy:
    return OWN_REDIS_POLICY


@pytest.fixture
def own_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "own-redis"
    yield folder
    shutdown_server(folder)  # whatever a failed test left running


@pytest.fixture
def settings() -> CelerySettings:
    """Nothing answers at the configured local URL: the app starts its own Redis."""
    dead = free_port()
    return CelerySettings.load().updated(
        broker_url=f"redis://127.0.0.1:{dead}/0", result_backend=f"redis://127.0.0.1:{dead}/1"
    )


@pytest.fixture
def services(
    loop: qasync.QEventLoop,
    qtbot: Any,
    settings: CelerySettings,
    tmp_path: Path,
    own_dir: Path,
    redis_policy: RestartPolicy,
) -> Iterator[AppServices]:
    """The app's services on their own Redis; the workers they start may fetch from the image
    site on 127.0.0.1."""
    env = {
        **os.environ,
        "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PIXCRAWLER_CRAWLER_TOTAL_TIMEOUT": "5",
        "PIXCRAWLER_CRAWLER_RETRY_BACKOFF": "0.05",
        "PIXCRAWLER_CRAWLER_MAX_PER_HOST": "1",
    }
    options = test_options(
        tmp_path,
        allow_embedded=True,
        embedded_dir=own_dir,
        worker_env=env,
        redis_restart_policy=redis_policy,
    )
    app_services = AppServices(settings, options)
    yield app_services
    run(loop, qtbot, app_services.shutdown(keep_workers=False), timeout=60)


class Session:
    """The window on the services, opened before they start, as the app does (so the status
    bar hears the server start)."""

    def __init__(self, app: JobsApp) -> None:
        self.app = app
        self.closed = False


@pytest.fixture
def session(
    loop: qasync.QEventLoop, qtbot: Any, services: AppServices, ui_state: QSettings
) -> Iterator[Session]:
    jobs = JobsRuntime(services, poll_interval=1.0)
    window = MainWindow(services, ui_state, jobs)
    window.resize(1100, 720)
    window.show()
    qtbot.waitExposed(window)

    async def start() -> None:
        await asyncio.gather(services.start(), jobs.start())

    run(loop, qtbot, start(), timeout=60)
    opened = Session(JobsApp(window, jobs))
    yield opened
    if not opened.closed:
        close_jobs_window(loop, qtbot, opened.app)


def _server(own_dir: Path) -> dict[str, Any]:
    state = read_state(own_dir)
    assert state is not None, f"no state file in {own_dir}"
    return state


def _kill_server(own_dir: Path) -> dict[str, Any]:
    """`kill -9` the pid the state file names, as a user would; returns that state."""
    state = _server(own_dir)
    os.kill(state["pid"], signal.SIGKILL)
    return state


def _answering(own_dir: Path) -> Identity | None:
    """The server the state file names, if it answers with its password. (Not
    `running_server()`: that reaps a finished child itself, and the app's server is a child of
    this test's process; the app must find out how it ended.)"""
    state = read_state(own_dir)
    return probe(info_from_state(state, own_dir)) if state is not None else None


def running_now(own_dir: Path) -> bool:
    """The server answers already (then the screen has moved on: no picture of the outage)."""
    return _answering(own_dir) is not None


def _reaped(pid: int) -> bool:
    """The process is gone, not left a zombie."""
    return not Path(f"/proc/{pid}").exists()


def _start_worker(qtbot: Any, services: AppServices) -> str:
    supervisor = services.supervisor
    worker_id = supervisor.add_worker(supervisor.suggest_spec("prefork", 1))

    def state() -> WorkerState:
        return next(s.state for s in supervisor.workers() if s.worker_id == worker_id)

    wait_for(qtbot, lambda: state() == WorkerState.READY, timeout=60)
    return worker_id


def _submit(loop: qasync.QEventLoop, qtbot: Any, app: JobsApp, site: ImageServer, out: Path) -> str:
    urls = [site.url(f"/slow/{n}.jpg") for n in range(IMAGES)]
    job = job_dict(out, {"cats": [{"name": "street cats", "urls": urls}]}, max_images=IMAGES)
    job_id = run(loop, qtbot, app.jobs.service.submit(parse_job(job).spec))
    assert job_id is not None
    return str(job_id)


def _dataset_files(out: Path) -> list[str]:
    return sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.suffix.lower() in _NUMBERED and p.stem.isdigit()
    )


def test_own_redis_killed_mid_crawl_comes_back_on_its_port_and_the_job_goes_on(
    loop: qasync.QEventLoop,
    qtbot: Any,
    session: Session,
    services: AppServices,
    image_site: ImageServer,
    own_dir: Path,
    tmp_path: Path,
) -> None:
    app = session.app
    window, view = app.window, app.pages.jobs
    statuses: list[EmbeddedServerStatus] = []
    links: list[WatcherLink] = []
    own = window.status.embedded.text
    said: list[str] = []  # what the status bar's indicator said, after each event

    def on_status(status: EmbeddedServerStatus) -> None:
        statuses.append(status)
        with contextlib.suppress(RuntimeError):  # the window is gone (a failed test's teardown)
            said.append(own.text())

    unsubscribe = services.hub.subscribe(EmbeddedServerStatus, on_status)
    services.hub.subscribe(WatcherLink, links.append)
    before = _server(own_dir)
    assert own.text() == f"Own Redis on port {before['port']}"

    _start_worker(qtbot, services)
    out = tmp_path / "datasets" / "cats"
    job_id = _submit(loop, qtbot, app, image_site, out)
    window.show_page("jobs")
    view.select(job_id)
    view.tree.expandAll()

    def job() -> JobRow:
        row = view.model.job(job_id)
        assert row is not None
        return row

    shown: list[tuple[str, str, str]] = []  # (state, rate, time left) as the table shows them

    def note() -> None:
        row = view.model.row_of(job_id)
        if row < 0:
            return
        cells = tuple(str(view.model.index(row, c).data()) for c in (1, 3, 4))
        if not shown or shown[-1] != cells:
            shown.append(cells)  # type: ignore[arg-type]

    view.model.dataChanged.connect(note)
    wait_for(qtbot, lambda: job().progress.counts.kept >= 5, timeout=60)
    assert job().progress.state == "running"
    kept_before = job().progress.in_folder

    killed = _kill_server(own_dir)
    killed_at = time.monotonic()
    # The indicator goes red at once and says what happens; the job says it waits.
    wait_for(qtbot, lambda: statuses, timeout=5)
    assert said[0] == "Own Redis stopped: restarting…", said
    assert window.status.embedded.light.pixmap() is not None
    wait_for(qtbot, lambda: JOB_PAUSED in [cells[0] for cells in shown], timeout=10)
    # The broker and results lights do not say "connected" about a server that is gone.
    broker = window.status.broker.text
    wait_for(qtbot, lambda: not said[-1].startswith("Own Redis stopped") or (
        broker.text() != "Broker: connected"), timeout=5)  # fmt: skip
    if not running_now(own_dir):
        screenshot(window, "45-jobs-own-redis-restarting")
    # Back on the same port with the same password, within 2 s; the old process reaped.
    back = wait_for(
        qtbot, lambda: (s := _answering(own_dir)) and s.pid != killed["pid"] and s, timeout=10
    )
    restarted_s = time.monotonic() - killed_at
    assert restarted_s < 2.0, f"the server came back after {restarted_s:.2f} s"
    # Its state file is rewritten once it answers.
    now = wait_for(qtbot, lambda: (s := _server(own_dir))["pid"] == back.pid and s, timeout=5)
    assert (now["port"], now["password"], now["pid"]) == (
        killed["port"],
        killed["password"],
        back.pid,
    )
    wait_for(qtbot, lambda: _reaped(killed["pid"]), timeout=5)
    wait_for(qtbot, lambda: own.text() == f"Own Redis on port {killed['port']}", timeout=10)
    assert "started again once" in window.status.embedded.toolTip()
    # The job goes back to Running by itself, and its count moves again.
    wait_for(qtbot, lambda: job().progress.in_folder > kept_before + 1, timeout=30)
    running_again_s = time.monotonic() - killed_at
    print(f"own Redis back {restarted_s:.2f} s, the job running again {running_again_s:.2f} s "
          "after the kill")  # fmt: skip

    wait_for(qtbot, lambda: job().ended, timeout=120)
    progress = job().progress
    assert progress.state == "finished", progress
    # Every image once: on disk, in the manifest, and in what the job counts.
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == IMAGES
    assert sorted(entry["path"] for entry in manifest) == _dataset_files(out)
    assert len({entry["sha256"] for entry in manifest}) == IMAGES
    assert progress.in_folder == IMAGES
    assert progress.counts.kept + progress.already_had == IMAGES

    states = [cells[0] for cells in shown]
    paused = [i for i, s in enumerate(states) if s == JOB_PAUSED]
    assert paused, states
    assert "Running" in states[: paused[0]] and "Running" in states[paused[-1] :], states
    assert states[-1] == "Finished", states
    assert all(cells[1:] == ("—", "—") for cells in shown if cells[0] == JOB_PAUSED), shown
    kinds = [s.state for s in statuses]
    assert kinds[0] == OwnServerState.DOWN and OwnServerState.RUNNING in kinds[1:], kinds
    down = statuses[0]
    assert (down.signal, down.exit_code, down.port) == (signal.SIGKILL, None, killed["port"])
    connected = [link.connected for link in links]
    assert False in connected and connected[-1], connected
    unsubscribe()


@pytest.mark.parametrize(
    "redis_policy", [RestartPolicy(base_delay=0.1, max_delay=0.2, jitter=0.0, max_crashes=3)]
)
def test_own_redis_that_keeps_dying_fails_plainly_and_quit_stays_under_3_s(
    loop: qasync.QEventLoop,
    qtbot: Any,
    session: Session,
    services: AppServices,
    image_site: ImageServer,
    own_dir: Path,
    tmp_path: Path,
) -> None:
    app = session.app
    window, view = app.window, app.pages.jobs
    statuses: list[EmbeddedServerStatus] = []
    services.hub.subscribe(EmbeddedServerStatus, statuses.append)
    _start_worker(qtbot, services)
    out = tmp_path / "datasets" / "cats"
    job_id = _submit(loop, qtbot, app, image_site, out)
    window.show_page("jobs")
    view.select(job_id)
    view.tree.expandAll()
    wait_for(qtbot, lambda: (row := view.model.job(job_id)) and row.progress.counts.kept >= 2, 60)

    # Killed again each time it is back: the third end in a row is the last.
    port = _server(own_dir)["port"]
    for attempt in (1, 2):
        pid = _kill_server(own_dir)["pid"]
        wait_for(qtbot, lambda p=pid: (s := _answering(own_dir)) and s.pid != p, 10)
        assert _server(own_dir)["port"] == port
        wait_for(qtbot, lambda n=attempt: _restarts(statuses) == n, timeout=10)
    last = _kill_server(own_dir)
    own = window.status.embedded
    wait_for(qtbot, lambda: own.text.text() == "Own Redis failed: not restarted", timeout=10)
    failed = statuses[-1]
    assert failed.state == OwnServerState.FAILED and failed.crashes_in_a_row == 3
    log_lines = (own_dir / "server.log").read_text().strip().splitlines()
    assert failed.last_lines and failed.last_lines[-1] == log_lines[-1]
    tip = own.toolTip()
    assert "stopped 3 times in a row and is not started again" in tip
    assert "was ended by SIGKILL (ended from outside PixCrawler)" in tip
    assert "The end of its log:" in tip
    assert failed.last_lines[-1] in tip and last["password"] not in tip
    wait_for(qtbot, lambda: _reaped(last["pid"]), timeout=5)
    assert _answering(own_dir) is None  # not started a fourth time

    row = view.model.job(job_id)
    assert row is not None
    wait_for(qtbot, lambda: view.model.state_text(row) == JOB_PAUSED, timeout=15)
    wait_for(qtbot, lambda: "waiting for Redis" in view.details.text(), timeout=5)
    screenshot(window, "46-jobs-own-redis-failed")
    wait_for(qtbot, window.status.embedded_details.isVisible, timeout=5)
    qtbot.mouseClick(window.status.embedded_details, Qt.MouseButton.LeftButton)
    box = wait_for(qtbot, lambda: window.status.details_box, timeout=5)
    wait_for(qtbot, box.isVisible, timeout=5)
    assert box.detailedText().splitlines() == list(failed.last_lines)
    assert "Quit and reopen PixCrawler" in box.informativeText()
    screenshot(box, "47-own-redis-failed-details")
    box.close()

    # Quit, as the window's Quit does: it asks whether work runs (to offer keeping the
    # workers), then, the user having chosen to stop them, shuts everything down.
    started = time.monotonic()
    run(loop, qtbot, window.jobs_running(), timeout=10)
    run(loop, qtbot, app.window.stop_pages(), timeout=10)
    run(loop, qtbot, app.jobs.shutdown(), timeout=10)
    run(loop, qtbot, services.shutdown(keep_workers=False), timeout=10)
    quit_s = time.monotonic() - started
    session.closed = True
    window.finish_close()
    window.deleteLater()
    assert quit_s < 3.0, f"Quit took {quit_s:.2f} s with Redis gone"
    assert all(s.state == WorkerState.STOPPED for s in services.supervisor.workers())


def _restarts(statuses: list[EmbeddedServerStatus]) -> int:
    running = [s for s in statuses if s.state == OwnServerState.RUNNING]
    return running[-1].restarts if running else 0
