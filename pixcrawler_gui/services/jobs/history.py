"""The job history: jobs, their keywords and final counts in SQLite, so they outlive the app
and the results' expiry in Redis.

`HistoryStore` is the plain database (one connection, WAL, `synchronous=NORMAL`). `History`
runs it on one thread of its own: each write is a few rows (a job of 1,000 keywords rewrites
1,000 small rows, about 5 ms), but a WAL checkpoint or a slow disk (a network home folder, an
antivirus scan) can take far longer, and the GUI's loop must not wait on a disk. Writes are
queued in order on that thread; `flush()` waits for them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from celery_core.crawler.types import Counts, StorageFault
from celery_core.jobs.state import JobProgress, JobState, KeywordProgress
from celery_core.settings.file_settings import data_dir
from pixcrawler_gui.services.jobs.job_events import JobInfo

log = logging.getLogger(__name__)
T = TypeVar("T")

EXPIRED = "expired"  # the job's results left Redis before its end was seen
SCHEMA_VERSION = 2  # 2: jobs.hidden (removed from the list)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    output_dir TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL,
    kept INTEGER NOT NULL DEFAULT 0,
    target INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    invalid INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    reason TEXT,
    summary TEXT,
    spec TEXT,
    parent_job TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (submitted_at DESC);
CREATE TABLE IF NOT EXISTS keywords (
    job_id TEXT NOT NULL REFERENCES jobs (job_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, position)
);
"""
_SELECT = (
    "SELECT job_id, name, state, output_dir, submitted_at, finished_at, kept, target, "
    "duplicates, invalid, failed, error, reason, summary, spec, parent_job FROM jobs"
)
_KEYWORD_FIELDS = {f.name for f in fields(KeywordProgress)}
HIDDEN_KEPT_S = 30 * 24 * 3600  # far longer than results stay in Redis


def default_path() -> Path:
    return data_dir() / "history.sqlite3"


@dataclass(frozen=True)
class HistoryEntry:
    info: JobInfo
    progress: JobProgress


