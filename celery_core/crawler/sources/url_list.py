"""Direct image URLs from a list: each valid one becomes a candidate, the others are skipped
with a reason so the report can say why they were not tried."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from urllib.parse import urlsplit

from celery_core.crawler.types import Candidate, PageFetcher

MAX_URL_LENGTH = 8192

# Stable reason codes (for reports) and how to say them to a person.
URL_PROBLEMS: dict[str, str] = {
    "empty": "is empty",
    "whitespace": "contains spaces or control characters",
    "unsupported_scheme": "is not an http(s) URL",
    "missing_host": "has no host name",
    "bad_port": "has a port that is not a number between 1 and 65535",
    "too_long": f"is longer than {MAX_URL_LENGTH} characters",
    # The manifest, labels and job records keep every URL: a password in one would be kept
    # in clear in all of them. Such URLs are refused in job files and skipped when found.
    "credentials": "contains a user name or password; give the URL without them",
    "duplicate": "is listed more than once",
}


def url_problem(url: str) -> str | None:
    """None when `url` is an absolute http(s) URL worth requesting, else a reason code."""
    if not url:
        return "empty"
    if len(url) > MAX_URL_LENGTH:
        return "too_long"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "whitespace"
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return "missing_host"
    if parts.scheme.lower() not in ("http", "https"):
        return "unsupported_scheme"
    if not parts.hostname:
        return "missing_host"
    if parts.username is not None or parts.password is not None:
        return "credentials"
    try:
        port = parts.port
    except ValueError:
        return "bad_port"
    if port == 0:
        return "bad_port"
    return None


def describe_url_problem(url: str, reason: str) -> str:
    if reason == "credentials":  # say where, but never echo the password itself
        url = re.sub(r"(?<=://)([^/@]*?):[^/@]*@", r"\1:***@", url)
    shown = url if len(url) <= 120 else url[:117] + "..."
    return f"{shown!r} {URL_PROBLEMS.get(reason, reason)}"


class UrlListSource:
    """Candidates from a fixed list of image URLs, in order, without duplicates."""

    name = "urls"

    def __init__(self, urls: Iterable[str]) -> None:
        self.urls = list(urls)
        self.skipped: list[tuple[str, str]] = []  # (url, reason code)

    async def candidates(self, fetcher: PageFetcher, limit: int) -> AsyncIterator[Candidate]:
        self.skipped.clear()
        seen: set[str] = set()
        produced = 0
        for raw in self.urls:
            if produced >= limit:
                return
            url = raw.strip()
            reason = url_problem(url)
            if reason is None and url in seen:
                reason = "duplicate"
            if reason is not None:
                self.skipped.append((raw, reason))
                continue
            seen.add(url)
            produced += 1
            yield Candidate(url=url, source=self.name)
