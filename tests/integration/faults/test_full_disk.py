"""A full disk or a folder that cannot be written stops the whole job, through a real worker:
every task ends within seconds of the first refused write, none keeps downloading, what was
saved stays consistent, the job says why in plain words, and a re-run after freeing space
carries on where it stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import qasync
from celery import Celery

from celery_core.jobs.control import submit_job
from celery_core.jobs.spec import parse_job
from pixcrawler_gui.models.jobs_model import STATE
from pixcrawler_gui.presentation.job_text import fault_text, job_state_text, keyword_state
from pixcrawler_gui.services.jobs.job_events import JobSpaceLow
from tests.integration.faults.disk_fixtures import (
    DELAY,
    KEYWORDS,
    PER_KEYWORD,
    SLOW_KEYWORD,
    PacedSite,
    Tmpfs,
    consistent_dataset,
    disk,
    disk_app,
    disk_env,
    disk_worker,
    finished,
    job_for,
    paced_site,
    picture_path,
    task_end_times,
)
from tests.integration.gui.conftest import run, screenshot, wait_for
from tests.integration.gui.jobs_fixtures import JobsSession
from tests.support.worker_proc import WorkerProcess

REPO = Path(__file__).resolve().parents[3]
TOTAL = KEYWORDS * PER_KEYWORD

__all__ = ["disk", "disk_app", "disk_env", "disk_worker", "paced_site"]  # fixtures used here


def test_a_full_disk_stops_every_task_and_a_rerun_completes_the_dataset(
    disk: Tmpfs, paced_site: PacedSite, disk_app: Celery, disk_worker: WorkerProcess
) -> None:
    site = paced_site.server
    out = disk.mount(6) / "dataset"  # room for about 40 of the 400 pictures (150 KB each)
    spec = parse_job(job_for(site, out)).spec
    progress = finished(disk_app, submit_job(disk_app, spec).job_id)

    # The job failed, saying why: the disk, where, how much room was left.
    assert progress.state == "failed", progress
    fault = progress.fault
    assert fault is not None and fault.kind == "disk_full" and fault.error == "ENOSPC"
    assert fault.path == str(out.resolve())
    assert fault.free_bytes is not None and fault.free_bytes < 1_000_000
    assert fault_text(fault).startswith(f"Disk full at {out.resolve()} (")
    assert fault_text(fault).endswith(" MB free)")
    assert job_state_text(progress) == f"Failed: {fault_text(fault)}"
    assert progress.error is None and progress.summary["fault"]["kind"] == "disk_full"

    # Every task ended, none of them counted the pictures that did not fit as failed downloads.
    keywords = progress.keywords
    assert all(k.done and k.state == "SUCCESS" for k in keywords), keywords
    assert progress.counts.failed == 0, progress.counts.failed_reasons
    assert keywords[0].fault is not None  # it filled the disk
    assert keyword_state(keywords[0])[0].startswith("Stopped: Disk full at ")
    # The slow keyword was mid-download, the last two had not started: the job's stop flag
    # ended them, without a refused write of their own.
    assert all(k.fault is None and k.cancelled for k in keywords[1:]), keywords

    # Within seconds of the first refused write every task had ended; the slow task fetched
    # nothing new meanwhile, the waiting ones nothing at all, and nothing came after.
    first_fault = keywords[0].fault.at
    ends = task_end_times(disk_app, progress)
    stop_s = max(ends) - first_fault
    after_fault = [r for r in site.requests if r.at > first_fault]
    after_stop = [r for r in site.requests if r.at > max(ends)]
    slow = paced_site.requests_for(SLOW_KEYWORD)
    print(f"\nfirst ENOSPC -> slow task ended {ends[SLOW_KEYWORD] - first_fault:.2f} s, "
          f"last task ended {stop_s:.2f} s; requests after the first ENOSPC: {len(after_fault)}, "
          f"after the last task ended: {len(after_stop)}; slow keyword {len(slow)} requests; "
          f"kept {progress.counts.kept} of {TOTAL}; {len(site.requests)} requests")  # fmt: skip
    assert stop_s < 5.0
    assert ends[SLOW_KEYWORD] - first_fault < 3.0  # before its first picture would have come
    assert after_stop == []
    assert [r for r in slow if r.at > first_fault + 1.0] == []
    assert all(not paced_site.requests_for(k) for k in range(2, KEYWORDS))
    assert len(after_fault) <= 12  # in flight at most, never the hundreds left

    # What was saved is whole and listed once, with no temp file left behind.
    saved = consistent_dataset(out)
    assert 10 <= len(saved) == progress.counts.kept < TOTAL

    # Room again: the same job carries on where it stopped and completes the dataset.
    disk.remount("size=128m")
    paced_site.slow_delay = DELAY
    again = finished(disk_app, submit_job(disk_app, spec).job_id)
    assert again.state == "finished", again
    assert again.fault is None
    assert again.already_had == len(saved)
    assert again.counts.kept == TOTAL - len(saved)
    complete = consistent_dataset(out)
    assert len(complete) == TOTAL
    assert complete[: len(saved)] == saved  # the first run's images and lines stay as they were
    assert {e["url"] for e in complete} == {
        site.url(picture_path(k, n)) for k in range(KEYWORDS) for n in range(PER_KEYWORD)
    }


def test_a_read_only_folder_stops_the_job_before_any_download(
    disk: Tmpfs, paced_site: PacedSite, disk_app: Celery, disk_worker: WorkerProcess
) -> None:
    out = disk.mount(4) / "dataset"
    out.mkdir()
    disk.remount("ro")
    spec = parse_job(job_for(paced_site.server, out)).spec
    progress = finished(disk_app, submit_job(disk_app, spec).job_id, timeout=60)
    assert progress.state == "failed", progress
    fault = progress.fault
    assert fault is not None and fault.kind == "not_writable" and fault.error == "EROFS"
    assert fault.path == str(out.resolve())
    assert fault_text(fault) == f"Can't write to {out.resolve()}: the disk is read-only"
    assert all(k.done for k in progress.keywords)
    assert progress.counts.failed == 0 and progress.counts.kept == 0
    assert paced_site.server.requests == []  # not one picture fetched for a folder that takes none
    assert list(out.iterdir()) == []


def test_pixcrawler_crawl_warns_refuses_and_says_the_disk_is_full(
    disk: Tmpfs, paced_site: PacedSite, disk_env: dict[str, str], disk_worker: WorkerProcess,
    tmp_path: Path,
) -> None:  # fmt: skip
    job_file = tmp_path / "job.json"
    out = disk.mount(2) / "dataset"
    job_file.write_text(json.dumps(job_for(paced_site.server, out)))
    env = {**os.environ, **disk_env}

    def crawl() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pixcrawler_gui", "crawl", str(job_file), "--out", str(out)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip

    # Too little room to start at all: refused before anything is submitted.
    refused = crawl()
    assert refused.returncode == 1, refused.stderr
    assert "too little to start a crawl" in refused.stderr
    assert paced_site.server.requests == []

    # Room for some: a warning first, then the job runs until the disk is full and says so.
    disk.remount("size=8m")
    run = crawl()
    assert run.returncode == 1, run.stderr
    warning = next(line for line in run.stderr.splitlines() if "warning: " in line)
    assert warning.startswith("pixcrawler: warning: Only ")
    assert f"free at {out.parent}: {TOTAL} images need about " in warning
    assert "The job stops when the disk is full." in warning
    assert "Job failed: " in run.stdout
    assert f"Error: Disk full at {out.resolve()} (" in run.stdout
    assert " failed downloads " in run.stdout and ", 0 failed downloads" in run.stdout
    consistent_dataset(out)


def test_the_app_warns_before_and_says_the_disk_is_full_after(
    loop: qasync.QEventLoop,
    qtbot: Any,
    jobs_session: JobsSession,
    disk: Tmpfs,
    paced_site: PacedSite,
    disk_worker: WorkerProcess,
) -> None:
    app = jobs_session.app
    jobs = app.pages.jobs
    app.window.show_page("jobs")
    warnings: list[JobSpaceLow] = []
    jobs_session.services.hub.subscribe(JobSpaceLow, warnings.append)
    out = disk.mount(6) / "dataset"
    spec = parse_job(job_for(paced_site.server, out)).spec

    # Submitted with a warning: 400 pictures of about 200 KB do not fit in 6 MB.
    job_id = run(loop, qtbot, app.jobs.service.submit(spec))
    assert job_id is not None
    [warning] = warnings
    assert warning.job_id == job_id and warning.check.images == TOTAL
    assert not warning.check.fits and not warning.check.refused
    said = wait_for(qtbot, lambda: not jobs.feedback.isHidden() and jobs.feedback.text())
    assert said.startswith("Only ") and f"{TOTAL} images need about " in said

    # Stopped by the full disk: the jobs list, the details and the notification say so.
    row = wait_for(qtbot, lambda: (r := jobs.model.job(job_id)) is not None and r.ended and r,
                   timeout=120)  # fmt: skip
    assert row.progress.state == "failed"
    expected = f"Failed: Disk full at {out.resolve()} ("
    state = jobs.model.data(jobs.model.index(jobs.model.row_of(job_id), STATE))
    assert str(state).startswith(expected)
    jobs.select(job_id)
    assert expected in wait_for(qtbot, jobs.details.text)
    notifier: Any = app.pages.notifier
    title, message, level = wait_for(qtbot, lambda: notifier.sent and notifier.sent[-1])
    assert (title, level) == ("Crawl failed: full-disk", "error")
    assert message.startswith(f"Disk full at {out.resolve()} (")
    assert "Saved before it stopped" in message
    screenshot(app.window, "40-job-stopped-by-a-full-disk")
