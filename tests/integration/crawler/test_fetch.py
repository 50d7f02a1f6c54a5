"""The Fetcher against a real HTTP server on 127.0.0.1: limits, retries, traps, SSRF, robots."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from celery_core.crawler.fetch.fetcher import FetchedImage, Fetcher
from celery_core.crawler.fetch.ssrf import AddressPolicy
from celery_core.crawler.types import FetchError, TextPage
from celery_core.diagnostics.pictures import encode, make_picture
from celery_core.settings.crawler_settings import DEFAULT_USER_AGENT, CrawlerSettings
from tests.integration.crawler.crawl_helpers import fast_settings
from tests.support.image_server import ImageServer, Reply

JPEG = encode(make_picture(1))


@pytest.fixture
def server() -> Iterator[ImageServer]:
    with ImageServer() as srv:
        yield srv


def fetch(
    url: str, settings: CrawlerSettings | None = None, policy: AddressPolicy | None = None
) -> FetchedImage:
    async def main() -> FetchedImage:
        async with Fetcher(settings or fast_settings(), policy=policy) as fetcher:
            return await fetcher.fetch_image(url)

    return asyncio.run(main())


def fetch_error(
    url: str, settings: CrawlerSettings | None = None, policy: AddressPolicy | None = None
) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(url, settings, policy)
    return info.value


def test_downloads_an_image_with_an_honest_user_agent(server: ImageServer) -> None:
    url = server.add_bytes("/a.jpg", JPEG, "image/jpeg")
    image = fetch(url)
    assert image.data == JPEG
    assert image.final_url == url
    agent = next(r.headers["User-Agent"] for r in server.requests if r.path == "/a.jpg")
    assert agent == DEFAULT_USER_AGENT
    assert "PixCrawler" in agent and "http" in agent


def test_content_is_judged_by_magic_bytes_not_name_or_header(server: ImageServer) -> None:
    html = server.add_bytes("/photo.jpg", b"<html><body>nope</body></html>", "image/jpeg")
    assert fetch_error(html).reason == "not_an_image"
    png = encode(make_picture(2), "PNG")
    odd = server.add_bytes("/download.php", png, "text/plain")
    assert fetch(odd).data == png


def test_404_fails_at_once(server: ImageServer) -> None:
    error = fetch_error(server.url("/missing.jpg"))
    assert (error.reason, error.transient) == ("http_404", False)
    assert server.hits("/missing.jpg") == 1


def test_503_then_200_is_retried(server: ImageServer) -> None:
    url = server.add_sequence("/flaky.jpg", [Reply(503), Reply(502), Reply(200, JPEG)])
    assert fetch(url).data == JPEG
    assert server.hits("/flaky.jpg") == 3


def test_retries_stop_after_max_retries(server: ImageServer) -> None:
    url = server.add_sequence("/down.jpg", [Reply(500)])
    error = fetch_error(url, fast_settings(max_retries=1))
    assert (error.reason, error.transient) == ("http_500", True)
    assert server.hits("/down.jpg") == 2


def test_429_waits_for_retry_after(server: ImageServer) -> None:
    url = server.add_sequence(
        "/busy.jpg", [Reply(429, headers={"Retry-After": "1"}), Reply(200, JPEG)]
    )
    started = time.monotonic()
    assert fetch(url, fast_settings(max_retry_wait=5)).data == JPEG
    assert time.monotonic() - started >= 0.9
    assert server.hits("/busy.jpg") == 2


def test_retry_after_is_capped(server: ImageServer) -> None:
    url = server.add_sequence(
        "/busy.jpg", [Reply(429, headers={"Retry-After": "3600"}), Reply(200, JPEG)]
    )
    started = time.monotonic()
    assert fetch(url, fast_settings(max_retry_wait=0.1)).data == JPEG
    assert time.monotonic() - started < 5


def test_slow_body_hits_the_total_timeout(server: ImageServer) -> None:
    url = server.add_slow("/slow.jpg", JPEG, chunk=16, delay=0.05)
    started = time.monotonic()
    error = fetch_error(url, fast_settings(total_timeout=0.4, max_retries=0))
    assert (error.reason, error.transient) == ("timeout", True)
    assert time.monotonic() - started < 3


def test_endless_body_stops_at_the_cap(server: ImageServer) -> None:
    url = server.add_endless("/endless.jpg")
    error = fetch_error(url, fast_settings(max_image_bytes=256 * 1024))
    assert error.reason == "too_large"


def test_large_content_length_is_refused_before_reading(server: ImageServer) -> None:
    big = b"\xff\xd8\xff\xe0" + bytes(300_000)
    url = server.add_bytes("/big.jpg", big, "image/jpeg")
    error = fetch_error(url, fast_settings(max_image_bytes=100_000))
    assert error.reason == "too_large"
    assert "Content-Length" in error.detail


def test_redirects_are_followed_and_reported(server: ImageServer) -> None:
    target = server.add_bytes("/final.jpg", JPEG, "image/jpeg")
    server.add_redirect("/hop2", "/final.jpg", 301)
    url = server.add_redirect("/hop1", server.url("/hop2"), 307)
    image = fetch(url)
    assert image.final_url == target and image.url == url


def test_redirect_loop_and_too_many_redirects(server: ImageServer) -> None:
    server.add_redirect("/loop-a", "/loop-b")
    url = server.add_redirect("/loop-b", "/loop-a")
    assert fetch_error(url).reason == "redirect_loop"
    for i in range(8):
        server.add_redirect(f"/chain{i}", f"/chain{i + 1}")
    server.add_bytes("/chain8", JPEG)
    assert fetch_error(server.url("/chain0"), fast_settings(max_redirects=5)).reason == (
        "too_many_redirects"
    )
    assert fetch(server.url("/chain0"), fast_settings(max_redirects=8)).data == JPEG


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.jpg",
        "data:image/png;base64,iVBORw0KGgo=",
        "gopher://x/",
    ],
)
def test_non_http_schemes_are_refused(url: str) -> None:
    assert fetch_error(url).reason == "bad_scheme"


def test_redirect_to_a_non_http_scheme_is_refused(server: ImageServer) -> None:
    url = server.add_redirect("/to-file", "file:///etc/passwd")
    assert fetch_error(url).reason == "bad_scheme"


# --- the private-network guard ---------------------------------------------------------


def test_loopback_is_refused_unless_private_networks_are_allowed(server: ImageServer) -> None:
    url = server.add_bytes("/a.jpg", JPEG, "image/jpeg")
    error = fetch_error(url, fast_settings(allow_private_networks=False))
    assert error.reason == "private_address"
    assert server.hits("/a.jpg") == 0
    assert fetch(url, fast_settings(allow_private_networks=True)).data == JPEG


def test_guard_checks_the_resolved_address_not_the_name(server: ImageServer) -> None:
    # "localhost" is a name: only the address the resolver returned reveals loopback.
    server.add_bytes("/a.jpg", JPEG, "image/jpeg")
    url = f"http://localhost:{server.port}/a.jpg"
    error = fetch_error(url, fast_settings(allow_private_networks=False, respect_robots=False))
    assert error.reason == "private_address"
    assert "127.0.0.1" in error.detail or "::1" in error.detail
    assert server.hits("/a.jpg") == 0


def test_every_redirect_hop_is_checked(server: ImageServer) -> None:
    """127.0.0.1 stands for a public site and 127.0.0.2 for a private host: a policy that
    allows only the first proves a redirect's target is checked on its own."""
    with ImageServer(host="127.0.0.2") as private:
        secret = private.add_bytes("/secret.jpg", JPEG, "image/jpeg")
        url = server.add_redirect("/innocent.jpg", secret)
        public_only = AddressPolicy(allowed=["127.0.0.1/32"])
        settings = fast_settings(allow_private_networks=False, respect_robots=False)
        error = fetch_error(url, settings, public_only)
        assert error.reason == "private_address"
        assert server.hits("/innocent.jpg") == 1
        assert private.hits("/secret.jpg") == 0
        # The same redirect is followed when the target is allowed.
        assert fetch(url, settings, AddressPolicy(allow_private=True)).data == JPEG
        assert private.hits("/secret.jpg") == 1


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:10.0.0.1",
    ],
)
def test_private_and_special_addresses_are_refused(address: str) -> None:
    policy = AddressPolicy()
    assert not policy.allows(address)
    assert AddressPolicy(allow_private=True).allows(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::6810:85e5"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert AddressPolicy().allows(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.1/a.jpg",
    ],
)
def test_metadata_and_private_literals_fail_before_connecting(url: str) -> None:
    started = time.monotonic()
    assert fetch_error(url, fast_settings(allow_private_networks=False)).reason == (
        "private_address"
    )
    assert time.monotonic() - started < 1


