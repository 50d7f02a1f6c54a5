"""Turn raw task records from the result backend into one typed view of a job.

Pure functions over `celery-task-meta-*` records, shared by `pixcrawler crawl` and the desktop
app's watcher, so both read states the same way, whether the worker is local or remote.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from celery_core.crawler.types import Counts, StorageFault
from celery_core.worker.task_base import envelope_from_meta

FINAL_TASK_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})

# --- a job's state: one enum, its final and running sets defined once ---------------------
# A `StrEnum`, so the strings already stored (in Redis results, the app's history database and
# `pixcrawler crawl --json`) read back as the same members and compare equal to them.


class JobState(StrEnum):
    QUEUED = "queued"  # no task has started
    RUNNING = "running"
    FINISHING = "finishing"  # every task ended; the final step writes the report and labels
    CANCELLING = "cancelling"  # cancel asked; the final step has not written the report yet
    FINISHED = "finished"
    # Finished, but at least one keyword got nothing because every one of its sources failed
    # (no network, a captcha, ...): the report and the app say why.
    FINISHED_WITH_PROBLEMS = "finished_with_problems"
    PARTIAL = "partial"  # finished, some keywords short of their target
    CANCELLED = "cancelled"
    FAILED = "failed"
    EXPIRED = "expired"  # the app's history only: the results expired before it saw the end

    @classmethod
    def parse(cls, value: object, default: JobState | None = None) -> JobState:
        """The member for a stored string; `default` (else FAILED) for one this version does not
        know, so an unknown state is never shown as success."""
        try:
            return cls(str(value))
        except ValueError:
            return default if default is not None else cls.FAILED

    @property
    def is_final(self) -> bool:
        return self in FINAL_JOB_STATES

    @property
    def is_running(self) -> bool:
        return self in RUNNING_JOB_STATES


FINAL_JOB_STATES: frozenset[JobState] = frozenset(
    {
        JobState.FINISHED,
        JobState.FINISHED_WITH_PROBLEMS,
        JobState.PARTIAL,
        JobState.CANCELLED,
        JobState.FAILED,
        JobState.EXPIRED,
    }
)
# Work is under way (a task runs, or the final step, or a cancel is being carried out).
RUNNING_JOB_STATES: frozenset[JobState] = frozenset(
    {JobState.RUNNING, JobState.FINISHING, JobState.CANCELLING}
)
# Final states that produced the dataset asked for (a few failed downloads are normal).
SUCCEEDED_JOB_STATES: frozenset[JobState] = frozenset({JobState.FINISHED, JobState.PARTIAL})
# Final states a user should look at (the app marks them; notifications say why).
ATTENTION_JOB_STATES: frozenset[JobState] = frozenset(
    {
        JobState.FINISHED_WITH_PROBLEMS,
        JobState.PARTIAL,
        JobState.CANCELLED,
        JobState.FAILED,
        JobState.EXPIRED,
    }
)

# --- the message a crawl task sends about itself ------------------------------------------
# Written as Celery `PROGRESS` meta while the task runs (`crawl_task.run_crawl_item`); its
# result once it ended carries the same fields. `keyword_progress` reads either through
# `TaskReport.from_meta`; a record written by an older version reads with defaults.


@dataclass(frozen=True)
class TaskReport:
    job_id: str = ""
    category: str = ""
    keyword: str = ""
    chunk_index: int = 0
    chunk_count: int = 1
    # The task's tallies; never changed once here (copy with `Counts.from_dict`).
    counts: Counts = field(default_factory=Counts)
    target: int = 0  # a shard's share, even when it may keep more
    elapsed_s: float = 0.0
    rate: float = 0.0  # kept images per second
    thumbnails: tuple[int, ...] = ()  # numbers of the thumbnails stored since the last report
    # Set in the result once the task ended.
    cancelled: bool = False
    partial: bool = False
    fault: StorageFault | None = None

    def to_meta(self) -> dict[str, Any]:
        """JSON-safe, as Celery stores it."""
        meta: dict[str, Any] = {
            "job_id": self.job_id,
            "category": self.category,
            "keyword": self.keyword,
            "chunk_index": self.chunk_index,
            "chunk_count": self.chunk_count,
            "counts": self.counts.to_dict(),
            "target": self.target,
            "elapsed_s": round(self.elapsed_s, 2),
            "rate": round(self.rate, 2),
            "thumbnails": list(self.thumbnails),
        }
        if self.cancelled:
            meta["cancelled"] = True
        if self.partial:
            meta["partial"] = True
        if self.fault is not None:
            meta["fault"] = self.fault.to_dict()
        return meta

    @classmethod
    def from_meta(cls, meta: dict[str, Any], default_target: int = 0) -> TaskReport:
        counts = meta.get("counts")
        fault = meta.get("fault")
        return cls(
            job_id=str(meta.get("job_id", "")),
            category=str(meta.get("category", "")),
            keyword=str(meta.get("keyword", "")),
            chunk_index=_int(meta.get("chunk_index"), 0),
            chunk_count=_int(meta.get("chunk_count"), 1),
            counts=Counts.from_dict(counts) if isinstance(counts, dict) else Counts(),
            target=_int(meta.get("target"), default_target),
            elapsed_s=_float(meta.get("elapsed_s")),
            rate=_float(meta.get("rate")),
            thumbnails=tuple(_int(n, 0) for n in meta.get("thumbnails") or ()),
            cancelled=bool(meta.get("cancelled", False)),
            partial=bool(meta.get("partial", False)),
            fault=StorageFault.from_dict(fault) if isinstance(fault, dict) else None,
        )


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


@dataclass(frozen=True)
class KeywordProgress:
    task_id: str
    category: str
    keyword: str
    chunk_index: int
    chunk_count: int
    state: str  # Celery state: PENDING, STARTED, PROGRESS, RETRY, SUCCESS, FAILURE
    # The task's tallies as its worker reported them; never changed once here (the view is
    # frozen): copy with `Counts.from_dict(c.to_dict())` to work on them.
    counts: Counts = field(default_factory=Counts)
    target: int = 0
    rate: float = 0.0
    elapsed_s: float = 0.0
    cancelled: bool = False
    partial: bool = False
    error: str | None = None
    thumbnails: tuple[int, ...] = ()
    # The parts of one website share its images (`target` is only this part's share, and a
    # part may keep more or fewer): what they share, or 0 when this part has a target of its own.
    shared_target: int = 0
    # Set when this task stopped because the dataset could not be written (disk full, folder
    # refused); the job's other tasks stopped with it.
    fault: StorageFault | None = None

    @property
    def done(self) -> bool:
        return self.state in FINAL_TASK_STATES

    @property
    def source_errors(self) -> tuple[str, ...]:
        return tuple(self.counts.source_errors)

    @property
    def unfinished(self) -> bool:
        """Worth running again: it failed, was cancelled, fell short, or every source failed
        (the computer was offline). The one rule the app's and the CLI's retries share."""
        return self.state == "FAILURE" or self.cancelled or self.partial or self.sources_all_failed

    @property
    def sources_all_failed(self) -> bool:
        """Ended with nothing because every one of its sources failed: a failure, not a
        finish (`presentation.source_text` says why in words)."""
        return self.state == "SUCCESS" and self.counts.sources_all_failed

    @property
    def already_had(self) -> int:
        """Images an earlier run of the job kept in this keyword's folder: a re-run tops the
        folder up to `target`, so they count toward it. 0 for the parts of a URL list or
        website, which count only what each keeps."""
        return self.counts.existing if self.chunk_count == 1 else 0

    @property
    def in_folder(self) -> int:
        """What counts toward the target: kept now plus kept by earlier runs."""
        return self.counts.kept + self.already_had

    @property
    def shown_target(self) -> int:
        """The target to measure this row against: the shared one for a website's parts."""
        return self.shared_target or self.target


