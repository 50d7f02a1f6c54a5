"""Search-engine sources against fixture result pages served by a real local HTTP server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest

from celery_core.crawler.search.baidu import BaiduSource, decode_obfuscated
from celery_core.crawler.search.bing import BingSource
from celery_core.crawler.search.duckduckgo import DuckDuckGoSource
from celery_core.crawler.search.google import GoogleSource, extract_images
from celery_core.crawler.search.registry import (
    ENGINES,
    engine_base_urls,
    get_engine,
    search_candidates,
)
from celery_core.crawler.types import Candidate, SourceError
from tests.integration.crawler.page_fetcher import AiohttpPageFetcher, LocalSite

T = TypeVar("T")
KEYWORD = "golden retriever"
VQD = "4-163295393489237427385013471548541843836"


def run(factory: Callable[[AiohttpPageFetcher], Coroutine[Any, Any, T]]) -> T:
    async def main() -> T:
        async with AiohttpPageFetcher() as fetcher:
            return await factory(fetcher)

    return asyncio.run(main())


async def collect(stream: AsyncIterator[Candidate]) -> list[Candidate]:
    return [c async for c in stream]


def serve_working_engines(site: LocalSite) -> None:
    site.add_fixture("/bing/images/async", "bing_async_page1.html", query={"first": "1"})
    site.add_fixture("/bing/images/async", "bing_async_page2.html", query={"first": "36"})
    site.add_fixture("/bing/images/async", "bing_async_page3.html", query={"first": "71"})
    site.add_fixture("/duckduckgo/", "duckduckgo_search.html")
    site.add_fixture("/duckduckgo/i.js", "duckduckgo_i_page1.json")
    site.add_fixture("/duckduckgo/i.js", "duckduckgo_i_page2.json", query={"s": "100"})
    site.add_fixture("/google/search", "google_search.html")
    site.add_fixture("/baidu/search/acjson", "baidu_acjson_page1.json", query={"pn": "0"})
    site.add_fixture("/baidu/search/acjson", "baidu_acjson_empty.json", query={"pn": "30"})


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as local:
        serve_working_engines(local)
        yield local


def test_bing_reads_iusc_metadata_and_pages_until_nothing_new(site: LocalSite) -> None:
    source = BingSource(KEYWORD, base_url=f"{site.url}/bing")
    found = run(lambda f: collect(source.candidates(f, limit=100)))

    assert [c.url for c in found] == [
        "https://images.example.com/dogs/golden-retriever-field.jpg",
        "https://cdn.example.net/photos/2023/05/golden_puppy.jpeg",
        "http://photos.example.com/u/4411/golden-lake.png",
        "https://images.example.com/dogs/golden-retriever-snow.webp",
        "https://static.example.org/img/golden%20retriever%20portrait.jpg?w=1600&q=80",
        "https://cdn.example.net/photos/2022/11/golden-autumn.jpg",
        "https://images.example.com/dogs/golden-swim.jpg",
    ]
    first = found[0]
    assert first.source == "bing"
    assert first.source_page == "https://dogs.example.org/breeds/golden-retriever"
    assert first.title == "Golden Retriever Dog Breed Information & Characteristics"
    assert found[2].title == "Golden & the lake"
    requests = site.requested("/bing/images/async")
    # page 3 repeats page 1: nothing new, so no page 4 is asked for
    assert [r["first"] for r in requests] == ["1", "36", "71"]
    assert {r["q"] for r in requests} == {KEYWORD}


def test_bing_stops_paging_once_the_limit_is_reached(site: LocalSite) -> None:
    source = BingSource(KEYWORD, base_url=f"{site.url}/bing")
    found = run(lambda f: collect(source.candidates(f, limit=3)))
    assert len(found) == 3
    assert len(site.requested("/bing/images/async")) == 1


def test_duckduckgo_gets_a_vqd_token_then_pages_through_i_js(site: LocalSite) -> None:
    source = DuckDuckGoSource(KEYWORD, base_url=f"{site.url}/duckduckgo")
    found = run(lambda f: collect(source.candidates(f, limit=100)))

    assert [c.url for c in found] == [
        "https://images.example.com/dogs/golden-retriever-field.jpg",
        "https://media.example.org/2021/03/golden-family.jpeg",
        "https://cdn.example.net/pets/golden_retriever_sitting.png",
        "https://media.example.org/2020/07/golden-beach.jpg",
    ]
    assert found[1] == Candidate(
        url="https://media.example.org/2021/03/golden-family.jpeg",
        source="duckduckgo",
        source_page="https://family.example.org/our-golden",
        title="Our family golden retriever",
    )
    assert [r["q"] for r in site.requested("/duckduckgo/")] == [KEYWORD]
    api_calls = site.requested("/duckduckgo/i.js")
    assert [r.get("vqd") for r in api_calls] == [VQD, VQD]
    assert [r.get("s") for r in api_calls] == [None, "100"]  # the second follows `next`


def test_google_extracts_original_images_from_script_data(site: LocalSite) -> None:
    source = GoogleSource(KEYWORD, base_url=f"{site.url}/google")
    found = run(lambda f: collect(source.candidates(f, limit=100)))

    assert [c.url for c in found] == [
        "https://images.example.com/dogs/golden-retriever-field.jpg",
        "https://cdn.example.net/photo?id=42&size=large",
        "https://media.example.org/2019/golden%20puppy.png",
    ]
    assert found[1].source_page == "https://www.example.net/gallery?id=42"
    assert found[1].title == "Golden retriever & friends"
    assert all("gstatic.com" not in c.url for c in found)
    # the second page repeats the first: paging stops after it
    assert [r["ijn"] for r in site.requested("/google/search")] == ["0", "1"]


def test_google_extractor_tolerates_missing_source_records() -> None:
    text = 'x=[["https://a.example.com/1.jpg",600,800],["https://b.example.com/2.png",10,20]];'
    assert extract_images(text) == [
        ("https://a.example.com/1.jpg", None, None),
        ("https://b.example.com/2.png", None, None),
    ]


def test_baidu_reads_plain_and_obfuscated_object_urls(site: LocalSite) -> None:
    source = BaiduSource("金毛犬", base_url=f"{site.url}/baidu")
    found = run(lambda f: collect(source.candidates(f, limit=100)))

    assert found == [
        Candidate(
            "https://images.example.com/dogs/jinmao-1.jpg",
            "baidu",
            "https://pets.example.cn/article/1001.html",
            "金毛犬的饲养方法 - 宠物百科",
        ),
        Candidate(
            "http://img.example.cn/upload/2022/0815/golden-2.jpg",
            "baidu",
            "http://www.example.cn/news/2022/0815/2.html",
            "可爱的金毛幼犬",
        ),
        Candidate(
            "https://photo.example.com/p/3.jpeg",
            "baidu",
            "https://photo.example.com/album/3",
            "金毛在草地上奔跑 'Run'",
        ),
    ]
    requests = site.requested("/baidu/search/acjson")
    assert [r["pn"] for r in requests] == ["0", "30"]
    assert requests[0]["word"] == "金毛犬"


def test_baidu_obfuscation_decodes_and_leaves_plain_urls_alone() -> None:
    coded = "ippr_z2C$qAzdH3FAzdH3Fooo_z&e3Bkwt17_z&e3Bv54AzdH3F"
    assert decode_obfuscated(coded) == "http://www.baidu.com/"
    assert decode_obfuscated("https://a.example.com/x.jpg") == "https://a.example.com/x.jpg"


# (route setup, expected reason) per engine and failure mode. Each engine is served under
# its own prefix, `/<engine>-<mode>`.
Setup = Callable[[LocalSite, str], None]


def _bing(name: str, status: int = 200) -> Setup:
    return lambda site, prefix: site.add_fixture(f"{prefix}/images/async", name, status=status)


def _google(name: str, status: int = 200) -> Setup:
    return lambda site, prefix: site.add_fixture(f"{prefix}/search", name, status=status)


def _baidu(name: str, status: int = 200) -> Setup:
    return lambda site, prefix: site.add_fixture(f"{prefix}/search/acjson", name, status=status)


def _ddg(token_page: str, api: str | None = None, status: int = 200) -> Setup:
    def setup(site: LocalSite, prefix: str) -> None:
        site.add_fixture(f"{prefix}/", token_page)
        if api is not None:
            site.add_fixture(f"{prefix}/i.js", api, status=status)

    return setup


FAILURES: dict[tuple[str, str], tuple[Setup, str]] = {
    ("bing", "http_403"): (_bing("captcha.html", 403), "blocked"),
    ("bing", "rate_limited"): (_bing("captcha.html", 429), "blocked"),
    ("bing", "captcha"): (_bing("captcha.html"), "blocked"),
    ("bing", "garbage"): (_bing("changed_layout.html"), "markup_changed"),
    ("bing", "empty"): (_bing("bing_no_results.html"), "no_results"),
    ("bing", "http_503"): (_bing("changed_layout.html", 503), "http_503"),
    ("duckduckgo", "http_403"): (
        _ddg("duckduckgo_search.html", "captcha.html", 403),
        "blocked",
    ),
    ("duckduckgo", "captcha"): (_ddg("duckduckgo_anomaly.html"), "blocked"),
    ("duckduckgo", "garbage_token_page"): (_ddg("changed_layout.html"), "markup_changed"),
    ("duckduckgo", "garbage_api"): (
        _ddg("duckduckgo_search.html", "changed_layout.html"),
        "markup_changed",
    ),
    ("duckduckgo", "empty"): (
        _ddg("duckduckgo_search.html", "duckduckgo_i_empty.json"),
        "no_results",
    ),
    ("google", "http_403"): (_google("google_sorry.html", 403), "blocked"),
    ("google", "captcha"): (_google("google_sorry.html"), "blocked"),
    ("google", "garbage"): (_google("changed_layout.html"), "markup_changed"),
    ("google", "empty"): (_google("google_no_results.html"), "no_results"),
    ("baidu", "http_403"): (_baidu("baidu_forbid.json", 403), "blocked"),
    ("baidu", "forbid_spider"): (_baidu("baidu_forbid.json"), "blocked"),
    ("baidu", "captcha"): (_baidu("baidu_captcha.html"), "blocked"),
    ("baidu", "garbage"): (_baidu("changed_layout.html"), "markup_changed"),
    ("baidu", "empty"): (_baidu("baidu_acjson_empty.json"), "no_results"),
}


@pytest.mark.parametrize(("engine", "mode"), list(FAILURES), ids="-".join)
def test_engine_failure_gives_the_right_reason(site: LocalSite, engine: str, mode: str) -> None:
    setup, reason = FAILURES[engine, mode]
    prefix = f"/{engine}-{mode}"
    setup(site, prefix)
    source = get_engine(engine)(KEYWORD, base_url=site.url + prefix)

    with pytest.raises(SourceError) as caught:
        run(lambda f: collect(source.candidates(f, limit=50)))

    assert caught.value.source == engine
    assert caught.value.reason == reason
    assert any(r.startswith(prefix) for r in site.requests)


def test_failure_modes_cover_every_engine() -> None:
    assert {engine for engine, _ in FAILURES} == set(ENGINES)


def test_a_block_after_the_first_page_is_reported_but_keeps_what_came_before() -> None:
    with LocalSite() as site:
        site.add_fixture("/bing/images/async", "bing_async_page1.html", query={"first": "1"})
        site.add_fixture("/bing/images/async", "captcha.html", status=429)
        source = BingSource(KEYWORD, base_url=f"{site.url}/bing")
        got: list[Candidate] = []

        async def consume(fetcher: AiohttpPageFetcher) -> None:
            async for candidate in source.candidates(fetcher, limit=100):
                got.append(candidate)

        with pytest.raises(SourceError) as caught:
            run(consume)
    assert caught.value.reason == "blocked"
    assert len(got) == 5


def test_combinator_falls_through_failing_engines(site: LocalSite) -> None:
    FAILURES["bing", "http_403"][0](site, "/bing-blocked")
    FAILURES["duckduckgo", "captcha"][0](site, "/ddg-captcha")
    bases = {
        "bing": f"{site.url}/bing-blocked",
        "duckduckgo": f"{site.url}/ddg-captcha",
        "google": f"{site.url}/google",
    }
    outcome = run(
        lambda f: search_candidates(KEYWORD, ["bing", "duckduckgo", "google"], f, 50, bases)
    )

    assert outcome.failures == [("bing", "blocked"), ("duckduckgo", "blocked")]
    assert [c.source for c in outcome.candidates] == ["google"] * 3


def test_combinator_dedupes_across_engines_and_fills_up_to_the_limit(site: LocalSite) -> None:
    bases = {"bing": f"{site.url}/bing", "duckduckgo": f"{site.url}/duckduckgo"}
    outcome = run(lambda f: search_candidates(KEYWORD, ["bing", "duckduckgo"], f, 100, bases))

    urls = [c.url for c in outcome.candidates]
    assert len(urls) == len(set(urls)) == 7 + 3  # ddg's field photo is bing's first result
    assert [c.source for c in outcome.candidates].count("duckduckgo") == 3
    assert outcome.failures == []

    limited = run(lambda f: search_candidates(KEYWORD, ["bing", "duckduckgo"], f, 9, bases))
    assert [c.source for c in limited.candidates] == ["bing"] * 7 + ["duckduckgo"] * 2


def test_combinator_records_unknown_engines_and_unreachable_servers() -> None:
    with socket.socket() as probe:  # a port nothing listens on once the socket is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bases = {"bing": f"http://127.0.0.1:{port}"}
    outcome = run(lambda f: search_candidates(KEYWORD, ["yahoo", "bing"], f, 10, bases))
    assert outcome.candidates == []
    assert outcome.failures == [("yahoo", "unknown_engine"), ("bing", "connection_failed")]


def test_registry_and_base_urls_from_settings() -> None:
    assert get_engine("Bing") is BingSource
    assert set(ENGINES) == {"bing", "duckduckgo", "google", "baidu"}
    with pytest.raises(ValueError, match="unknown search engine 'yahoo'"):
        get_engine("yahoo")
    settings = SimpleNamespace(bing_base_url="http://mirror.local/bing", google_base_url="")
    assert engine_base_urls(settings) == {"bing": "http://mirror.local/bing"}
    assert BingSource("x").base_url == "https://www.bing.com"
    assert BingSource("x", base_url="http://mirror.local/bing/").base_url == (
        "http://mirror.local/bing"
    )


def test_duckduckgo_reads_json_whatever_its_content_type(site: LocalSite) -> None:
    site.add_fixture("/ddg-text/", "duckduckgo_search.html")
    site.add_fixture("/ddg-text/i.js", "duckduckgo_i_page2.json", content_type="text/javascript")
    source = DuckDuckGoSource(KEYWORD, base_url=f"{site.url}/ddg-text")
    found = run(lambda f: collect(source.candidates(f, limit=10)))
    assert len(found) == 2