def test_proxy_is_used_and_may_be_local_while_targets_are_still_checked(
    server: ImageServer,
) -> None:
    # The test server answers proxy-style requests ("GET http://host/path") by path.
    server.add_bytes("/via-proxy.jpg", JPEG, "image/jpeg")
    nowhere = "http://127.0.0.2:9/via-proxy.jpg"  # nothing listens there
    settings = fast_settings(proxy_url=server.base_url, respect_robots=False)
    assert fetch(nowhere, settings).data == JPEG
    assert server.hits("/via-proxy.jpg") == 1
    guarded = settings.updated(allow_private_networks=False)
    assert fetch_error(nowhere, guarded).reason == "private_address"
    assert server.hits("/via-proxy.jpg") == 1


# --- robots.txt ------------------------------------------------------------------------


def test_robots_wildcards_are_obeyed_and_fetched_once(server: ImageServer) -> None:
    server.add_text(
        "/robots.txt",
        "User-agent: *\nDisallow: /private/*.jpg$\nDisallow: /*?session=\n",
        "text/plain",
    )
    server.add_bytes("/private/a.jpg", JPEG)
    server.add_bytes("/private/a.jpg.html", JPEG)
    server.add_bytes("/public/a.jpg", JPEG)

    async def main() -> dict[str, str]:
        outcome = {}
        async with Fetcher(fast_settings()) as fetcher:
            for path in [
                "/private/a.jpg",
                "/private/sub/b.jpg",
                "/private/a.jpg.html",
                "/public/a.jpg",
                "/public/a.jpg?session=1",
            ]:
                try:
                    await fetcher.fetch_image(server.url(path))
                    outcome[path] = "ok"
                except FetchError as exc:
                    outcome[path] = exc.reason
        return outcome

    outcome = asyncio.run(main())
    assert outcome == {
        "/private/a.jpg": "robots_disallowed",
        "/private/sub/b.jpg": "robots_disallowed",
        "/private/a.jpg.html": "ok",
        "/public/a.jpg": "ok",
        "/public/a.jpg?session=1": "robots_disallowed",
    }
    assert server.hits("/robots.txt") == 1
    assert server.hits("/private/a.jpg") == 0