@dataclass(frozen=True)
class JobProgress:
    job_id: str
    name: str
    state: JobState
    keywords: tuple[KeywordProgress, ...]
    target: int
    rate: float
    eta_s: float | None
    output_dir: str
    # The job's totals: its keywords' counts added up, with kept, duplicates, invalid and
    # failed from the final step's summary once it has one. Never changed once here.
    counts: Counts = field(default_factory=Counts)
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINAL_JOB_STATES

    @property
    def already_had(self) -> int:
        """What the folders held before this run: from the final step's count of the dataset
        once it has one, else the keywords' own figures."""
        if "existing" in self.summary:
            return int(self.summary["existing"])
        return sum(k.already_had for k in self.keywords)

    @property
    def in_folder(self) -> int:
        """What the dataset holds toward the target: the final step's count of its manifest and
        files once there is one; while running, kept now plus kept by earlier runs."""
        if "in_folder" in self.summary:
            return int(self.summary["in_folder"])
        return self.counts.kept + self.already_had

    @property
    def fault(self) -> StorageFault | None:
        """Why the job stopped when its dataset could not be written (disk full, folder
        refused): from the final step's summary, or from the first task that hit it while the
        others are still stopping. None otherwise."""
        data = self.summary.get("fault")
        if isinstance(data, dict):
            return StorageFault.from_dict(data)
        return next((k.fault for k in self.keywords if k.fault is not None), None)


