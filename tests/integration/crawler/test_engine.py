"""The engine end to end, in-process, against a real local server full of traps."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from celery_core.crawler.dataset.labels import present_entries
from celery_core.crawler.dataset.temp_files import TEMP_PREFIX
from celery_core.crawler.dataset.writer import MANIFEST_NAME
from celery_core.crawler.dedup.index import LocalDedupIndex
from celery_core.crawler.dedup.redis_index import RedisDedupIndex
from celery_core.crawler.engine import DedupUnavailable, crawl_keyword, run_keyword
from celery_core.crawler.fetch.fetcher import Fetcher
from celery_core.crawler.fetch.ssrf import AddressPolicy
from celery_core.crawler.types import (
    Candidate,
    KeywordResult,
    ProgressSnapshot,
    SourceError,
)
from celery_core.diagnostics.pictures import encode, make_picture, png_bomb
from celery_core.settings.crawler_settings import CrawlerSettings
from tests.integration.crawler.crawl_helpers import candidates_from, fast_settings
from tests.support.image_server import ImageServer, Reply
from tests.support.redis_proc import RedisProcess

# 127.0.0.1 plays the public web; anything else on loopback plays a private host.
PUBLIC_ONLY = AddressPolicy(allowed=["127.0.0.1/32"])


@pytest.fixture
def server() -> Iterator[ImageServer]:
    with ImageServer() as srv:
        yield srv


def crawl(
    urls: list[str] | AsyncIterator[Candidate],
    root: Path,
    settings: CrawlerSettings | None = None,
    policy: AddressPolicy | None = None,
    **options: Any,
) -> KeywordResult:
    settings = settings or fast_settings()
    options.setdefault("category", "cats")
    options.setdefault("keyword", "tabby")
    options.setdefault("target", 1000)
    options.setdefault("dedup", LocalDedupIndex())

    async def main() -> KeywordResult:
        source = candidates_from(urls) if isinstance(urls, list) else urls
        async with Fetcher(settings, policy) as fetcher:
            return await crawl_keyword(
                source, root=root, settings=settings, fetcher=fetcher, **options
            )

    return asyncio.run(main())


def manifest(root: Path) -> list[dict[str, Any]]:
    path = root / MANIFEST_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_consistent(root: Path, result: KeywordResult) -> None:
    """Every manifest line has its whole file, every file its line, and nothing else lies
    around (no temp files)."""
    lines = manifest(root)
    on_disk = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.parent != root and ".pixcrawler" not in p.parts
    )
    assert sorted(line["path"] for line in lines) == on_disk
    for line in lines:
        data = (root / line["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == line["sha256"]
        assert len(data) == line["bytes"]
    assert set(result.kept_paths) <= {line["path"] for line in lines}


def add_pictures(
    server: ImageServer, count: int, start: int = 0, prefix: str = "/img"
) -> list[str]:
    formats = [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")]
    urls = []
    for i in range(start, start + count):
        fmt, ext = formats[i % 3]
        data = encode(make_picture(i, (320 + i % 5 * 40, 240)), fmt)
        urls.append(server.add_bytes(f"{prefix}/{i}.{ext}", data, f"image/{ext}"))
    return urls


def add_paced_pictures(server: ImageServer, count: int, delay: float, prefix: str) -> list[str]:
    """Pictures the server answers only after `delay` seconds, so a crawl lasts long enough
    for several progress reports or an interruption."""
    data = [encode(make_picture(i, (200, 150))) for i in range(count)]

    def handler(body: bytes) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def respond(request: web.Request) -> web.Response:
            await asyncio.sleep(delay)  # runs on the server's loop: pacing, not synchronisation
            return web.Response(body=body, content_type="image/jpeg")

        return respond

    return [server.add_route(f"{prefix}/{i}.jpg", handler(body)) for i, body in enumerate(data)]


def test_every_trap_gets_its_outcome(server: ImageServer, tmp_path: Path) -> None:
    good = add_pictures(server, 10)
    original = make_picture(100, (640, 480))
    good.append(server.add_bytes("/img/original.jpg", encode(original), "image/jpeg"))
    traps = {
        "exact copy": server.add_bytes("/copy/same-bytes.jpeg", encode(original)),
        "near copy": server.add_bytes(
            "/copy/smaller.jpg", encode(original.resize((320, 240)), "JPEG", quality=55)
        ),
        "png named jpg": server.add_bytes(
            "/misnamed.jpg", encode(make_picture(101), "PNG"), "image/jpeg"
        ),
        "truncated": server.add_bytes("/half.jpg", encode(make_picture(102))[:3000]),
        "html as jpg": server.add_text("/page.jpg", "<html><body>Not found</body></html>"),
        "bomb": server.add_bytes("/bomb.png", png_bomb(30000, 30000), "image/png"),
        "tiny": server.add_bytes("/tiny.png", encode(make_picture(103, (16, 16)), "PNG")),
        "404": server.url("/missing.jpg"),
        "503 then 200": server.add_sequence(
            "/flaky.jpg", [Reply(503), Reply(200, encode(make_picture(104)), "image/jpeg")]
        ),
        "429 then 200": server.add_sequence(
            "/busy.jpg",
            [
                Reply(429, headers={"Retry-After": "3600"}),
                Reply(200, encode(make_picture(105)), "image/jpeg"),
            ],
        ),
        "slow": server.add_slow("/slow.jpg", encode(make_picture(106)), chunk=32, delay=0.05),
        "endless": server.add_endless("/endless.jpg"),
        "redirect loop": server.add_redirect("/loop", "/loop2"),
        "to private": server.add_redirect("/away.jpg", "http://127.0.0.2:9/secret.jpg"),
        "file": "file:///etc/passwd",
        "ftp": "ftp://127.0.0.1/a.jpg",
        "data": "data:image/png;base64,iVBORw0KGgo=",
        "robots": server.add_bytes("/private/cat.jpg", encode(make_picture(107))),
        "same url twice": good[0],
        "moved": server.add_redirect("/moved.jpg", "/img/moved-here.jpg", 301),
    }
    moved_to = server.add_bytes("/img/moved-here.jpg", encode(make_picture(108)), "image/jpeg")
    server.add_redirect("/loop2", "/loop")
    server.add_text("/robots.txt", "User-agent: *\nDisallow: /private/*.jpg$\n", "text/plain")
    settings = fast_settings(
        allow_private_networks=False,
        total_timeout=0.5,
        max_retries=1,
        max_image_bytes=512 * 1024,
        max_connections=6,
    )
    urls = good + list(traps.values())
    result = crawl(urls, tmp_path, settings, PUBLIC_ONLY, min_width=32, min_height=32)

    counts = result.counts
    assert counts.found == len(good) + len(traps)
    assert counts.kept == len(good) + 4  # + misnamed PNG, 503-then-200, 429-then-200, moved
    assert counts.duplicates == 3  # exact copy, near copy, same URL twice
    assert counts.invalid_reasons == {
        "truncated": 1,
        "not_an_image": 1,
        "too_many_pixels": 1,
        "too_small": 1,
    }
    assert counts.failed_reasons == {
        "http_404": 1,
        "timeout": 1,
        "too_large": 1,
        "redirect_loop": 1,
        "private_address": 1,
        "bad_scheme": 3,
        "robots_disallowed": 1,
    }
    assert (counts.invalid, counts.failed) == (4, 9)
    assert not result.partial and not result.cancelled
    assert server.hits("/private/cat.jpg") == 0
    assert server.hits("/flaky.jpg") == 2 and server.hits("/busy.jpg") == 2

    lines = manifest(tmp_path)
    assert len(lines) == counts.kept
    names = sorted(Path(line["path"]).stem for line in lines)
    assert names == [f"{i:04d}" for i in range(1, counts.kept + 1)]
    misnamed = next(line for line in lines if line["url"].endswith("/misnamed.jpg"))
    assert misnamed["format"] == "PNG" and misnamed["path"].endswith(".png")
    moved = next(line for line in lines if line["url"] == traps["moved"])
    assert moved["final_url"] == moved_to
    assert misnamed["final_url"] is None
    assert all(line["category"] == "cats" and line["keyword"] == "tabby" for line in lines)
    assert all(line["fetched_at"].endswith("Z") and len(line["phash"]) == 16 for line in lines)
    assert_consistent(tmp_path, result)


def test_stops_at_the_target(server: ImageServer, tmp_path: Path) -> None:
    urls = add_pictures(server, 40)
    result = crawl(urls, tmp_path, fast_settings(max_connections=2), target=5)
    assert result.counts.kept == 5 and len(result.kept_paths) == 5
    assert result.counts.downloaded < 40  # it did not fetch everything
    assert not result.partial
    assert_consistent(tmp_path, result)


def test_progress_reports_are_spaced_and_carry_each_thumbnail_once(
    server: ImageServer, tmp_path: Path
) -> None:
    urls = add_paced_pictures(server, 24, 0.02, "/p")
    stamps: list[float] = []
    snapshots: list[ProgressSnapshot] = []

    def progress(snapshot: ProgressSnapshot) -> None:
        stamps.append(time.monotonic())
        snapshots.append(snapshot)

    result = crawl(
        urls,
        tmp_path,
        fast_settings(max_connections=2),
        progress=progress,
        progress_interval=0.05,
        thumbnails_per_report=100,
    )
    assert result.counts.kept == 24
    assert len(snapshots) >= 3
    gaps = [b - a for a, b in itertools.pairwise(stamps[:-1])]
    assert all(gap >= 0.045 for gap in gaps)  # the final report may follow at once
    final = snapshots[-1]
    assert final.counts == result.counts and final.target == 1000
    assert final.rate > 0 and final.elapsed_s > 0
    thumbs = [t for s in snapshots for t in s.new_thumbnails]
    assert sorted(t.path for t in thumbs) == sorted(result.kept_paths)
    assert all(t.jpeg.startswith(b"\xff\xd8") and max(t.width, t.height) <= 160 for t in thumbs)


def test_should_cancel_stops_between_images(server: ImageServer, tmp_path: Path) -> None:
    urls = add_paced_pictures(server, 60, 0.01, "/c")
    kept_so_far = 0

    def progress(snapshot: ProgressSnapshot) -> None:
        nonlocal kept_so_far
        kept_so_far = snapshot.counts.kept

    result = crawl(
        urls,
        tmp_path,
        fast_settings(max_connections=1, cpu_workers=1),
        progress=progress,
        progress_interval=0.01,
        should_cancel=lambda: kept_so_far >= 3,
    )
    assert result.cancelled and result.partial
    assert 3 <= result.counts.kept < 60
    assert_consistent(tmp_path, result)


def test_task_cancellation_returns_what_was_saved(server: ImageServer, tmp_path: Path) -> None:
    urls = add_paced_pictures(server, 60, 0.01, "/t")
    settings = fast_settings(max_connections=1, cpu_workers=1)

    async def main() -> KeywordResult:
        task: asyncio.Task[KeywordResult]

        def progress(snapshot: ProgressSnapshot) -> None:
            if snapshot.counts.kept >= 2 and not task.cancelling():
                task.cancel()

        async with Fetcher(settings) as fetcher:
            task = asyncio.create_task(
                crawl_keyword(
                    candidates_from(urls),
                    root=tmp_path,
                    category="cats",
                    keyword="tabby",
                    target=1000,
                    settings=settings,
                    dedup=LocalDedupIndex(),
                    fetcher=fetcher,
                    progress=progress,
                    progress_interval=0.01,
                )
            )
            return await task

    result = asyncio.run(main())
    assert result.partial and not result.cancelled
    assert 2 <= result.counts.kept < 60
    assert_consistent(tmp_path, result)


class SoftLimit(Exception):
    """Stands for Celery's SoftTimeLimitExceeded, which a signal handler raises."""


