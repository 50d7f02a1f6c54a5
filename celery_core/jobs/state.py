"""Turn raw task records from the result backend into one typed view of a job.

Pure functions over `celery-task-meta-*` records, shared by `pixcrawler crawl` and the desktop
app's watcher, so both read states the same way, whether the worker is local or remote.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from celery_core.crawler.types import Counts, StorageFault
from celery_core.worker.task_base import envelope_from_meta

FINAL_TASK_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


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
    state: str  # queued, running, finishing, finished, partial, cancelled, failed
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
        return self.state in ("finished", "partial", "cancelled", "failed")

    @property
    def already_had(self) -> int:
        return sum(k.already_had for k in self.keywords)

    @property
    def in_folder(self) -> int:
        """What counts toward the target: kept now plus kept by earlier runs."""
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
    counts = info.get("counts") if isinstance(info.get("counts"), dict) else {}
    assert isinstance(counts, dict)
    fault = info.get("fault")
    return replace(
        base,
        state=state,
        counts=Counts.from_dict(counts),
        target=int(info.get("target", base.target)),
        rate=float(info.get("rate", 0.0)),
        elapsed_s=float(info.get("elapsed_s", 0.0)),
        cancelled=bool(info.get("cancelled", False)),
        partial=bool(info.get("partial", False)),
        thumbnails=tuple(int(n) for n in info.get("thumbnails", ()) or ()),
        fault=StorageFault.from_dict(fault) if isinstance(fault, dict) else None,
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
    if callback_meta and callback_meta.get("status") == "SUCCESS":
        summary = (envelope_from_meta(callback_meta) or {}).get("result") or {}
        state = str(summary.get("state", "finished"))
    elif callback_meta and callback_meta.get("status") == "FAILURE":
        state = "failed"
        envelope = envelope_from_meta(callback_meta) or {}
        error = (
            (envelope.get("error") or {}).get("message")
            or _keyword_failures(keywords)
            or "the final step failed"
        )
    elif all(k.done for k in keywords) and keywords:
        failed = [k for k in keywords if k.state == "FAILURE"]
        if failed and len(failed) == len(keywords):
            state, error = "failed", failed[0].error
        else:
            state = "finishing"
    elif all(k.state == "PENDING" for k in keywords):
        state = "queued"
    else:
        state = "running"
    if cancelled and not summary and state not in ("failed",):
        # Cancelled only once the final step has written the report of what was saved.
        state = "cancelling"
    remaining = max(0, target - kept - sum(k.already_had for k in keywords))
    eta = remaining / rate if rate > 0 and state == "running" else None
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