def keyword_progress(
    task_id: str, item: dict[str, Any], meta: dict[str, Any] | None
) -> KeywordProgress:
    """One task's view: from PROGRESS meta while it runs, from its envelope once it ended."""
    base = KeywordProgress(
        task_id=task_id,
        category=str(item.get("category", "")),
        keyword=str(item.get("keyword", "")),
        chunk_index=int(item.get("chunk_index", 0)),
        chunk_count=int(item.get("chunk_count", 1)),
        target=int(item.get("target", 0)),
        state="PENDING",
        shared_target=int(item.get("pool_target", 0)) if int(item.get("chunk_count", 1)) > 1 else 0,
    )
    if not meta:
        return base
    state = str(meta.get("status", "PENDING"))
    info = meta.get("result")
    if state == "SUCCESS":
        info = (envelope_from_meta(meta) or {}).get("result") or {}
    elif state == "FAILURE":
        envelope = envelope_from_meta(meta) or {}
        error = (envelope.get("error") or {}).get("message")
        if not error and isinstance(info, dict):
            error = f"{info.get('exc_type', 'Error')}: {info.get('exc_message', '')}"
        return replace(base, state=state, error=str(error or "failed"))
    if not isinstance(info, dict):
        return replace(base, state=state)
    report = TaskReport.from_meta(info, default_target=base.target)
    return replace(
        base,
        state=state,
        counts=report.counts,
        target=report.target,
        rate=report.rate,
        elapsed_s=report.elapsed_s,
        cancelled=report.cancelled,
        partial=report.partial,
        thumbnails=report.thumbnails,
        fault=report.fault,
    )


def job_progress(
    record: dict[str, Any],
    metas: dict[str, dict[str, Any] | None],
    cancelled: bool = False,
) -> JobProgress:
    """Aggregate a job from its record (`progress.save_job_record`) and its tasks' records."""
    tasks: list[dict[str, Any]] = record.get("tasks", [])
    keywords = tuple(keyword_progress(t["id"], t["item"], metas.get(t["id"])) for t in tasks)
    return aggregate_job(record, keywords, metas.get(record.get("callback_id", "")), cancelled)


def aggregate_job(
    record: dict[str, Any],
    keywords: tuple[KeywordProgress, ...],
    callback_meta: dict[str, Any] | None,
    cancelled: bool = False,
) -> JobProgress:
    """The job from its keywords' views (`keyword_progress`, in record order) and the final
    step's record: a watcher that keeps each task's view re-reads only the task that changed."""
    totals = Counts()
    for k in keywords:
        totals.merge(k.counts)
    kept = totals.kept
    target = sum(k.target for k in keywords)
    rate = sum(k.rate for k in keywords if k.state in ("PROGRESS", "STARTED"))
    summary: dict[str, Any] = {}
    error = None
    state: JobState
    if callback_meta and callback_meta.get("status") == "SUCCESS":
        summary = (envelope_from_meta(callback_meta) or {}).get("result") or {}
        state = JobState.parse(summary.get("state", JobState.FINISHED))
    elif callback_meta and callback_meta.get("status") == "FAILURE":
        state = JobState.FAILED
        envelope = envelope_from_meta(callback_meta) or {}
        error = (
            (envelope.get("error") or {}).get("message")
            or _keyword_failures(keywords)
            or "the final step failed"
        )
    elif all(k.done for k in keywords) and keywords:
        failed = [k for k in keywords if k.state == "FAILURE"]
        if failed and len(failed) == len(keywords):
            state, error = JobState.FAILED, failed[0].error
        else:
            state = JobState.FINISHING
    elif all(k.state == "PENDING" for k in keywords):
        state = JobState.QUEUED
    else:
        state = JobState.RUNNING
    if cancelled and not summary and state != JobState.FAILED:
        # Cancelled only once the final step has written the report of what was saved.
        state = JobState.CANCELLING
    remaining = max(0, target - kept - sum(k.already_had for k in keywords))
    eta = remaining / rate if rate > 0 and state == JobState.RUNNING else None
    # The final step's figures, once it has them, are the job's (what its report says).
    totals.kept = int(summary.get("kept", totals.kept))
    totals.duplicates = int(summary.get("duplicates", totals.duplicates))
    totals.invalid = int(summary.get("invalid", totals.invalid))
    totals.failed = int(summary.get("failed", totals.failed))
    return JobProgress(
        job_id=str(record.get("job_id", "")),
        name=str(record.get("name", "")),
        state=state,
        keywords=keywords,
        target=target,
        rate=rate,
        eta_s=eta,
        output_dir=str(record.get("output_dir", "")),
        counts=totals,
        summary=summary,
        error=error,
    )


def _keyword_failures(keywords: tuple[KeywordProgress, ...]) -> str | None:
    """Why a chord's callback never ran: Celery fails it when a keyword's task failed."""
    failed = [k for k in keywords if k.state == "FAILURE"]
    if not failed:
        return None
    first = failed[0]
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    return f"{first.category}/{first.keyword} failed: {first.error}{more}"
