"""The bodies of the crawl tasks: wire the engine to Redis (progress, thumbnails, cancel, dedup).

Kept apart from `tasks.py` so that the task module stays a list of thin, named entry points.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from celery_core.crawler.dataset.labels import write_labels
from celery_core.crawler.dataset.report import build_report, count_folders, write_report
from celery_core.crawler.dataset.space import storage_fault
from celery_core.crawler.dedup.redis_index import RedisDedupIndex
from celery_core.crawler.engine import run_keyword
from celery_core.crawler.frontier.redis_queue import RedisFrontier, RedisQuota
from celery_core.crawler.types import Counts, KeywordResult, ProgressSnapshot, StorageFault
from celery_core.crawler.work import candidates_for
from celery_core.jobs.redis_keys import ProgressStore, load_job_record
from celery_core.jobs.state import JobState, TaskReport
from celery_core.jobs.work_items import WorkItem
from celery_core.settings.crawler_settings import CrawlerSettings

log = logging.getLogger(__name__)


def dataset_id(root: str, threshold: int) -> str:
    """Tasks crawling into one folder share a dedup index (the band layout depends on the
    threshold, so a re-run with another threshold gets its own, seeded from the manifest)."""
    digest = hashlib.sha256(str(Path(root)).encode()).hexdigest()[:16]
    return f"{digest}:t{threshold}"


def _store(task: Task) -> ProgressStore:
    return ProgressStore.from_url(
        str(task.app.conf.result_backend), int(task.app.conf.result_expires or 86400)
    )


def run_crawl_item(
    task: Task, job_id: str, root: str, item_data: dict[str, Any], options: dict[str, Any]
) -> dict[str, Any]:
    item = WorkItem.from_dict(item_data)
    settings = CrawlerSettings.load_warning()  # a bad value: its default, logged once
    store = _store(task)
    threshold = int(options.get("dedup_threshold", 6))
    dedup = RedisDedupIndex(
        store.client,
        dataset_id(root, threshold),
        threshold=threshold,
        ttl_s=int(task.app.conf.result_expires or 86400),
    )
    chunk = {"chunk_index": item.chunk_index, "chunk_count": item.chunk_count}
    failures: list[tuple[str, str]] = []

    def report(snapshot: ProgressSnapshot) -> None:
        records = store.add_thumbnails(job_id, item.category, item.keyword, snapshot.new_thumbnails)
        message = TaskReport(
            job_id=job_id,
            category=item.category,
            keyword=item.keyword,
            chunk_index=item.chunk_index,
            chunk_count=item.chunk_count,
            counts=snapshot.counts,
            target=item.target,  # a shard's share, even when it may keep more
            elapsed_s=snapshot.elapsed_s,
            rate=snapshot.rate,
            thumbnails=tuple(r.number for r in records),
        )
        task.update_state(state="PROGRESS", meta=message.to_meta())

    frontier, quota, target = None, None, item.target
    if item.kind == "website" and item.chunk_count > 1 and item.pool_target > 0:
        # The shards of one website share its pages' images and its image count (see
        # crawler/shared_frontier.py); each may keep up to all of it.
        folder = f"{item.category}/{item.keyword}".encode()
        name = f"{job_id}:{hashlib.sha256(folder).hexdigest()[:16]}"
        expires = int(task.app.conf.result_expires or 86400)
        frontier = RedisFrontier(str(task.app.conf.result_backend), name, expires)
        quota = RedisQuota(store.client, name, item.pool_target, expires)
        target = item.pool_target
    try:
        result = run_keyword(
            candidates_for(
                item, settings, failures, frontier, stop=lambda: store.is_cancelled(job_id)
            ),
            root=Path(root),
            category=item.category,
            keyword=item.keyword,
            target=target,
            quota=quota,
            min_width=int(options.get("min_width", 0)),
            min_height=int(options.get("min_height", 0)),
            dedup_threshold=threshold,
            settings=settings,
            dedup=dedup,
            progress=report,
            should_cancel=lambda: store.is_cancelled(job_id),
            stop_exceptions=(SoftTimeLimitExceeded,),
            # Chunks of one URL list (shards of one website) share a folder: each counts only
            # its own images.
            count_existing=item.chunk_count == 1,
        )
        if result.fault is not None:
            # The disk is full or the folder refused: the job's other tasks, on this machine
            # or another, read the flag between images and stop too.
            try:
                store.stop_job(job_id, result.fault)
            except Exception:
                log.exception("could not ask the other tasks of job %s to stop", job_id)
    finally:
        store.client.close()
    for engine, reason in failures:
        result.counts.source_errors.append(f"{engine}: {reason}")
    data = result.to_dict()
    data["target"] = item.target
    data.pop("kept_paths", None)  # the manifest has them; results stay small
    return {"job_id": job_id, **chunk, "kept_files": len(result.kept_paths), **data}


def _merge_chunks(results: list[dict[str, Any]]) -> list[KeywordResult]:
    """One result per keyword: the chunks of a long URL list add up."""
    merged: dict[tuple[str, str], KeywordResult] = {}
    for envelope in results:
        data = dict(envelope.get("result") or {})
        data.setdefault("kept_paths", [])
        known = {k: data[k] for k in KeywordResult.__dataclass_fields__ if k in data}
        one = KeywordResult.from_dict(known)
        key = (one.category, one.keyword)
        if key not in merged:
            merged[key] = one
            continue
        total = merged[key]
        counts = Counts.from_dict(total.counts.to_dict())
        counts.merge(one.counts)
        merged[key] = KeywordResult(
            category=total.category,
            keyword=total.keyword,
            target=total.target + one.target,
            counts=counts,
            elapsed_s=max(total.elapsed_s, one.elapsed_s),
            cancelled=total.cancelled or one.cancelled,
            partial=total.partial or one.partial,
            fault=total.fault or one.fault,
        )
    return list(merged.values())


def finalize(
    task: Task,
    results: list[dict[str, Any]],
    job_id: str,
    root: str,
    name: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    store = _store(task)
    try:
        record = load_job_record(store.client, job_id) or {}
        cancelled = store.is_cancelled(job_id)
        fault = store.stop_fault(job_id)
    finally:
        store.client.close()
    keywords = _merge_chunks(results)
    fault = fault or next((kw.fault for kw in keywords if kw.fault is not None), None)
    submitted = float(record.get("submitted_at", time.time()))
    elapsed = time.time() - submitted
    try:
        count_folders(Path(root), keywords, since=submitted)
    except OSError as exc:
        log.warning("job %s: counting %s from its manifest failed: %s", job_id, root, exc)
    report = build_report(keywords, title=name, elapsed_s=elapsed)
    json_path: Path | None = None
    md_path: Path | None = None
    labels: list[str] = []
    try:
        if fault is not None:
            report["stopped_by"] = fault.to_dict()
        json_path, md_path = write_report(Path(root), report)
        if options.get("generate_labels", True):
            labels = [str(p) for p in write_labels(Path(root), options.get("label_formats", ()))]
    except OSError as exc:
        # The disk filled up (or the folder turned read-only) under the report: the images
        # and the manifest are what counts, and the job says why it has no report.
        fault = fault or _fault_or_raise(exc, root)
        log.error("job %s: no report or labels in %s: %s", job_id, root, exc)
    totals = Counts()
    for kw in keywords:
        totals.merge(kw.counts)
    if fault is not None:
        state = JobState.FAILED  # a full disk or a refused folder: the summary says which
    elif cancelled or any(kw.cancelled for kw in keywords):
        state = JobState.CANCELLED
    elif any(kw.counts.sources_all_failed for kw in keywords):
        # A keyword got nothing because every source failed (offline, a captcha): not a finish.
        state = JobState.FINISHED_WITH_PROBLEMS
    elif any(kw.partial for kw in keywords):
        state = JobState.PARTIAL
    else:
        state = JobState.FINISHED
    return {
        "job_id": job_id,
        "state": str(state),
        "kept": totals.kept,
        "in_folder": totals.in_folder,
        "existing": totals.existing,
        "duplicates": totals.duplicates,
        "invalid": totals.invalid,
        "failed": totals.failed,
        "elapsed_s": round(elapsed, 2),
        "output_dir": root,
        "report": str(md_path) if md_path else None,
        "report_json": str(json_path) if json_path else None,
        "labels": labels,
        "fault": fault.to_dict() if fault is not None else None,
    }


def _fault_or_raise(exc: OSError, root: str) -> StorageFault:
    fault = storage_fault(exc, Path(root))
    if fault is None:
        raise exc
    return fault
