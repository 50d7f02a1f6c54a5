"""Retry the keywords of a job that failed or fell short, even after its records left Redis.

`job_control.retry_failed` needs the job's record in Redis (it expires with the results). A
client that kept the job file and the keywords' outcomes (the desktop app's history) rebuilds
the work from them instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from celery import Celery

from celery_core.jobs.control import URLS_PER_TASK, JobHandle, job_options, submit_items
from celery_core.jobs.spec import parse_job
from celery_core.jobs.work_items import split_item


def retry_from_spec(
    app: Celery,
    spec: dict[str, Any],
    output_dir: Path,
    keywords: Iterable[tuple[str, str]],
    parent_job: str | None = None,
) -> JobHandle | None:
    """A new job for the (category, keyword) pairs of `spec`; None if none of them is in it."""
    wanted = set(keywords)
    loaded = parse_job(spec, base_dir=output_dir)
    items = [
        chunk
        for item in loaded.spec.work_items()
        if (item.category, item.keyword) in wanted
        for chunk in split_item(item, URLS_PER_TASK)
    ]
    if not items:
        return None
    return submit_items(
        app,
        loaded.spec.dataset_name,
        items,
        output_dir,
        job_options(loaded.spec),
        spec=loaded.spec.to_file_dict(inline_urls=True),
        parent_job=parent_job,
    )
