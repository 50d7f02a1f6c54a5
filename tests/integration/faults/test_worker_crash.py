"""A worker killed mid-crawl with `kill -9` on its whole process group: the app says so on the
Workers page and in the job's details, restarts the worker, the tasks it held run again, and
the dataset ends with every image once. A second crash soon after pops up a notification."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync

from celery_core.jobs.spec import parse_job
from celery_core.settings.celery_settings import CelerySettings
from pixcrawler_gui.models.workers_model import STATE_COLUMN
from pixcrawler_gui.services.events import WorkerCrashed, WorkerSnapshot, WorkerState
from pixcrawler_gui.services.jobs.job_events import TasksHandedBack
from pixcrawler_gui.services.runtime import AppServices
from tests.integration.gui.conftest import run, screenshot, test_options, wait_for
from tests.integration.gui.jobs_fixtures import JobsSession, job_dict
from tests.support.image_server import ImageServer

PER_KEYWORD = 15  # slow pictures (about half a second each) per keyword
_NUMBERED = (".jpg", ".jpeg", ".png", ".webp", ".gif")


@pytest.fixture
def services(
    loop: qasync.QEventLoop, qtbot: Any, settings: CelerySettings, tmp_path: Path
) -> Iterator[AppServices]:
    """The app's services; the workers it starts may fetch from the image site on 127.0.0.1."""
    env = {
        **os.environ,
        "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PIXCRAWLER_CRAWLER_TOTAL_TIMEOUT": "5",
        "PIXCRAWLER_CRAWLER_RETRY_BACKOFF": "0.05",
        "PIXCRAWLER_CRAWLER_MAX_PER_HOST": "1",  # one download at a time per keyword
    }
    app_services = AppServices(settings, test_options(tmp_path, worker_env=env))
    yield app_services
    run(loop, qtbot, app_services.shutdown(keep_workers=False), timeout=60)


def _dataset_files(out: Path) -> list[str]:
    return sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.suffix.lower() in _NUMBERED and p.stem.isdigit()
    )


def _saved(row: Any) -> int:
    """Images in the dataset by the job's own count (a re-run counts earlier ones apart)."""
    return int(row.progress.counts.kept + row.progress.already_had)


