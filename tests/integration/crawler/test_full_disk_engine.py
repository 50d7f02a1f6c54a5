"""The engine on a disk that fills up or refuses writes, without root: errors injected at the
one place files are written (the real tmpfs tests are in tests/integration/faults)."""

from __future__ import annotations

import asyncio
import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from celery_core.crawler.dataset import writer
from celery_core.crawler.dataset.writer import Dataset, ManifestEntry
from celery_core.crawler.dedup.index import LocalDedupIndex
from celery_core.crawler.engine import crawl_keyword
from celery_core.crawler.fetch.fetcher import FetchedImage
from celery_core.crawler.types import KeywordResult
from celery_core.diagnostics.pictures import encode, make_picture
from tests.integration.crawler.crawl_helpers import candidates_from, fast_settings

FITS = 5  # images written before the disk is "full"


class CountingFetcher:
    """Distinct pictures from memory, counting what was asked."""

    def __init__(self) -> None:
        self.hits = 0

    async def fetch_image(self, url: str, referer: str | None = None) -> FetchedImage:
        self.hits += 1
        await asyncio.sleep(0.01)  # a download takes a moment
        data = encode(make_picture(700 + int(url.rsplit("/", 1)[1])))
        return FetchedImage(url, url, data, "image/jpeg")


def crawl(root: Path, fetcher: CountingFetcher, count: int = 60) -> KeywordResult:
    urls = [f"http://pictures.test/{n}" for n in range(count)]
    return asyncio.run(
        crawl_keyword(
            candidates_from(urls),
            root=root,
            category="cats",
            keyword="tabby",
            target=count,
            settings=fast_settings(max_connections=4),
            dedup=LocalDedupIndex(),
            fetcher=fetcher,
        )
    )


def test_a_full_disk_stops_the_crawl_without_counting_failed_downloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = 0
    real_write = Dataset.write_image

    def write_image(self: Dataset, *args: Any) -> str | None:
        nonlocal written
        if written >= FITS:
            raise OSError(errno.ENOSPC, "No space left on device")
        written += 1
        return real_write(self, *args)

    monkeypatch.setattr(Dataset, "write_image", write_image)
    fetcher = CountingFetcher()
    result = crawl(tmp_path / "set", fetcher)
    assert result.fault is not None and result.fault.kind == "disk_full"
    assert result.fault.path == str(tmp_path / "set")
    assert result.partial and not result.cancelled
    assert result.counts.kept == FITS and result.counts.failed == 0
    assert fetcher.hits <= FITS + 2 * 4 + 4  # what was queued or in flight, not the other 50
    lines = (tmp_path / "set" / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == FITS


def test_a_folder_that_refuses_writes_fetches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Dataset, category: str, keyword: str) -> Any:
        folder = self.root / category
        raise PermissionError(errno.EACCES, "Permission denied", str(folder / keyword))

    monkeypatch.setattr(Dataset, "prepare_folder", refuse)
    fetcher = CountingFetcher()
    result = crawl(tmp_path / "set", fetcher)
    assert result.fault is not None
    assert (result.fault.kind, result.fault.error) == ("not_writable", "EACCES")
    assert result.fault.path == str(tmp_path / "set" / "cats")
    assert fetcher.hits == 0 and result.counts.kept == 0


def test_a_manifest_line_the_disk_took_half_of_is_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = Dataset(tmp_path)

    def entry(n: int) -> ManifestEntry:
        return ManifestEntry(
            path=f"cats/tabby/{n:04d}.jpg", url=f"http://x/{n}", source_page=None, source="urls",
            sha256=f"{n:064x}", phash="0" * 16, width=1, height=1, format="JPEG", bytes=1,
            category="cats", keyword="tabby", fetched_at="2025-01-01T00:00:00Z",
        )  # fmt: skip

    dataset.append_manifest(entry(1))
    before = dataset.manifest_path.read_bytes()
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        if len(data) > 20:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer.os, "write", half_then_full)
    with pytest.raises(OSError) as caught:
        dataset.append_manifest(entry(2))
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.setattr(writer.os, "write", real_write)
    assert dataset.manifest_path.read_bytes() == before  # no torn line left behind
    dataset.append_manifest(entry(3))
    lines = [json.loads(line) for line in dataset.manifest_path.read_text().splitlines()]
    assert [line["path"] for line in lines] == ["cats/tabby/0001.jpg", "cats/tabby/0003.jpg"]
