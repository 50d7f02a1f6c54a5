"""The search engines by name, and searching several of them in turn for one keyword."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field

from celery_core.crawler.search.baidu import BaiduSource
from celery_core.crawler.search.bing import BingSource
from celery_core.crawler.search.duckduckgo import DuckDuckGoSource
from celery_core.crawler.search.engine_base import DEFAULT_MAX_PAGES, SearchEngineSource
from celery_core.crawler.search.google import GoogleSource
from celery_core.crawler.types import Candidate, PageFetcher, SourceError

ENGINES: dict[str, type[SearchEngineSource]] = {
    "bing": BingSource,
    "duckduckgo": DuckDuckGoSource,
    "google": GoogleSource,
    "baidu": BaiduSource,
}


def get_engine(name: str) -> type[SearchEngineSource]:
    try:
        return ENGINES[name.strip().lower()]
    except KeyError:
        known = ", ".join(ENGINES)
        raise ValueError(f"unknown search engine {name!r}; known: {known}") from None


def engine_base_urls(settings: object) -> dict[str, str]:
    """`{engine: base URL}` from any object with `<engine>_base_url` attributes (the crawler
    settings); engines it does not set keep their public address."""
    urls = {}
    for name in ENGINES:
        value = getattr(settings, f"{name}_base_url", None)
        if isinstance(value, str) and value.strip():
            urls[name] = value.strip()
    return urls


@dataclass
class SearchOutcome:
    candidates: list[Candidate] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (engine, reason)


async def iter_search_candidates(
    keyword: str,
    engines: Iterable[str],
    fetcher: PageFetcher,
    limit: int,
    base_urls: Mapping[str, str] | None = None,
    failures: list[tuple[str, str]] | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> AsyncIterator[Candidate]:
    """Candidates from `engines` in order, each URL once, until `limit` came out.

    An engine that fails is recorded in `failures` as (engine, reason) and the next one is
    tried; so is one that ran out of results before `limit` was reached. What an engine
    yielded before it failed is kept.
    """
    failures = failures if failures is not None else []
    base_urls = base_urls or {}
    seen: set[str] = set()
    produced = 0
    for name in engines:
        if produced >= limit:
            return
        try:
            engine_cls = get_engine(name)
        except ValueError:
            failures.append((name, "unknown_engine"))
            continue
        source = engine_cls(keyword, base_url=base_urls.get(engine_cls.name), max_pages=max_pages)
        try:
            # Asked for the full limit, not what is left: some of what it finds may be
            # duplicates of earlier engines' results. It pages lazily, so this costs nothing.
            async with aclosing(source.candidates(fetcher, limit)) as stream:
                async for candidate in stream:
                    if candidate.url in seen:
                        continue
                    seen.add(candidate.url)
                    yield candidate
                    produced += 1
                    if produced >= limit:
                        return
        except SourceError as exc:
            failures.append((engine_cls.name, exc.reason))


async def search_candidates(
    keyword: str,
    engines: Iterable[str],
    fetcher: PageFetcher,
    limit: int,
    base_urls: Mapping[str, str] | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> SearchOutcome:
    """All of `iter_search_candidates` at once, with the failures beside them."""
    outcome = SearchOutcome()
    async for candidate in iter_search_candidates(
        keyword, engines, fetcher, limit, base_urls, outcome.failures, max_pages
    ):
        outcome.candidates.append(candidate)
    return outcome
