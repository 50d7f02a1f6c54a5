"""A website cut into shards: its pages read once, its images shared out, nothing kept twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_core.crawler.dataset.writer import MANIFEST_NAME
from celery_core.crawler.dedup.redis_index import RedisDedupIndex
from celery_core.crawler.engine import run_keyword
from celery_core.crawler.frontier.redis_queue import RedisFrontier, RedisQuota
from celery_core.crawler.types import KeywordResult
from celery_core.crawler.work import candidates_for
from celery_core.diagnostics.pictures import encode, make_picture
from celery_core.jobs.work_items import WebsiteSettings, WorkItem, split_item, split_website
from tests.integration.crawler.crawl_helpers import fast_settings
from tests.support.image_server import ImageServer
from tests.support.redis_proc import RedisProcess

PAGES, PER_PAGE = 8, 5


@pytest.fixture
def site() -> Iterator[ImageServer]:
    """A start page linking 8 pages of 5 pictures each; pictures take a moment to arrive."""
    with ImageServer() as server:
        links = "".join(f'<a href="/site/p{n}.html">page {n}</a>' for n in range(PAGES))
        server.add_text("/site/index.html", f"<html><body>{links}</body></html>")
        for n in range(PAGES):
            images = ""
            for m in range(PER_PAGE):
                body = encode(make_picture(1000 + n * PER_PAGE + m))
                path = f"/site/img/{n}-{m}.jpg"
                server.add_slow(path, body, chunk=len(body) // 4 + 1, delay=0.02)
                images += f'<img src="/site/img/{n}-{m}.jpg" alt="picture {m}">'
            server.add_text(f"/site/p{n}.html", f"<html><body>{images}</body></html>")
        yield server


def website_item(server: ImageServer, target: int = 100) -> WorkItem:
    site = WebsiteSettings(url=server.url("/site/index.html"), max_pages=100, max_depth=2)
    return WorkItem("birds", "garden", "website", target, website=site)


def run_shard(
    shard: WorkItem, root: Path, redis_proc: RedisProcess, name: str = "job1:garden"
) -> KeywordResult:
    failures: list[tuple[str, str]] = []
    with redis_proc.client(1) as client:
        return run_keyword(
            candidates_for(
                shard, fast_settings(), failures, RedisFrontier(redis_proc.url(1), name, 600)
            ),
            root=root,
            category=shard.category,
            keyword=shard.keyword,
            target=shard.pool_target,  # each shard may keep all; the quota bounds the total
            quota=RedisQuota(client, name, shard.pool_target, 600),
            settings=fast_settings(),
            dedup=RedisDedupIndex(client, str(root)),
            count_existing=False,
        )


def kept_urls(root: Path) -> list[str]:
    lines = (root / MANIFEST_NAME).read_text().splitlines()
    return [json.loads(line)["url"] for line in lines]


def assert_pages_read_once(site: ImageServer) -> None:
    assert site.hits("/site/index.html") == 1
    assert [site.hits(f"/site/p{n}.html") for n in range(PAGES)] == [1] * PAGES


def test_website_items_become_shards_that_share_the_target() -> None:
    site = WebsiteSettings(url="http://example.org/", max_pages=100, max_depth=2)
    item = WorkItem("birds", "garden", "website", 10, website=site)
    shards = split_item(item, urls_per_task=100)
    assert [(s.chunk_index, s.chunk_count) for s in shards] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert sum(s.target for s in shards) == 10
    small = WorkItem("birds", "garden", "website", 10, website=WebsiteSettings(
        url="http://example.org/", max_pages=20, max_depth=2))  # fmt: skip
    assert split_item(small, urls_per_task=100) == [small]  # a small site stays one task
    assert len(split_website(item, shards=12)) == 10  # never more shards than images wanted


def test_shards_running_together_read_each_page_once_and_share_the_pictures(
    site: ImageServer, redis_proc: RedisProcess, tmp_path: Path
) -> None:
    shards = split_website(website_item(site), shards=3)
    results: dict[int, KeywordResult] = {}

    def run(shard: WorkItem) -> None:
        results[shard.chunk_index] = run_shard(shard, tmp_path, redis_proc)

    threads = [threading.Thread(target=run, args=(shard,)) for shard in shards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(results) == [0, 1, 2]
    urls = kept_urls(tmp_path)
    assert len(urls) == len(set(urls)) == PAGES * PER_PAGE
    assert sum(r.counts.kept for r in results.values()) == PAGES * PER_PAGE
    assert sum(1 for r in results.values() if r.counts.kept > 0) >= 2  # the work was shared
    assert_pages_read_once(site)
    for n in range(PAGES):
        for m in range(PER_PAGE):
            assert site.hits(f"/site/img/{n}-{m}.jpg") == 1  # each picture fetched by one shard


def test_shards_running_one_after_another_add_up(
    site: ImageServer, redis_proc: RedisProcess, tmp_path: Path
) -> None:
    # One worker slot: the first shard reads the whole site and keeps what the item asks for;
    # the later ones find nothing left to do and read no page.
    shards = split_website(website_item(site, target=30), shards=3)
    results = [run_shard(shard, tmp_path, redis_proc) for shard in shards]
    assert [r.counts.kept for r in results] == [30, 0, 0]
    assert len(set(kept_urls(tmp_path))) == 30
    assert_pages_read_once(site)


def test_shards_together_keep_no_more_than_the_item_asks_for(
    site: ImageServer, redis_proc: RedisProcess, tmp_path: Path
) -> None:
    shards = split_website(website_item(site, target=17), shards=3)
    assert [s.target for s in shards] == [6, 6, 5] and {s.pool_target for s in shards} == {17}
    results: list[KeywordResult] = []
    threads = [
        threading.Thread(target=lambda s=shard: results.append(run_shard(s, tmp_path, redis_proc)))
        for shard in shards
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 3
    assert sum(r.counts.kept for r in results) == 17
    assert len(set(kept_urls(tmp_path))) == 17


def test_a_site_that_cannot_be_read_ends_every_shard(
    redis_proc: RedisProcess, tmp_path: Path
) -> None:
    with ImageServer() as server:  # nothing at the start page: 404
        shards = split_website(website_item(server), shards=2)
        results = [run_shard(shard, tmp_path, redis_proc, "job2:garden") for shard in shards]
    assert [r.counts.kept for r in results] == [0, 0]
    assert results[0].counts.source_errors  # the leader says why


def test_a_lead_left_by_a_dead_shard_is_taken_over(
    site: ImageServer, redis_proc: RedisProcess, tmp_path: Path
) -> None:
    # A shard took the lead and died (no "done", no renewal): the lead runs out and another
    # shard reads the site instead.
    name = "job3:garden"
    with redis_proc.client(1) as client:
        client.set(f"pixcrawler:frontier:{name}:lead", "dead-shard", ex=1)
    shard = split_website(website_item(site), shards=2)[1]
    result = run_shard(shard, tmp_path, redis_proc, name)
    assert result.counts.kept == PAGES * PER_PAGE
    assert_pages_read_once(site)