class HistoryStore:
    """One SQLite connection; use it from a single thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        with self.db:
            self.db.executescript(_SCHEMA)
            columns = {row[1] for row in self.db.execute("PRAGMA table_info(jobs)")}
            if "hidden" not in columns:
                self.db.execute("ALTER TABLE jobs ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0")
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    def save_job(self, info: JobInfo, progress: JobProgress) -> None:
        """Insert or replace a job's description and where it stands."""
        with self.db:
            self.db.execute(
                "INSERT INTO jobs (job_id, name, state, output_dir, submitted_at, updated_at, "
                "spec, parent_job) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO "
                "UPDATE SET name=excluded.name, output_dir=excluded.output_dir, "
                "spec=COALESCE(excluded.spec, jobs.spec), "
                "parent_job=COALESCE(excluded.parent_job, jobs.parent_job)",
                (
                    info.job_id,
                    info.name,
                    progress.state,
                    info.output_dir,
                    info.submitted_at,
                    time.time(),
                    json.dumps(info.spec) if info.spec is not None else None,
                    info.parent_job,
                ),
            )
            self._write_progress(progress, None)

    def save_progress(self, progress: JobProgress, finished_at: float | None = None) -> None:
        with self.db:
            self._write_progress(progress, finished_at)

    def _write_progress(self, p: JobProgress, finished_at: float | None) -> None:
        self.db.execute(
            "UPDATE jobs SET state=?, updated_at=?, finished_at=COALESCE(?, finished_at), "
            "kept=?, target=?, duplicates=?, invalid=?, failed=?, error=?, summary=? "
            "WHERE job_id=?",
            (
                p.state,
                time.time(),
                finished_at,
                p.counts.kept,
                p.target,
                p.counts.duplicates,
                p.counts.invalid,
                p.counts.failed,
                p.error,
                json.dumps(p.summary) if p.summary else None,
                p.job_id,
            ),
        )
        self.db.execute("DELETE FROM keywords WHERE job_id=?", (p.job_id,))
        self.db.executemany(
            "INSERT INTO keywords (job_id, position, data) VALUES (?, ?, ?)",
            [(p.job_id, i, json.dumps(asdict(k))) for i, k in enumerate(p.keywords)],
        )

    def set_reason(self, job_id: str, reason: str, replace: bool = True) -> None:
        """Say why the job ended so; with `replace` false, a reason given before stays."""
        query = "UPDATE jobs SET reason=? WHERE job_id=?"
        if not replace:
            query = "UPDATE jobs SET reason=COALESCE(reason, ?) WHERE job_id=?"
        with self.db:
            self.db.execute(query, (reason, job_id))

    def mark_expired(self, job_id: str) -> None:
        """The end was never seen: say so, keep the last figures."""
        with self.db:
            self.db.execute(
                "UPDATE jobs SET state=?, updated_at=? WHERE job_id=? AND state NOT IN "
                "('finished', 'partial', 'cancelled', 'failed')",
                (EXPIRED, time.time(), job_id),
            )

    def entries(self, limit: int = 500) -> list[HistoryEntry]:
        """The newest `limit` jobs still on the list, newest first."""
        rows = self.db.execute(
            f"{_SELECT} WHERE hidden=0 ORDER BY submitted_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [self._entry(row) for row in rows]

    def hide(self, job_ids: Iterable[str]) -> None:
        """Take jobs off the list. They stay as a row, so that a job whose records are still in
        Redis is not found there and listed again; `prune` forgets them later."""
        with self.db:
            self.db.executemany(
                "UPDATE jobs SET hidden=1, updated_at=? WHERE job_id=?",
                [(time.time(), job_id) for job_id in job_ids],
            )

    def hidden_ids(self) -> set[str]:
        return {job_id for (job_id,) in self.db.execute("SELECT job_id FROM jobs WHERE hidden=1")}

    def prune(self, now: float, hidden_for: float = HIDDEN_KEPT_S) -> int:
        """Forget jobs taken off the list more than `hidden_for` seconds ago (their records
        left Redis long before); returns how many."""
        with self.db:
            cursor = self.db.execute(
                "DELETE FROM jobs WHERE hidden=1 AND updated_at < ?", (now - hidden_for,)
            )
        return cursor.rowcount

    def entry(self, job_id: str) -> HistoryEntry | None:
        row = self.db.execute(f"{_SELECT} WHERE job_id=?", (job_id,)).fetchone()
        return self._entry(row) if row is not None else None

    def _entry(self, row: tuple[Any, ...]) -> HistoryEntry:
        (job_id, name, state, output_dir, submitted, finished, kept, target, dups, invalid,
         failed, error, reason, summary, spec, parent) = row  # fmt: skip
        keywords = tuple(
            _keyword(json.loads(data))
            for (data,) in self.db.execute(
                "SELECT data FROM keywords WHERE job_id=? ORDER BY position", (job_id,)
            )
        )
        info = JobInfo(
            job_id=job_id,
            name=name,
            output_dir=output_dir,
            submitted_at=submitted,
            spec=json.loads(spec) if spec else None,
            parent_job=parent,
            finished_at=finished,
            reason=reason,
        )
        progress = JobProgress(
            job_id=job_id,
            name=name,
            state=JobState.parse(state),
            keywords=keywords,
            target=target,
            rate=0.0,
            eta_s=None,
            output_dir=output_dir,
            counts=Counts(kept=kept, duplicates=dups, invalid=invalid, failed=failed),
            summary=json.loads(summary) if summary else {},
            error=error,
        )
        return HistoryEntry(info, progress)


def _keyword(data: dict[str, Any]) -> KeywordProgress:
    values = {k: v for k, v in data.items() if k in _KEYWORD_FIELDS}
    values["thumbnails"] = tuple(values.get("thumbnails") or ())
    counts = data.get("counts")
    if isinstance(counts, dict):
        values["counts"] = Counts.from_dict(counts)
    else:  # written before the counts were nested: found, kept, … and already_had at the top
        values["counts"] = Counts.from_dict({**data, "existing": data.get("already_had", 0)})
    fault = data.get("fault")
    values["fault"] = StorageFault.from_dict(fault) if isinstance(fault, dict) else None
    return KeywordProgress(**values)


class History:
    """`HistoryStore` on a thread of its own; writes are queued, reads awaited."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pixcrawler-history")
        self._store: HistoryStore | None = None
        self._writes: set[Future[Any]] = set()

    def _in_thread(self, action: Callable[[HistoryStore], T]) -> Future[T]:
        def call() -> T:
            if self._store is None:
                self._store = HistoryStore(self.path)
            return action(self._store)

        return self._executor.submit(call)

    async def read(self, action: Callable[[HistoryStore], T]) -> T:
        return await asyncio.wrap_future(self._in_thread(action))

    async def entries(self, limit: int = 500) -> list[HistoryEntry]:
        return await self.read(lambda store: store.entries(limit))

    async def hidden_ids(self) -> set[str]:
        return await self.read(lambda store: store.hidden_ids())

    def write(self, action: Callable[[HistoryStore], Any]) -> None:
        """Queue a write; a failure is logged (the history is a record, not the source)."""
        future = self._in_thread(action)
        self._writes.add(future)
        future.add_done_callback(self._written)

    def _written(self, future: Future[Any]) -> None:
        self._writes.discard(future)
        exc = future.exception()
        if exc is not None:
            log.error("could not write the job history to %s: %s", self.path, exc)

    async def flush(self) -> None:
        """Wait until every queued write is done."""
        await self.read(lambda store: None)

    async def close(self) -> None:
        await self.flush()

        def close_store() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        await asyncio.wrap_future(self._executor.submit(close_store))
        self._executor.shutdown(wait=True)