def test_a_stop_exception_from_a_signal_keeps_what_was_saved(
    server: ImageServer, tmp_path: Path
) -> None:
    urls = add_paced_pictures(server, 200, 0.01, "/s")

    def raise_soft_limit(signum: int, frame: object) -> None:
        raise SoftLimit()

    previous = signal.signal(signal.SIGALRM, raise_soft_limit)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.4)
        result = run_keyword(
            candidates_from(urls),
            root=tmp_path,
            category="cats",
            keyword="tabby",
            target=1000,
            settings=fast_settings(max_connections=2),
            dedup=LocalDedupIndex(),
            stop_exceptions=(SoftLimit,),
        )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert result.partial
    assert 0 < result.counts.kept < 200
    assert_consistent(tmp_path, result)


def test_a_rerun_resumes_and_skips_what_it_has(server: ImageServer, tmp_path: Path) -> None:
    urls = add_pictures(server, 10)
    first = crawl(urls, tmp_path, fast_settings(max_connections=1), target=4)
    assert first.counts.kept == 4
    second = crawl(urls, tmp_path, target=10)
    assert second.counts.existing == 4
    assert second.counts.skipped_existing == 4 and second.counts.kept == 6
    assert second.counts.downloaded == 6
    third = crawl(urls, tmp_path, target=10)
    assert third.counts.existing == 10 and third.counts.found == 0 and third.counts.kept == 0
    stems = sorted(Path(line["path"]).stem for line in manifest(tmp_path))
    assert stems == [f"{i:04d}" for i in range(1, 11)]
    assert_consistent(tmp_path, third)


