"""Baidu image search through its `acjson` endpoint: JSON `data[]` items with `thumbURL`,
`middleURL`, `objURL` (the original; sometimes obfuscated), `fromURL` / `fromPageTitle` and a
`replaceUrl` list whose `ObjURL` / `FromURL` hold the same addresses in plain form."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urlencode

from celery_core.crawler.search.engine_base import SearchEngineSource
from celery_core.crawler.types import Candidate, PageFetcher, TextPage

PAGE_SIZE = 30

# Baidu's obfuscation of objURL / fromURL ("ippr_z2C$q..."): three tokens stand for ":", "."
# and "/", then each remaining character maps to another one.
_TOKENS = (("_z2C$q", ":"), ("_z&e3B", "."), ("AzdH3F", "/"))
_CHARS = str.maketrans(
    "wkv1ju2it3hs4g5rq6fp7eo8dn9cm0bla",
    "abcdefghijklmnopqrstuvw1234567890",
)
_BAD_ESCAPE = re.compile(r"""\\(?!["\\/bfnrtu])""")
_TAG = re.compile(r"<[^>]*>")


def decode_obfuscated(value: str) -> str:
    """Undo Baidu's URL obfuscation; a plain http(s) URL comes back unchanged."""
    if value.startswith(("http://", "https://")):
        return value
    for token, plain in _TOKENS:
        value = value.replace(token, plain)
    return value.translate(_CHARS)


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:  # Baidu escapes characters JSON does not allow to be escaped, e.g. \'
        return json.loads(_BAD_ESCAPE.sub(lambda m: "", text))
    except ValueError:
        return None


def _first_text(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


class BaiduSource(SearchEngineSource):
    name = "baidu"
    default_base_url = "https://image.baidu.com"

    async def page_url(self, fetcher: PageFetcher, page: int) -> str | None:
        query = {
            "tn": "resultjson_com",
            "ipn": "rj",
            "ct": 201326592,
            "fp": "result",
            "word": self.keyword,
            "queryWord": self.keyword,
            "ie": "utf-8",
            "oe": "utf-8",
            "pn": page * PAGE_SIZE,
            "rn": PAGE_SIZE,
        }
        return f"{self.base_url}/search/acjson?{urlencode(query)}"

    def parse(self, page: TextPage) -> list[Candidate]:
        data = _load(page.text)
        items = data.get("data") if isinstance(data, dict) else None
        found = []
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict):
                candidate = self._candidate(item)
                if candidate is not None:
                    found.append(candidate)
        return found

    def _candidate(self, item: dict[str, Any]) -> Candidate | None:
        plain: dict[str, Any] = {}
        replace = item.get("replaceUrl")
        if isinstance(replace, list) and replace and isinstance(replace[0], dict):
            plain = replace[0]
        obj = _first_text(item.get("objURL"))
        source = _first_text(item.get("fromURL"))
        image = _first_text(
            plain.get("ObjURL"),
            plain.get("ObjUrl"),
            decode_obfuscated(obj) if obj else None,
            item.get("middleURL"),
            item.get("thumbURL"),
        )
        page = _first_text(
            plain.get("FromURL"),
            plain.get("FromUrl"),
            decode_obfuscated(source) if source else None,
        )
        raw_title = _first_text(item.get("fromPageTitleEnc"), item.get("fromPageTitle"))
        title = html.unescape(_TAG.sub("", raw_title)) if raw_title else None
        return self.candidate(image, page, title)

    def diagnose(self, page: TextPage) -> str:
        data = _load(page.text)
        if isinstance(data, dict):
            if data.get("antiFlag") or "Forbid spider" in str(data.get("message", "")):
                return "blocked"
            items = data.get("data")
            if isinstance(items, list) and not any(items):
                return "no_results"
        return super().diagnose(page)
