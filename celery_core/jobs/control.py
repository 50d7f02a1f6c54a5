"""Submit a job, read where it stands, cancel it, retry its failed keywords.

A job is a chord: one `crawl_keyword` task per keyword (or chunk of a long URL list) on the
`crawl` queue, and a `finalize_dataset` callback on `validation` that writes labels and the
report. Its record in Redis (progress.save_job_record) lets any client, on any machine, find
its tasks again after a restart.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from celery import Celery, chord

from celery_core.crawler.dataset.space import SpaceCheck, check_dataset_space
from celery_core.jobs.redis_keys import (
    JOBS_INDEX,
    cancel_key,
    load_job_record,
    request_cancel,
    save_job_record,
)
from celery_core.jobs.spec import JobSpec
from celery_core.jobs.state import JobProgress, job_progress
from celery_core.jobs.work_items import WorkItem, split_item

URLS_PER_TASK = 100  # a long URL list is cut so its CPU work spreads over every worker process


@dataclass(frozen=True)
class JobHandle:
    job_id: str
    name: str
    output_dir: str
    task_ids: tuple[str, ...]
    callback_id: str


def backend_client(app: Celery) -> redis.Redis:
    return redis.Redis.from_url(str(app.conf.result_backend), socket_timeout=10)


def job_options(spec: JobSpec) -> dict[str, Any]:
    o = spec.options
    return {
        "min_width": o.min_width,
        "min_height": o.min_height,
        "dedup_threshold": o.dedup_threshold,
        "generate_labels": o.generate_labels,
        "label_formats": list(o.label_formats),
    }


def submit_items(
    app: Celery,
    name: str,
    items: list[WorkItem],
    output_dir: Path,
    options: dict[str, Any],
    spec: dict[str, Any] | None = None,
    parent_job: str | None = None,
) -> JobHandle:
    job_id = uuid.uuid4().hex
    root = str(output_dir.expanduser().resolve())
    tasks: list[dict[str, Any]] = [
        {"id": uuid.uuid4().hex, "item": item.to_dict()} for item in items
    ]
    callback_id = uuid.uuid4().hex
    record = {
        "job_id": job_id,
        "name": name,
        "output_dir": root,
        "options": options,
        "spec": spec,
        "tasks": tasks,
        "callback_id": callback_id,
        "submitted_at": time.time(),
        "parent_job": parent_job,
    }
    expires = int(app.conf.result_expires or 86400)
    with backend_client(app) as client:
        save_job_record(client, job_id, record, expires)
    header = [
        app.signature("pixcrawler.crawl_keyword", args=(job_id, root, t["item"], options)).set(
            task_id=t["id"]
        )
        for t in tasks
    ]
    body = app.signature("pixcrawler.finalize_dataset", args=(job_id, root, name, options)).set(
        task_id=callback_id
    )
    chord(header, body, app=app).apply_async()
    return JobHandle(job_id, name, root, tuple(t["id"] for t in tasks), callback_id)


class NotEnoughSpace(RuntimeError):
    """The dataset's disk has too little room to start a crawl at all."""

    def __init__(self, check: SpaceCheck) -> None:
        self.check = check
        free_mb = check.free_bytes / 1_000_000
        floor_mb = check.floor_bytes / 1_000_000
        super().__init__(
            f"only {free_mb:.1f} MB free at {check.path}: too little to start a crawl (at "
            f"least {floor_mb:.0f} MB needed). Free some space or choose another folder."
        )


def check_space(spec: JobSpec, output_dir: Path | None = None) -> SpaceCheck | None:
    """Before submitting: will the job's images fit where they go? An estimate (images wanted
    x the dataset's average image or TYPICAL_IMAGE_BYTES), measured on this computer: a worker
    on another computer writes to its own disk, which only it can measure (it stops the job
    when that disk is full). None when the disk cannot be measured."""
    wanted = sum(
        min(item.target, len(item.urls)) if item.kind == "urls" else item.target
        for item in spec.work_items()
    )
    return check_dataset_space(output_dir or spec.dataset_root(), wanted)


def submit_job(app: Celery, spec: JobSpec, output_dir: Path | None = None) -> JobHandle:
    """Queue every keyword of `spec`; returns at once."""
    items = [chunk for item in spec.work_items() for chunk in split_item(item, URLS_PER_TASK)]
    return submit_items(
        app,
        spec.dataset_name,
        items,
        output_dir or spec.dataset_root(),
        job_options(spec),
        spec=spec.to_file_dict(inline_urls=True),
    )


def read_job(app: Celery, job_id: str, client: redis.Redis | None = None) -> JobProgress | None:
    """Where the job stands now, from one MGET of its tasks' records; None if unknown/expired."""
    own = client is None
    client = client or backend_client(app)
    try:
        record = load_job_record(client, job_id)
        if record is None:
            return None
        ids = [t["id"] for t in record["tasks"]] + [record["callback_id"]]
        raw = client.mget([f"celery-task-meta-{i}" for i in ids])
        metas = {i: (json.loads(v) if v else None) for i, v in zip(ids, raw, strict=True)}
        cancelled = bool(client.exists(cancel_key(job_id)))
        return job_progress(record, metas, cancelled=cancelled)
    finally:
        if own:
            client.close()


def cancel_job(app: Celery, job_id: str) -> None:
    """Ask every task of the job to stop after its current image; what was saved stays."""
    record_client = backend_client(app)
    try:
        request_cancel(record_client, job_id, int(app.conf.result_expires or 86400))
    finally:
        record_client.close()


def retry_failed(app: Celery, job_id: str) -> JobHandle | None:
    """A new job for the keywords of `job_id` that failed or fell short; None if none did."""
    with backend_client(app) as client:
        record = load_job_record(client, job_id)
        progress = read_job(app, job_id, client)
    if record is None or progress is None:
        return None
    retry = []
    for task, kw in zip(record["tasks"], progress.keywords, strict=True):
        if kw.unfinished:
            retry.append(WorkItem.from_dict(task["item"]))
    if not retry:
        return None
    return submit_items(
        app,
        record["name"],
        retry,
        Path(record["output_dir"]),
        record["options"],
        spec=record.get("spec"),
        parent_job=job_id,
    )


def recent_jobs(app: Celery, limit: int = 100) -> list[str]:
    with backend_client(app) as client:
        return [j.decode() for j in client.zrevrange(JOBS_INDEX, 0, limit - 1)]
