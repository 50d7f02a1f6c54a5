"""Celery tasks: thin wrappers that hand work to the engine and report through Redis."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

from celery import shared_task
from celery.signals import worker_init

from celery_core.worker.task_base import BaseTask


@worker_init.connect
def _preload_crawler(**_: Any) -> None:
    """Import the crawler (aiohttp, Pillow's codecs, about 0.4 s) in the worker's main process,
    before the pool starts: forked pool processes then begin their first task warm, and so
    does each one that replaces a retired process. Submitters never import it."""
    import celery_core.worker.crawl_task  # noqa: F401


@worker_init.connect
def _share_pool_size(sender: Any = None, **_: Any) -> None:
    """Tell the pool processes, through their environment (inherited when the pool starts),
    how many of them share this computer's memory: each sizes its decode memory from it.
    A prefork pool has one process per task slot; threads and solo pools run in one process."""
    from celery_core.crawler.images.decode_budget import POOL_PROCESSES_ENV

    pool = getattr(sender, "pool_cls", "")
    name = pool if isinstance(pool, str) else f"{pool.__module__}.{pool.__qualname__}"
    concurrency = getattr(sender, "concurrency", 1)
    prefork = any(word in name.lower() for word in ("prefork", "processes"))
    if not prefork:
        processes = 1
    else:  # "auto" is resolved by Celery later, to the CPUs at most
        processes = concurrency if isinstance(concurrency, int) else (os.cpu_count() or 1)
    os.environ[POOL_PROCESSES_ENV] = str(max(1, processes))


@shared_task(bind=True, base=BaseTask, name="pixcrawler.health_check")
def health_check(self: BaseTask, echo: str = "pong") -> dict[str, Any]:
    """A round trip through a worker: proves dispatch, execution and result storage."""
    return {
        "echo": echo,
        "worker": self.request.hostname,
        "pid": os.getpid(),
        "python": platform.python_version(),
        "time": time.time(),
    }


@shared_task(bind=True, base=BaseTask, name="pixcrawler.crawl_keyword")
def crawl_keyword(
    self: BaseTask, job_id: str, root: str, item: dict[str, Any], options: dict[str, Any]
) -> dict[str, Any]:
    """Crawl one keyword (or one chunk of a URL list) into the dataset at `root`."""
    from celery_core.worker.crawl_task import run_crawl_item

    return run_crawl_item(self, job_id, root, item, options)


@shared_task(bind=True, base=BaseTask, name="pixcrawler.finalize_dataset")
def finalize_dataset(
    self: BaseTask,
    results: list[dict[str, Any]],
    job_id: str,
    root: str,
    name: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    """The chord's last step: labels and the report, once every keyword has finished."""
    from celery_core.worker.crawl_task import finalize

    return finalize(self, results, job_id, root, name, options)
