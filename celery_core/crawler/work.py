"""From a work item to the candidate stream the engine consumes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from celery_core.crawler.fetch.fetcher import Fetcher
from celery_core.crawler.frontier.shared import Frontier, SharedCandidates
from celery_core.crawler.search.registry import engine_base_urls, iter_search_candidates
from celery_core.crawler.sources.url_list import UrlListSource
from celery_core.crawler.sources.website import WebsiteSource
from celery_core.crawler.types import Candidate
from celery_core.jobs.work_items import WorkItem
from celery_core.settings.crawler_settings import CrawlerSettings

# Search results hold duplicates, dead links and thumbnails too small to keep: ask for more
# candidates than the images wanted.
SEARCH_OVERFETCH = 3
SEARCH_EXTRA = 20


def candidates_for(
    item: WorkItem,
    settings: CrawlerSettings,
    failures: list[tuple[str, str]],
    frontier: Frontier | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> Callable[[Fetcher], AsyncIterator[Candidate]]:
    """A factory the engine calls with its Fetcher; engine failures are appended to `failures`.

    A shard of a website item (`chunk_count` > 1) takes its images from `frontier`, shared with
    the item's other shards (see `shared_frontier`); `stop` says the job was cancelled."""

    def factory(fetcher: Fetcher) -> AsyncIterator[Candidate]:
        if item.kind == "search":
            limit = item.target * SEARCH_OVERFETCH + SEARCH_EXTRA
            return iter_search_candidates(
                item.keyword,
                item.engines,
                fetcher,
                limit,
                base_urls=engine_base_urls(settings),
                failures=failures,
            )
        if item.kind == "urls":
            return UrlListSource(item.urls).candidates(fetcher, len(item.urls))
        if item.website is None:
            raise ValueError(f"{item.label}: a website item without its website settings")
        site = item.website
        source = WebsiteSource(site.url, max_pages=site.max_pages, max_depth=site.max_depth)
        if item.chunk_count > 1 and frontier is not None:
            return SharedCandidates(frontier, lambda: source.candidates(fetcher, 1_000_000), stop)
        return source.candidates(fetcher, 1_000_000)

    return factory
