"""Crawling one keyword: candidates in, checked and deduplicated images on disk out.

Downloads run concurrently on the event loop (bounded by `max_connections`); decoding,
hashing and thumbnails run in a thread pool sized to the CPU cores (Pillow releases the GIL
while it decodes and resizes), so the loop keeps downloading while images are checked. Claims
and file writes go through one "keeper" thread, in order, so numbering stays gap-free.

Stopping: the crawl ends when `target` images are kept (counting those kept by earlier runs),
when the candidates run out, when `should_cancel()` says so, or when the task is cancelled or
one of `stop_exceptions` is raised into it (a Celery task passes its soft-time-limit
exception). In the last cases the result has `partial=True` and lists what was saved; files
on disk and manifest lines are always complete. A full disk or a folder that cannot be
written (`dataset.space.storage_fault`) also stops the crawl at once: the result has
`partial=True` and `fault` says what and where, and the image that did not fit is not counted
as a failed download. Losing the duplicate index (Redis down) is the one error raised
(`DedupUnavailable`), so the task can be retried.

From a Celery task:

    result = run_keyword(
        lambda fetcher: source.candidates(fetcher, limit),
        root=root, category=..., keyword=..., target=..., settings=CrawlerSettings.load(),
        dedup=RedisDedupIndex(redis_client, job_id, threshold),
        progress=publish, should_cancel=revoked,
        stop_exceptions=(SoftTimeLimitExceeded,),
    )
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from celery_core.crawler.crawl_state import CrawlState
from celery_core.crawler.dataset.writer import Dataset
from celery_core.crawler.dedup.index import DEFAULT_THRESHOLD, DedupIndex
from celery_core.crawler.fetch.fetcher import Fetcher
from celery_core.crawler.fetch.ssrf import AddressPolicy
from celery_core.crawler.frontier.shared import Quota
from celery_core.crawler.images.check import ImageRules
from celery_core.crawler.pipeline import (
    DedupUnavailable,
    ImageFetcher,
    KeywordCrawl,
    StopExceptions,
)
from celery_core.crawler.types import (
    CancelCheck,
    Candidate,
    KeywordResult,
    ProgressCallback,
)
from celery_core.settings.crawler_settings import CrawlerSettings

__all__ = ["DedupUnavailable", "ImageFetcher", "KeywordResult", "crawl_keyword", "run_keyword"]


async def crawl_keyword(
    candidates: AsyncIterator[Candidate],
    *,
    root: Path,
    category: str,
    keyword: str,
    target: int,
    min_width: int = 0,
    min_height: int = 0,
    dedup_threshold: int = DEFAULT_THRESHOLD,
    settings: CrawlerSettings,
    dedup: DedupIndex,
    progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    progress_interval: float = 0.25,
    stop_exceptions: StopExceptions = (),
    fetcher: ImageFetcher | None = None,
    thumbnails_per_report: int = 12,
    seed_dedup: bool = True,
    count_existing: bool = True,
    quota: Quota | None = None,
    _run: CrawlState | None = None,
) -> KeywordResult:
    """Download, check, deduplicate and save images for one keyword until `target` are kept.

    `fetcher`: share the sources' Fetcher (else one is opened from `settings`).
    `progress` gets a snapshot at most every `progress_interval` seconds while something
    changed, plus a final one; each carries up to `thumbnails_per_report` of the newest
    thumbnails kept since the previous snapshot.
    `count_existing`: images of this keyword kept by earlier runs count toward `target`
    (re-running tops the folder up). Pass False when several crawls share one keyword folder
    (chunks of a long URL list), each with its own target.
    `quota`: a count shared with other crawls of the same item (the shards of a website):
    each image takes one before it is kept, and the crawl ends when none is left.
    `seed_dedup`: add the manifest's images to `dedup` first (needed for re-runs with a
    fresh in-memory index; harmless for a shared one).
    `stop_exceptions`: exceptions that mean "stop now, keep what is saved" (e.g. Celery's
    SoftTimeLimitExceeded); like CancelledError, they end the crawl with partial=True
    instead of propagating.
    """
    if dedup_threshold > dedup.threshold:
        raise ValueError(
            f"dedup_threshold {dedup_threshold} exceeds the index's threshold {dedup.threshold}"
        )
    run = _run or CrawlState(category, keyword, target, thumbnails_per_report)
    crawl = KeywordCrawl(
        run,
        dataset=Dataset(root),
        rules=ImageRules.from_settings(settings, min_width, min_height),
        settings=settings,
        dedup=dedup,
        threshold=dedup_threshold,
        progress=progress,
        should_cancel=should_cancel,
        interval=progress_interval,
        stop_exceptions=stop_exceptions,
        count_existing=count_existing,
        quota=quota,
    )
    return await crawl.execute(candidates, fetcher, seed_dedup)


CandidatesArg = AsyncIterator[Candidate] | Callable[[Fetcher], AsyncIterator[Candidate]]


def run_keyword(candidates: CandidatesArg, **options: Any) -> KeywordResult:
    """`crawl_keyword` for callers without an event loop (e.g. a Celery task).

    `candidates` may be a factory taking the Fetcher, so sources and downloads share one
    HTTP session. A stop exception that escapes the loop still returns what was saved.
    `address_policy` replaces the private-network rule derived from the settings.
    """
    settings: CrawlerSettings = options["settings"]
    stop_exceptions: StopExceptions = tuple(options.get("stop_exceptions", ()))
    run = CrawlState(
        options["category"],
        options["keyword"],
        options["target"],
        options.get("thumbnails_per_report", 12),
    )
    policy: AddressPolicy | None = options.pop("address_policy", None)

    async def main() -> KeywordResult:
        async with AsyncExitStack() as stack:
            fetcher = options.pop("fetcher", None)
            if fetcher is None:
                fetcher = await stack.enter_async_context(Fetcher(settings, policy))
            source = candidates(fetcher) if callable(candidates) else candidates
            return await crawl_keyword(source, fetcher=fetcher, _run=run, **options)

    try:
        return asyncio.run(main())
    except stop_exceptions:
        run.partial = True
        return run.result()