def test_a_worker_killed_mid_crawl_is_told_and_its_tasks_run_again(
    loop: qasync.QEventLoop,
    qtbot: Any,
    jobs_session: JobsSession,
    image_site: ImageServer,
    tmp_path: Path,
) -> None:
    app = jobs_session.app
    window, jobs = app.window, app.pages.jobs
    hub, supervisor = jobs_session.services.hub, jobs_session.services.supervisor
    crashes: list[WorkerCrashed] = []
    handed_back: list[TasksHandedBack] = []
    hub.subscribe(WorkerCrashed, crashes.append)
    hub.subscribe(TasksHandedBack, handed_back.append)

    worker_id = supervisor.add_worker(supervisor.suggest_spec("prefork", 2))

    def worker() -> WorkerSnapshot:
        return next(s for s in supervisor.workers() if s.worker_id == worker_id)

    wait_for(qtbot, lambda: worker().state == WorkerState.READY, timeout=60)
    out = tmp_path / "datasets" / "pets"
    slow = [image_site.url(f"/slow/{n}.jpg") for n in range(2 * PER_KEYWORD)]
    keywords = {
        "dogs": [{"name": "park dogs", "urls": slow[:PER_KEYWORD]}],
        "cats": [{"name": "street cats", "urls": slow[PER_KEYWORD:]}],
    }
    spec = parse_job(job_dict(out, keywords, max_images=PER_KEYWORD)).spec
    job_id = run(loop, qtbot, app.jobs.service.submit(spec))
    assert job_id is not None
    total = 2 * PER_KEYWORD

    def job() -> Any:
        return jobs.model.job(job_id)

    # Mid-crawl: both keywords under way, one in each of the worker's two pool processes.
    wait_for(
        qtbot,
        lambda: (
            (row := job()) is not None
            and all(k.counts.kept >= 1 for k in row.progress.keywords)
            and row.progress.counts.kept <= total - 8
        ),
        timeout=60,
    )
    task_ids = {k.task_id for k in job().progress.keywords}
    first_pid = worker().pid
    assert first_pid is not None
    saved_at_kill = _saved(job())
    os.killpg(first_pid, signal.SIGKILL)  # the worker and its pool, at once
    killed_at = time.monotonic()

    crash = wait_for(qtbot, lambda: crashes and crashes[0], timeout=30)
    assert (crash.signal, crash.exit_code, crash.restarted) == (signal.SIGKILL, None, True)
    assert crash.tasks_handed_back == 2 and set(crash.task_ids) == task_ids
    assert crash.previous_crash_at is None
    [for_job] = wait_for(qtbot, lambda: handed_back, timeout=10)
    assert for_job.job_id == job_id and set(for_job.task_ids) == task_ids

    # The Workers page says what happened, in words, next to the worker's log.
    window.show_page("workers")
    panel = window.workers_panel
    panel.select(worker_id)
    wait_for(qtbot, panel.crash_box.isVisible, timeout=10)
    notice = panel.crash_text.text()
    assert f"{crash.node} was killed by signal 9 (SIGKILL) at " in notice
    assert "and was restarted. 2 tasks it had taken were handed back to the queue" in notice
    assert "Signal 9 (SIGKILL) means something outside PixCrawler ended the worker" in notice
    wait_for(qtbot, lambda: worker().state in (WorkerState.READY, WorkerState.BUSY), timeout=60)
    assert worker().pid != first_pid and worker().restarts == 1
    state = str(panel.model.data(panel.model.index(panel.model.row_of(worker_id), STATE_COLUMN)))
    assert " · last crash at " in state
    screenshot(window, "30-workers-after-a-crash")

    # The job's details say its tasks went back to the queue, and why.
    window.show_page("jobs")
    jobs.select(job_id)
    wait_for(qtbot, lambda: "handed back" in jobs.details.text(), timeout=10)
    details = jobs.details.text()
    assert (
        f"2 tasks were handed back to the queue after worker {crash.node} was killed by "
        "signal 9 (SIGKILL) at "
    ) in details
    assert "; they will run again, usually within half a minute." in details
    screenshot(window, "31-job-details-after-a-crash")
    # "Usually within half a minute": the restarted worker takes the tasks back once their
    # leases lapse (15 s), then the count moves again.
    wait_for(qtbot, lambda: _saved(job()) > saved_at_kill, timeout=60)
    print(f"progress again {time.monotonic() - killed_at:.1f} s after the kill")

    # The tasks ran again on the restarted worker: every image once, on disk and in the
    # manifest.
    wait_for(qtbot, lambda: job().ended, timeout=150)
    progress = job().progress
    assert progress.state == "finished", progress
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == total
    assert sorted(entry["path"] for entry in manifest) == _dataset_files(out)
    assert len({entry["sha256"] for entry in manifest}) == total
    assert len({entry["url"] for entry in manifest}) == total
    wait_for(qtbot, lambda: "; they ran again." in jobs.details.text(), timeout=10)
    screenshot(window, "32-job-finished-after-a-crash")

    # One crash told on the page is enough; a second one within minutes pops up.
    notifier: Any = app.pages.notifier
    assert not [sent for sent in notifier.sent if sent[0].startswith("Worker")]
    second_pid = worker().pid
    assert second_pid is not None
    os.killpg(second_pid, signal.SIGKILL)
    again = wait_for(qtbot, lambda: len(crashes) == 2 and crashes[1], timeout=30)
    assert again.previous_crash_at == crash.at and again.tasks_handed_back == 0
    title, message, level = wait_for(
        qtbot, lambda: [s for s in notifier.sent if s[0].startswith("Worker")][-1:], timeout=10
    )[0]
    assert (title, level) == (f"Worker keeps crashing: {crash.node}", "warning")
    assert message.startswith("It was killed by signal 9 (SIGKILL) at ")
    assert "after its previous crash, and was restarted." in message
    wait_for(qtbot, lambda: worker().state == WorkerState.READY, timeout=60)
    window.show_page("workers")
    assert panel.crash_text.text().startswith("<b>Latest 2 crashes</b>")
    screenshot(window, "33-workers-after-two-crashes")
