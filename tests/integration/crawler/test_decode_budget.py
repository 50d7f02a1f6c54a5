"""The engine under a small decode budget: every normal picture is kept (decodes that do not
fit together wait their turn), and an image needing more than the whole budget is refused
with its own reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_core.crawler.dataset.writer import MANIFEST_NAME
from celery_core.crawler.dedup.index import LocalDedupIndex
from celery_core.crawler.engine import run_keyword
from celery_core.crawler.types import KeywordResult
from celery_core.diagnostics.pictures import encode, make_picture
from tests.integration.crawler.crawl_helpers import candidates_from, fast_settings
from tests.support.image_server import ImageServer

FORMATS = [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]


@pytest.fixture
def site() -> Iterator[tuple[list[str], str]]:
    """Ten small pictures, two 1600x1200 RGB PNGs (10 to 16 MB each to decode, so two at once
    do not fit in a 16 MB budget), and a 1600x1200 RGBA PNG (over 17 MB: RGBA plus the
    premultiplied copy thumbnail() makes)."""
    with ImageServer() as server:
        urls = []
        for n in range(10):
            fmt, content_type = FORMATS[n % 3]
            data = encode(make_picture(400 + n), fmt)
            urls.append(server.add_bytes(f"/small-{n}.img", data, content_type))
        for n in range(2):
            data = encode(make_picture(420 + n, (1600, 1200)), "PNG")
            urls.append(server.add_bytes(f"/large-{n}.png", data, "image/png"))
        rgba = make_picture(430, (1600, 1200)).convert("RGBA")
        too_large = server.add_bytes("/too-large.png", encode(rgba, "PNG"), "image/png")
        yield urls, too_large


def crawl(urls: list[str], root: Path, decode_memory_mb: int) -> KeywordResult:
    return run_keyword(
        candidates_from(urls),
        root=root,
        category="budget",
        keyword="mixed",
        target=100,
        settings=fast_settings(decode_memory_mb=decode_memory_mb),
        dedup=LocalDedupIndex(),
    )


def kept_urls(root: Path) -> set[str]:
    lines = (root / MANIFEST_NAME).read_text().splitlines()
    return {json.loads(line)["url"] for line in lines}


def test_a_small_budget_keeps_every_normal_picture_and_refuses_the_larger_one(
    site: tuple[list[str], str], tmp_path: Path
) -> None:
    urls, too_large = site
    result = crawl([too_large, *urls], tmp_path, decode_memory_mb=16)
    counts = result.counts
    assert counts.kept == len(urls)
    assert counts.invalid_reasons == {"too_large_to_decode": 1}
    assert counts.failed == 0 and counts.duplicates == 0
    assert kept_urls(tmp_path) == set(urls)


def test_the_automatic_budget_keeps_it(site: tuple[list[str], str], tmp_path: Path) -> None:
    urls, too_large = site
    result = crawl([too_large, *urls], tmp_path, decode_memory_mb=0)
    assert result.counts.kept == len(urls) + 1
    assert result.counts.invalid == 0
    assert kept_urls(tmp_path) == {too_large, *urls}