def test_images_removed_by_hand_are_topped_up_and_not_fetched_again(
    server: ImageServer, tmp_path: Path
) -> None:
    urls = add_pictures(server, 8)
    first = crawl(urls, tmp_path, fast_settings(max_connections=1), target=4)
    assert first.counts.kept == 4
    folder = tmp_path / "cats" / "tabby"
    by_path = {line["path"]: line["url"] for line in manifest(tmp_path)}
    removed = ["cats/tabby/0001.jpg", "cats/tabby/0003.webp"]  # curated away by the user
    assert set(removed) <= set(by_path)
    for path in removed:
        (tmp_path / path).unlink()
    removed_urls = [by_path[path] for path in removed]
    before = [server.hits(urlsplit(url).path) for url in removed_urls]

    again = crawl(urls, tmp_path, fast_settings(max_connections=1), target=4)
    assert again.counts.existing == 2  # only what is still on disk counts
    assert again.counts.kept == 2  # topped up to the target again
    assert [server.hits(urlsplit(url).path) for url in removed_urls] == before
    assert again.counts.skipped_existing == 4  # two removed, two still there
    # Numbers of removed images are not given again: one manifest path per image.
    assert sorted(p.stem for p in folder.iterdir()) == ["0002", "0004", "0005", "0006"]
    paths = [line["path"] for line in manifest(tmp_path)]
    assert len(paths) == len(set(paths)) == 6
    assert [e.path for e in present_entries(tmp_path)] == sorted(
        str(p.relative_to(tmp_path)) for p in folder.iterdir()
    )


