"""Shared bits for the download, check and engine tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from celery_core.crawler.types import Candidate
from celery_core.settings.crawler_settings import CrawlerSettings


def fast_settings(**changes: Any) -> CrawlerSettings:
    """Settings for loopback tests: private networks allowed (the server is on 127.0.0.1),
    short timeouts and retry waits so failures are quick."""
    values: dict[str, Any] = {
        "allow_private_networks": True,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "total_timeout": 5.0,
        "max_retries": 2,
        "retry_backoff": 0.01,
        "max_retry_wait": 0.05,
        "cpu_workers": 2,
        "max_connections": 8,
    }
    values.update(changes)
    return CrawlerSettings(_env_file=None, **values)  # type: ignore[call-arg]


async def candidates_from(urls: Iterable[str], source: str = "urls") -> AsyncIterator[Candidate]:
    for url in urls:
        yield Candidate(url=url, source=source, source_page=None)
