"""Bing image search: the results' `a.iusc` links carry an `m` attribute holding JSON with
the image URL (`murl`), the page it is on (`purl`) and its title (`t`)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import urlencode

from celery_core.crawler.search.engine_base import SearchEngineSource
from celery_core.crawler.types import Candidate, PageFetcher, TextPage

PAGE_SIZE = 35


class _IuscParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.metadata: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        values = dict(attrs)
        if "iusc" in (values.get("class") or "").split() and values.get("m"):
            self.metadata.append(values["m"] or "")


class BingSource(SearchEngineSource):
    name = "bing"
    default_base_url = "https://www.bing.com"
    no_results_markers = ("There are no results for", "No results found for", 'class="b_no"')

    async def page_url(self, fetcher: PageFetcher, page: int) -> str | None:
        query = {
            "q": self.keyword,
            "first": page * PAGE_SIZE + 1,
            "count": PAGE_SIZE,
            "mmasync": 1,
        }
        return f"{self.base_url}/images/async?{urlencode(query)}"

    def parse(self, page: TextPage) -> list[Candidate]:
        parser = _IuscParser()
        parser.feed(page.text)
        parser.close()
        found = []
        for raw in parser.metadata:
            try:
                meta = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(meta, dict):
                continue
            candidate = self.candidate(meta.get("murl"), meta.get("purl"), meta.get("t"))
            if candidate is not None:
                found.append(candidate)
        return found
