"""DuckDuckGo image search in two steps: the HTML search page carries a `vqd` token; the
`i.js` endpoint, asked with that token, answers JSON `results[]` with `image`, `url` (the
page) and `title`, and a `next` link to the following page."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

from celery_core.crawler.search.engine_base import SearchEngineSource, looks_blocked
from celery_core.crawler.types import Candidate, PageFetcher, SourceError, TextPage

_VQD = re.compile(r"""vqd\s*[=:]\s*(?:["']|\\")?([0-9][\w-]{4,})""")


def find_vqd(text: str) -> str | None:
    match = _VQD.search(text)
    return match.group(1) if match else None


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class DuckDuckGoSource(SearchEngineSource):
    name = "duckduckgo"
    default_base_url = "https://duckduckgo.com"

    def __init__(self, keyword: str, base_url: str | None = None, max_pages: int = 20) -> None:
        super().__init__(keyword, base_url, max_pages)
        self._vqd: str | None = None
        self._next: str | None = None

    async def page_url(self, fetcher: PageFetcher, page: int) -> str | None:
        if page == 0:
            self._vqd = await self._token(fetcher)
            query = {"l": "us-en", "o": "json", "q": self.keyword, "vqd": self._vqd}
            return f"{self.base_url}/i.js?{urlencode(query)}&f=,,,,,&p=1"
        if not self._next:
            return None
        # `next` is relative to the site root ("i.js?q=...&s=100") and lacks the token.
        separator = "&" if "?" in self._next else "?"
        return f"{self.base_url}/{self._next.lstrip('/')}{separator}vqd={self._vqd}"

    async def _token(self, fetcher: PageFetcher) -> str:
        query = urlencode({"q": self.keyword, "iax": "images", "ia": "images"})
        page = await self.fetch(fetcher, f"{self.base_url}/?{query}")
        token = find_vqd(page.text)
        if token is None:
            raise SourceError(self.name, "blocked" if looks_blocked(page) else "markup_changed")
        return token

    def parse(self, page: TextPage) -> list[Candidate]:
        data = _load(page.text)
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            self._next = None
            return []
        next_page = data.get("next")
        self._next = next_page if isinstance(next_page, str) and next_page else None
        found = []
        for result in data["results"]:
            if isinstance(result, dict):
                candidate = self.candidate(
                    result.get("image"), result.get("url"), result.get("title")
                )
                if candidate is not None:
                    found.append(candidate)
        return found

    def diagnose(self, page: TextPage) -> str:
        data = _load(page.text)
        if isinstance(data, dict) and data.get("results") == []:
            return "no_results"
        return super().diagnose(page)
