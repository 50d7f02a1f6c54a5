"""What every search-engine source shares: paging, telling a block from an empty result or a
changed page, and keeping only usable image URLs.

A concrete engine says how to build the URL of result page N (`page_url`) and how to read
candidates out of a fetched page (`parse`). When `parse` finds nothing, `diagnose` decides
why, and the reason becomes a `SourceError`:

- "blocked": HTTP 403/429/451, or a captcha / "unusual traffic" page;
- "no_results": the engine answered and says there is nothing (more);
- "markup_changed": a page came back but nothing in it could be read;
- "http_<status>", or the fetcher's own reason ("timeout", ...), for other failures.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import ClassVar

from celery_core.crawler.sources.url_list import url_problem
from celery_core.crawler.types import Candidate, FetchError, PageFetcher, SourceError, TextPage

BLOCKED_STATUSES = frozenset({401, 403, 429, 451})
DEFAULT_MAX_PAGES = 20

# Phrases of the pages engines show to clients they take for robots. Only looked for when a
# page yielded nothing, so a result page that merely mentions one of them is not misread.
_BLOCK_MARKERS = re.compile(
    r"captcha|unusual traffic|are you a robot|not a robot|verify you are human"
    r"|automated queries|bots use duckduckgo too|anomaly-modal|forbid spider access"
    r"|安全验证|/sorry/index",
    re.IGNORECASE,
)


def looks_blocked(page: TextPage) -> bool:
    return page.status in BLOCKED_STATUSES or bool(
        _BLOCK_MARKERS.search(page.url) or _BLOCK_MARKERS.search(page.text)
    )


def status_reason(status: int) -> str:
    return "blocked" if status in BLOCKED_STATUSES else f"http_{status}"


class SearchEngineSource:
    """Base of the engine plugins: `candidates()` pages through results until `limit`
    candidates came out, a page brings nothing new, or `max_pages` pages were read."""

    name: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    # Phrases an engine uses to say a query found nothing (checked when a page parsed empty).
    no_results_markers: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, keyword: str, base_url: str | None = None, max_pages: int = DEFAULT_MAX_PAGES
    ) -> None:
        self.keyword = keyword
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.max_pages = max_pages

    async def page_url(self, fetcher: PageFetcher, page: int) -> str | None:
        """The URL of result page `page` (0-based), or None when there is no such page."""
        raise NotImplementedError

    def parse(self, page: TextPage) -> list[Candidate]:
        """The candidates on a result page, in the engine's order (may be empty)."""
        raise NotImplementedError

    async def candidates(self, fetcher: PageFetcher, limit: int) -> AsyncGenerator[Candidate, None]:
        seen: set[str] = set()
        produced = 0
        for number in range(self.max_pages):
            if produced >= limit:
                return
            try:
                url = await self.page_url(fetcher, number)
                if url is None:
                    return
                found = self.parse_or_fail(await self.fetch(fetcher, url))
            except SourceError as exc:
                # Past the first page an empty or unreadable page is the end of the results;
                # a block or an HTTP failure is still worth reporting.
                if number > 0 and exc.reason in ("no_results", "markup_changed"):
                    return
                raise
            new = 0
            for candidate in found:
                if candidate.url in seen:
                    continue
                seen.add(candidate.url)
                new += 1
                yield candidate
                produced += 1
                if produced >= limit:
                    return
            if not new:
                return

    async def fetch(self, fetcher: PageFetcher, url: str) -> TextPage:
        """Fetch a page, turning HTTP and network failures into SourceError."""
        try:
            page = await fetcher.fetch_text(url)
        except FetchError as exc:
            status = re.fullmatch(r"http_(\d+)", exc.reason)
            reason = status_reason(int(status.group(1))) if status else exc.reason
            raise SourceError(self.name, reason) from exc
        except TimeoutError as exc:
            raise SourceError(self.name, "timeout") from exc
        except OSError as exc:
            raise SourceError(self.name, "network_error") from exc
        if page.status >= 400:
            raise SourceError(self.name, status_reason(page.status))
        return page

    def parse_or_fail(self, page: TextPage) -> list[Candidate]:
        found = self.parse(page)
        if not found:
            raise SourceError(self.name, self.diagnose(page))
        return found

    def diagnose(self, page: TextPage) -> str:
        """Why a fetched page gave no candidates."""
        if looks_blocked(page):
            return "blocked"
        text = page.text.lower()
        if not text.strip() or any(marker.lower() in text for marker in self.no_results_markers):
            return "no_results"
        return "markup_changed"

    def candidate(
        self, url: object, source_page: object = None, title: object = None
    ) -> Candidate | None:
        """A Candidate when `url` is a usable http(s) URL; other fields kept only if text."""
        if not isinstance(url, str) or url_problem(url.strip()) is not None:
            return None
        page = source_page.strip() if isinstance(source_page, str) else None
        if page is not None and url_problem(page) is not None:
            page = None
        text = " ".join(title.split()) if isinstance(title, str) else None
        return Candidate(url=url.strip(), source=self.name, source_page=page, title=text or None)