def test_robots_rules_for_our_agent_win_over_the_star_group(server: ImageServer) -> None:
    server.add_text(
        "/robots.txt",
        "User-agent: *\nDisallow: /\n\nUser-agent: PixCrawler\nDisallow: /nopix/\n",
        "text/plain",
    )
    server.add_bytes("/ok.jpg", JPEG)
    assert fetch(server.url("/ok.jpg")).data == JPEG
    assert fetch_error(server.url("/nopix/a.jpg")).reason == "robots_disallowed"


def test_robots_4xx_allows_and_5xx_disallows(server: ImageServer) -> None:
    url = server.add_bytes("/a.jpg", JPEG)
    assert fetch(url).data == JPEG  # no robots.txt: 404
    with ImageServer() as broken:
        broken.add_sequence("/robots.txt", [Reply(503)])
        url = broken.add_bytes("/a.jpg", JPEG)
        assert fetch_error(url).reason == "robots_disallowed"
        assert broken.hits("/a.jpg") == 0
        assert fetch(url, fast_settings(respect_robots=False)).data == JPEG


def test_allowed_by_robots_for_sources(server: ImageServer) -> None:
    server.add_text("/robots.txt", "User-agent: *\nDisallow: /search\n", "text/plain")

    async def main() -> tuple[bool, bool, bool]:
        async with Fetcher(fast_settings()) as fetcher:
            return (
                await fetcher.allowed_by_robots(server.url("/search?q=cat")),
                await fetcher.allowed_by_robots(server.url("/gallery/")),
                await fetcher.allowed_by_robots("ftp://example.com/"),
            )

    assert asyncio.run(main()) == (False, True, False)


# --- pages -----------------------------------------------------------------------------


def test_fetch_text_decodes_and_caps_pages(server: ImageServer) -> None:
    server.add_bytes("/latin.html", "café".encode("latin-1"), "text/html; charset=iso-8859-1")
    server.add_bytes("/big.html", b"<p>" + b"x" * 50_000, "text/html")
    server.add_bytes("/gone.html", b"gone", "text/html", status=410)

    async def main() -> list[TextPage]:
        async with Fetcher(fast_settings(max_page_bytes=10_000)) as fetcher:
            return [
                await fetcher.fetch_text(server.url(p))
                for p in ("/latin.html", "/big.html", "/gone.html")
            ]

    latin, big, gone = asyncio.run(main())
    assert latin.text == "café" and latin.content_type == "text/html" and latin.status == 200
    assert len(big.text) == 10_000
    assert (gone.status, gone.text) == (410, "gone")


def test_concurrency_is_limited_per_host(server: ImageServer) -> None:
    active = 0
    peak = 0

    async def handler(request):  # runs on the server's own loop
        nonlocal active, peak
        from aiohttp import web

        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return web.Response(body=JPEG, content_type="image/jpeg")

    for i in range(12):
        server.add_route(f"/c{i}.jpg", handler)

    async def main() -> int:
        async with Fetcher(fast_settings(max_per_host=3, respect_robots=False)) as fetcher:
            results = await asyncio.gather(
                *(fetcher.fetch_image(server.url(f"/c{i}.jpg")) for i in range(12))
            )
        return len(results)

    assert asyncio.run(main()) == 12
    assert 1 < peak <= 3
