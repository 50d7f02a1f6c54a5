"""Crawl a website breadth-first from a start page, on its host only, and report the images
its pages show (`<img src/srcset>`, `<source srcset>`, `og:image` / `twitter:image`) or link to
(`<a href>` ending in an image extension).

robots.txt is asked (`fetcher.allowed_by_robots`) before each page. A page is read only if
it is still on the site's host after redirects; the start page's final host counts as the
site's host too, so `http://example.org` redirecting to `https://www.example.org` works.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from celery_core.crawler.sources.page_links import page_links
from celery_core.crawler.sources.url_list import describe_url_problem, url_problem
from celery_core.crawler.types import Candidate, FetchError, PageFetcher, SourceError, TextPage


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


class WebsiteSource:
    """Candidates from the pages of one site, in the order the crawl meets them."""

    name = "website"

    def __init__(self, start_url: str, max_pages: int = 100, max_depth: int = 2) -> None:
        reason = url_problem(start_url)
        if reason is not None:
            raise ValueError(f"website start URL {describe_url_problem(start_url, reason)}")
        self.start_url = start_url
        self.max_pages = max_pages
        self.max_depth = max_depth
        self.pages_fetched: list[str] = []  # requested, whatever came back
        self.skipped: list[tuple[str, str]] = []  # (page url, reason code)

    async def candidates(self, fetcher: PageFetcher, limit: int) -> AsyncIterator[Candidate]:
        self.pages_fetched.clear()
        self.skipped.clear()
        hosts = {_host(self.start_url)}
        queue: deque[tuple[str, int]] = deque([(self.start_url, 0)])
        queued = {self.start_url}
        produced = 0
        while queue and len(self.pages_fetched) < self.max_pages and produced < limit:
            url, depth = queue.popleft()
            page = await self._fetch(fetcher, url)
            if page is None:
                continue
            if url == self.start_url:
                hosts.add(_host(page.url))  # the site's own redirect, e.g. to https://www.
            if _host(page.url) not in hosts:
                self.skipped.append((url, "off_host_redirect"))
                continue
            if page.content_type.lower().startswith("image/"):
                produced += 1
                yield Candidate(url=page.url, source=self.name, source_page=page.url)
                continue
            if "html" not in page.content_type.lower():
                self.skipped.append((url, "not_html"))
                continue
            found = page_links(page.url, page.text)
            for image, alt in found.images:
                if image in queued:
                    continue
                queued.add(image)  # an image also linked as a page is not fetched again
                produced += 1
                yield Candidate(image, self.name, source_page=page.url, title=alt or found.title)
                if produced >= limit:
                    return
            if depth < self.max_depth:
                for link in found.links:
                    if link not in queued and _host(link) in hosts:
                        queued.add(link)
                        queue.append((link, depth + 1))
        if produced == 0:
            start_failed = self.skipped and self.skipped[0][0] == self.start_url
            raise SourceError(self.name, self.skipped[0][1] if start_failed else "no_results")

    async def _fetch(self, fetcher: PageFetcher, url: str) -> TextPage | None:
        """The page, or None (with the reason in `skipped`) when it is not to be read.
        Every page requested counts against `max_pages`, whether it worked or not."""
        if not await fetcher.allowed_by_robots(url):
            self.skipped.append((url, "robots_disallowed"))
            return None
        self.pages_fetched.append(url)
        try:
            page = await fetcher.fetch_text(url)
        except FetchError as exc:
            self.skipped.append((url, exc.reason))
            return None
        except (TimeoutError, OSError) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else "network_error"
            self.skipped.append((url, reason))
            return None
        if page.status >= 400:
            self.skipped.append((url, f"http_{page.status}"))
            return None
        return page
