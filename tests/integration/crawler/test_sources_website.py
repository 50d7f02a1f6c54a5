"""The website crawl and the URL-list source, against a small site on a real local server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from celery_core.crawler.sources.page_links import page_links, parse_srcset
from celery_core.crawler.sources.url_list import UrlListSource
from celery_core.crawler.sources.website import WebsiteSource
from celery_core.crawler.types import Candidate, SourceError
from tests.integration.crawler.page_fetcher import AiohttpPageFetcher, LocalSite


def crawl(source: WebsiteSource, limit: int = 1000, robots: bool = True) -> list[Candidate]:
    async def main() -> list[Candidate]:
        async with AiohttpPageFetcher(respect_robots=robots) as fetcher:
            return [c async for c in source.candidates(fetcher, limit)]

    return asyncio.run(main())


def build_site(site: LocalSite) -> None:
    """A start page, a gallery using <base href>, two levels of deeper pages, a page robots.txt
    forbids, a link to another host and a redirect off the host."""
    other = site.alias_url  # same server, another host name: another site for the crawl
    site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    site.add(
        "/",
        f"""<!DOCTYPE html><html><head><title>Dog Gallery</title>
<meta property="og:image" content="/img/og.jpg">
<meta name="twitter:image" content="{site.url}/img/twitter.jpg">
</head><body>
<img src="img/a.jpg" alt="Dog A">
<img srcset="img/b-small.jpg 480w, img/b-large.jpg 1080w" src="img/b-large.jpg" alt="Dog B">
<img src="data:image/png;base64,iVBORw0KGgo=">
<a href="page1.html#top">Page 1</a>
<a href="/gallery/">Gallery</a>
<a href="/photos/c.png">full size</a>
<a href="/private/secret.html">members</a>
<a href="/docs/manual.pdf">manual</a>
<a href="/redirect-out">partner</a>
<a href="{other}/offsite.html">elsewhere</a>
<a href="mailto:owner@example.org">mail</a>
<a href="javascript:void(0)">menu</a>
<a href="#top">top</a>
</body></html>""",
    )
    site.add(
        "/gallery/",
        """<html><head><title>Gallery</title><base href="/assets/"></head><body>
<img src="d.jpg" alt="Dog D">
<picture><source srcset="e.webp 1x, e@2x.webp 2x"><img src="e.jpg"></picture>
<a href="../deep/level2.html">deeper</a></body></html>""",
    )
    site.add(
        "/page1.html",
        """<html><head><title>Page one</title></head><body>