@pytest.mark.parametrize("index", ["local", "redis"])
def test_an_image_a_power_cut_left_empty_is_fetched_again(
    server: ImageServer, tmp_path: Path, index: str, request: pytest.FixtureRequest
) -> None:
    urls = add_pictures(server, 6)
    root = tmp_path / "dataset"

    def dedup() -> Any:
        if index == "local":
            return LocalDedupIndex()
        redis_proc = request.getfixturevalue("redis_proc")
        return RedisDedupIndex(redis_proc.client(), str(root))  # kept across the two runs

    first = crawl(urls[:3], root, fast_settings(max_connections=1), target=3, dedup=dedup())
    assert first.counts.kept == 3
    emptied = root / "cats" / "tabby" / "0002.png"
    line = next(line for line in manifest(root) if line["path"].endswith("0002.png"))
    url = line["url"]
    emptied.write_bytes(b"")  # named, but its bytes never reached the disk
    hits = server.hits(urlsplit(url).path)

    again = crawl(urls[:3], root, fast_settings(max_connections=1), target=3, dedup=dedup())
    assert again.counts.existing == 2 and again.counts.kept == 1
    assert server.hits(urlsplit(url).path) == hits + 1  # fetched again
    folder = root / "cats" / "tabby"
    assert sorted(p.name for p in folder.iterdir()) == ["0001.jpg", "0003.webp", "0004.png"]
    assert hashlib.sha256((folder / "0004.png").read_bytes()).hexdigest() == line["sha256"]
    assert [e.path for e in present_entries(root)] == [
        "cats/tabby/0001.jpg", "cats/tabby/0003.webp", "cats/tabby/0004.png"
    ]  # fmt: skip
    third = crawl(urls[:3], root, target=3, dedup=dedup())  # whole again: nothing to do
    assert third.counts.existing == 3 and third.counts.downloaded == 0


def test_a_crash_leaves_no_half_file_and_orphans_are_adopted(
    server: ImageServer, tmp_path: Path
) -> None:
    folder = tmp_path / "cats" / "tabby"
    folder.mkdir(parents=True)
    orphan = encode(make_picture(7, (300, 200)))
    (folder / "0001.jpg").write_bytes(orphan)  # written, then the process died
    stray = folder / f"{TEMP_PREFIX}1a2b-0002.jpg"
    stray.write_bytes(orphan[:500])  # died mid-write, a while ago
    os.utime(stray, (time.time() - 3600, time.time() - 3600))
    urls = [server.add_bytes("/again.jpg", orphan), *add_pictures(server, 3, start=20)]
    result = crawl(urls, tmp_path)
    assert not any(p.name.startswith(TEMP_PREFIX) for p in folder.iterdir())
    lines = manifest(tmp_path)
    recovered = [line for line in lines if line["source"] == "recovered"]
    assert [line["path"] for line in recovered] == ["cats/tabby/0001.jpg"]
    assert result.counts.existing == 1
    assert result.counts.skipped_existing == 1  # the same picture, by its sha256
    assert result.counts.kept == 3
    images = sorted(p.stem for p in folder.iterdir())
    assert images == ["0001", "0002", "0003", "0004"]
    assert_consistent(tmp_path, result)


