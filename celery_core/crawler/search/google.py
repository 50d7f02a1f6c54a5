"""Google image search. The result page carries its data in scripts, where each result has
its thumbnail and its original as `["<url>",<height>,<width>]` arrays, followed by a record
(`"2003":[null,"<id>","<page url>","<title>",...]`) naming the page it is on. The extractor
reads those patterns anywhere in the page rather than walking a structure that changes often.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode, urlsplit

from celery_core.crawler.search.engine_base import SearchEngineSource
from celery_core.crawler.types import Candidate, PageFetcher, TextPage

PAGE_SIZE = 100
_JSON_STRING = r'"((?:[^"\\]|\\.)*)"'
_IMAGE_ARRAY = re.compile(r'\["(https?:(?:[^"\\]|\\.)+)",\s*(\d+),\s*(\d+)\]')
_SOURCE_RECORD = re.compile(
    r'"2003":\[null,' + _JSON_STRING + "," + _JSON_STRING + "," + _JSON_STRING
)
# How far after an image its source record may be before it is taken to belong to no image.
_RECORD_WINDOW = 4000


def _unescape(raw: str) -> str | None:
    """A JSON string literal's content as text (`\\u003d` -> `=`); None if it is malformed."""
    try:
        value = json.loads(f'"{raw}"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _is_google_asset(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith("gstatic.com") or host == "google.com" or ".google." in f".{host}"


def extract_images(text: str) -> list[tuple[str, str | None, str | None]]:
    """(image url, source page, title) for each original image in a Google results page."""
    images: list[tuple[str, int, int]] = []  # (url, where its array starts, where it ends)
    for match in _IMAGE_ARRAY.finditer(text):
        url = _unescape(match.group(1))
        if url and not _is_google_asset(url) and int(match.group(2)) and int(match.group(3)):
            images.append((url, match.start(), match.end()))
    found = []
    for index, (url, _start, end) in enumerate(images):
        stop = images[index + 1][1] if index + 1 < len(images) else len(text)
        record = _SOURCE_RECORD.search(text, end, min(stop, end + _RECORD_WINDOW))
        page = title = None
        if record:
            page = _unescape(record.group(2))
            title = _unescape(record.group(3))
        found.append((url, page, title))
    return found


class GoogleSource(SearchEngineSource):
    name = "google"
    default_base_url = "https://www.google.com"
    no_results_markers = ("did not match any image results", "did not match any documents")

    async def page_url(self, fetcher: PageFetcher, page: int) -> str | None:
        query = {
            "q": self.keyword,
            "tbm": "isch",
            "hl": "en",
            "ijn": page,
            "start": page * PAGE_SIZE,
        }
        return f"{self.base_url}/search?{urlencode(query)}"

    def parse(self, page: TextPage) -> list[Candidate]:
        found = []
        for url, source_page, title in extract_images(page.text):
            candidate = self.candidate(url, source_page, title)
            if candidate is not None:
                found.append(candidate)
        return found