<img data-src="/img/lazy.jpg" src="/img/placeholder.gif" alt="lazy dog">
<img src="/img/a.jpg"><a href="/deep/level2.html">deeper</a></body></html>""",
    )
    site.add(
        "/deep/level2.html",
        '<html><body><img src="/img/level2.jpg"><a href="level3.html">on</a></body></html>',
    )
    site.add("/deep/level3.html", '<html><body><img src="/img/level3.jpg"></body></html>')
    site.add("/private/secret.html", '<html><body><img src="/img/secret.jpg"></body></html>')
    site.add("/offsite.html", '<html><body><img src="/img/offsite.jpg"></body></html>')
    site.redirect("/redirect-out", f"{other}/offsite2.html")
    site.add("/offsite2.html", '<html><body><img src="/img/offsite2.jpg"></body></html>')


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite() as local:
        build_site(local)
        yield local


def paths(site: LocalSite, found: list[Candidate]) -> list[str]:
    return [c.url.removeprefix(site.url) for c in found]


def test_crawl_finds_images_within_depth_on_the_host_only(site: LocalSite) -> None:
    source = WebsiteSource(f"{site.url}/", max_pages=50, max_depth=2)
    found = crawl(source)

    assert paths(site, found) == [
        "/img/og.jpg",
        "/img/twitter.jpg",
        "/img/a.jpg",
        "/img/b-large.jpg",
        "/img/b-small.jpg",
        "/photos/c.png",
        "/img/placeholder.gif",
        "/img/lazy.jpg",
        "/assets/d.jpg",
        "/assets/e.webp",
        "/assets/e@2x.webp",
        "/assets/e.jpg",
        "/img/level2.jpg",
    ]
    assert all(c.source == "website" for c in found)
    requested = {r.split("?")[0] for r in site.requests}
    assert "/private/secret.html" not in requested  # robots.txt disallows it
    assert "/offsite.html" not in requested  # another host
    assert "/deep/level3.html" not in requested  # depth 3
    assert "/docs/manual.pdf" not in requested  # not a page
    assert ("/private/secret.html", "robots_disallowed") in [
        (url.removeprefix(site.url), reason) for url, reason in source.skipped
    ]
    assert (f"{site.url}/redirect-out", "off_host_redirect") in source.skipped


def test_candidates_name_their_page_and_alt_text(site: LocalSite) -> None:
    found = {c.url.removeprefix(site.url): c for c in crawl(WebsiteSource(f"{site.url}/"))}
    assert found["/img/a.jpg"].source_page == f"{site.url}/"
    assert found["/img/a.jpg"].title == "Dog A"
    assert found["/img/og.jpg"].title == "Dog Gallery"  # no alt: the page title
    assert found["/assets/d.jpg"].source_page == f"{site.url}/gallery/"


def test_depth_zero_reads_only_the_start_page(site: LocalSite) -> None:
    source = WebsiteSource(f"{site.url}/", max_depth=0)
    found = crawl(source)
    assert source.pages_fetched == [f"{site.url}/"]
    assert "/img/a.jpg" in paths(site, found)
    assert "/img/lazy.jpg" not in paths(site, found)


def test_page_limit_caps_the_pages_requested(site: LocalSite) -> None:
    source = WebsiteSource(f"{site.url}/", max_pages=2, max_depth=5)
    crawl(source)
    assert source.pages_fetched == [f"{site.url}/", f"{site.url}/page1.html"]
    pages = [r for r in site.requests if r.endswith(".html") or r.endswith("/")]
    assert pages == ["/", "/page1.html"]


def test_candidate_limit_stops_the_crawl(site: LocalSite) -> None:
    source = WebsiteSource(f"{site.url}/", max_depth=5)
    found = crawl(source, limit=3)
    assert len(found) == 3
    assert source.pages_fetched == [f"{site.url}/"]


def test_robots_disallowing_the_start_page_is_a_source_error() -> None:
    with LocalSite() as site:
        site.add("/robots.txt", "User-agent: *\nDisallow: /\n", content_type="text/plain")
        site.add("/", '<html><body><img src="/a.jpg"></body></html>')
        with pytest.raises(SourceError) as caught:
            crawl(WebsiteSource(f"{site.url}/"))
        assert caught.value.reason == "robots_disallowed"
        assert site.requests == ["/robots.txt"]
        # with robots off (the user's choice in settings) the page is read
        assert len(crawl(WebsiteSource(f"{site.url}/"), robots=False)) == 1


def test_start_page_redirected_to_another_host_becomes_the_site() -> None:
    with LocalSite() as site:
        site.redirect("/", f"{site.alias_url}/home")
        site.add("/home", '<html><body><img src="/h.jpg"><a href="/more">m</a></body></html>')
        site.add("/more", '<html><body><img src="/m.jpg"></body></html>')
        found = crawl(WebsiteSource(f"{site.url}/"))
        assert [c.url for c in found] == [f"{site.alias_url}/h.jpg", f"{site.alias_url}/m.jpg"]


def test_a_site_without_images_is_a_source_error() -> None:
    with LocalSite() as site:
        site.add("/", "<html><body><p>text only</p></body></html>")
        with pytest.raises(SourceError) as caught:
            crawl(WebsiteSource(f"{site.url}/"))
        assert caught.value.reason == "no_results"
        site.add("/gone", "missing", status=404)
        with pytest.raises(SourceError) as caught:
            crawl(WebsiteSource(f"{site.url}/gone"))
        assert caught.value.reason == "http_404"


def test_website_source_refuses_a_non_http_start_url() -> None:
    with pytest.raises(ValueError, match="is not an http"):
        WebsiteSource("ftp://example.org/")


def test_srcset_yields_every_candidate() -> None:
    assert parse_srcset("a.jpg 1x, b.jpg 2x") == ["a.jpg", "b.jpg"]
    assert parse_srcset(" a.jpg, b.jpg 640w ,  c.jpg,") == ["a.jpg", "b.jpg", "c.jpg"]
    assert parse_srcset("img/x.jpg?w=1,2 480w, y.jpg 800w") == ["img/x.jpg?w=1,2", "y.jpg"]
    assert parse_srcset("") == []


def test_page_links_resolves_against_base_href_and_skips_non_http() -> None:
    found = page_links(
        "http://example.org/dir/page.html",
        """<base href="http://cdn.example.org/static/"><img src="p.jpg">
        <a href="sub/next.html#frag">n</a><a href="/abs.html">a</a><a href="big.JPG">big</a>
        <a href="tel:123">t</a><a href="javascript:x()">j</a><img src="p.jpg">""",
    )
    assert found.images == [
        ("http://cdn.example.org/static/p.jpg", None),
        ("http://cdn.example.org/static/big.JPG", None),
    ]
    assert found.links == [
        "http://cdn.example.org/static/sub/next.html",
        "http://cdn.example.org/abs.html",
    ]


def test_url_list_skips_invalid_and_repeated_urls_with_a_reason() -> None:
    source = UrlListSource(
        [
            "https://example.org/a.jpg",
            "ftp://example.org/b.jpg",
            "  https://example.org/c.png  ",
            "https://example.org/a.jpg",
            "http:///nohost.jpg",
            "http://example.org/has space.jpg",
            "",
            "https://example.org/d.webp",
        ]
    )

    async def main() -> list[Candidate]:
        async with AiohttpPageFetcher() as fetcher:
            return [c async for c in source.candidates(fetcher, limit=10)]

    found = asyncio.run(main())
    assert [c.url for c in found] == [
        "https://example.org/a.jpg",
        "https://example.org/c.png",
        "https://example.org/d.webp",
    ]
    assert all(c.source == "urls" for c in found)
    assert [reason for _, reason in source.skipped] == [
        "unsupported_scheme",
        "duplicate",
        "missing_host",
        "whitespace",
        "empty",
    ]

    async def first_two() -> list[Candidate]:
        async with AiohttpPageFetcher() as fetcher:
            return [c async for c in source.candidates(fetcher, limit=2)]

    assert len(asyncio.run(first_two())) == 2