def test_another_keywords_images_are_duplicates_not_already_had(
    server: ImageServer, tmp_path: Path
) -> None:
    urls = add_pictures(server, 4)
    first = crawl(urls, tmp_path)
    assert first.counts.kept == 4
    second = crawl(urls[:2], tmp_path, keyword="other")
    assert second.counts.duplicates == 2
    assert second.counts.skipped_existing == 0 and second.counts.existing == 0
    again = crawl(urls, tmp_path)  # the first keyword re-run: its own images, already had
    assert again.counts.skipped_existing == 4 and again.counts.duplicates == 0


def test_source_errors_are_recorded_and_the_rest_is_kept(
    server: ImageServer, tmp_path: Path
) -> None:
    urls = add_pictures(server, 3)

    async def failing() -> AsyncIterator[Candidate]:
        for url in urls:
            yield Candidate(url, "bing", source_page=server.url("/search"))
        raise SourceError("bing", "blocked")

    result = crawl(failing(), tmp_path)
    assert result.counts.kept == 3
    assert result.counts.source_errors == ["bing: blocked"]
    assert {line["source"] for line in manifest(tmp_path)} == {"bing"}
    assert {line["source_page"] for line in manifest(tmp_path)} == {server.url("/search")}


def test_workers_share_a_redis_index_and_keep_each_picture_once(
    server: ImageServer, tmp_path: Path, redis_proc: RedisProcess
) -> None:
    # Two keywords whose search results overlap, crawled at the same time by two "workers"
    # (threads with their own event loop and Redis connection) into one dataset.
    shared = add_pictures(server, 12)
    only_a = add_pictures(server, 4, start=50, prefix="/a")
    only_b = add_pictures(server, 4, start=60, prefix="/b")
    results: dict[str, KeywordResult] = {}
    root = tmp_path / "dataset"

    def worker(keyword: str, urls: list[str]) -> None:
        with redis_proc.client() as client:
            results[keyword] = run_keyword(
                lambda fetcher: candidates_from(urls),
                root=root,
                category="cats",
                keyword=keyword,
                target=100,
                settings=fast_settings(),
                dedup=RedisDedupIndex(client, str(root)),
            )

    threads = [
        threading.Thread(target=worker, args=("a", shared + only_a)),
        threading.Thread(target=worker, args=("b", only_b + shared[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    a, b = results["a"], results["b"]
    assert a.counts.kept + b.counts.kept == 20
    # Whichever started first, a picture the other keyword kept is a duplicate, never
    # "already had": that is only for this keyword's own earlier images.
    assert a.counts.duplicates + b.counts.duplicates == 12
    assert a.counts.skipped_existing == b.counts.skipped_existing == 0
    lines = manifest(root)
    assert len(lines) == 20 and len({line["sha256"] for line in lines}) == 20
    assert_consistent(root, a)


def test_losing_the_dedup_index_stops_the_crawl_with_an_error(
    server: ImageServer, tmp_path: Path, redis_proc: RedisProcess
) -> None:
    urls = add_pictures(server, 40)
    root = tmp_path / "dataset"
    client = redis_proc.client()

    def progress(snapshot: ProgressSnapshot) -> None:
        if snapshot.counts.kept >= 2 and redis_proc.proc is not None:
            redis_proc.stop()  # Redis goes away in the middle of the crawl

    with pytest.raises(DedupUnavailable):
        crawl(
            urls,
            root,
            fast_settings(max_connections=1, cpu_workers=1),
            dedup=RedisDedupIndex(client, "job"),
            progress=progress,
            progress_interval=0.01,
        )
    client.close()
    lines = manifest(root)
    assert 2 <= len(lines) < 40
    on_disk = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.parent != root and ".pixcrawler" not in p.parts
    )
    assert sorted(line["path"] for line in lines) == on_disk


def test_chunks_of_one_keyword_share_its_folder(server: ImageServer, tmp_path: Path) -> None:
    # A long URL list split in chunks: several crawls write the same keyword folder at once.
    urls = add_pictures(server, 30)
    chunks = [urls[0:10], urls[10:20], urls[20:30]]
    dedup = LocalDedupIndex()  # thread-safe: one index for the three "workers"
    results: list[KeywordResult] = []
    lock = threading.Lock()

    def worker(chunk: list[str]) -> None:
        result = run_keyword(
            candidates_from(chunk),
            root=tmp_path,
            category="cats",
            keyword="tabby",
            target=len(chunk),
            settings=fast_settings(max_connections=3),
            dedup=dedup,
            count_existing=False,
        )
        with lock:
            results.append(result)

    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.counts.kept for r in results) == [10, 10, 10]
    stems = sorted(Path(line["path"]).stem for line in manifest(tmp_path))
    assert stems == [f"{i:04d}" for i in range(1, 31)]
    assert_consistent(tmp_path, results[0])
