"""The history database: one written by an earlier version opens and keeps its jobs; jobs
taken off the list are forgotten a month later."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from celery_core.crawler.types import Counts
from celery_core.jobs.state import JobProgress, KeywordProgress
from pixcrawler_gui.services.jobs.history import _SCHEMA, HIDDEN_KEPT_S, HistoryStore
from pixcrawler_gui.services.jobs.job_events import JobInfo


def finished(job_id: str, kept: int = 3) -> tuple[JobInfo, JobProgress]:
    info = JobInfo(job_id, f"job {job_id}", "/data/out", time.time())
    keyword = KeywordProgress(f"{job_id}-t", "birds", "robin", 0, 1, "SUCCESS",
                              counts=Counts(kept=kept))  # fmt: skip
    progress = JobProgress(job_id, info.name, "finished", (keyword,), kept, 0.0, None,
                           info.output_dir, counts=Counts(kept=kept))  # fmt: skip
    return info, progress


def test_a_database_from_before_the_hidden_column_opens_with_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(_SCHEMA)  # the first schema: no "hidden" column
    old.execute(
        "INSERT INTO jobs (job_id, name, state, output_dir, submitted_at, updated_at, kept) "
        "VALUES ('a', 'old job', 'finished', '/data/a', 1.0, 1.0, 7)"
    )
    old.execute("PRAGMA user_version=1")
    old.commit()
    old.close()
    store = HistoryStore(path)
    try:
        [entry] = store.entries()
        assert (entry.info.job_id, entry.progress.counts.kept) == ("a", 7)
        assert store.db.execute("PRAGMA user_version").fetchone() == (2,)
        store.hide(["a"])
        assert store.entries() == [] and store.hidden_ids() == {"a"}
    finally:
        store.close()


def test_hidden_jobs_are_forgotten_after_a_month(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "history.sqlite3")
    try:
        for job_id in ("kept", "hidden"):
            store.save_job(*finished(job_id))
        store.hide(["hidden"])
        count = "SELECT COUNT(*) FROM keywords WHERE job_id='hidden'"
        assert store.db.execute(count).fetchone() == (1,)
        now = time.time()
        assert store.prune(now) == 0  # taken off the list just now
        assert store.prune(now + HIDDEN_KEPT_S + 1) == 1
        assert store.hidden_ids() == set()
        assert [e.info.job_id for e in store.entries()] == ["kept"]
        assert store.db.execute(count).fetchone() == (0,)  # its keywords went with it
    finally:
        store.close()
