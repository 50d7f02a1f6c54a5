"""Downloading pages and images: bounded, time-limited, size-capped, retried, SSRF-guarded.

`Fetcher` is an async context manager around one aiohttp session. Redirects are followed by
hand so that every hop is checked (scheme, address, robots.txt) and counted; the address check
itself runs in the connector's socket factory, on the IP actually dialled (see `ssrf`).
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import ipaddress
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import urldefrag, urljoin, urlsplit

import aiohttp
from multidict import CIMultiDictProxy

from celery_core.crawler.fetch.robots import MAX_ROBOTS_BYTES, RobotsCache, RobotsResponse
from celery_core.crawler.fetch.ssrf import (
    AddressPolicy,
    BlockedAddressError,
    check_resolved,
    check_url,
)
from celery_core.crawler.images.check import sniff_format
from celery_core.crawler.types import FetchError, TextPage
from celery_core.settings.crawler_settings import CrawlerSettings
from celery_core.settings.redis_urls import mask_url

__all__ = ["FetchedImage", "Fetcher"]

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
IMAGE_ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8,*/*;q=0.5"
PAGE_ACCEPT = "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8"
_SNIFF_BYTES = 32
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchedImage:
    """The bytes of a downloaded image, sniffed as an image format (not yet decoded)."""

    url: str
    final_url: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class _Response:
    url: str
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class _RetryableStatus(FetchError):
    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"http_{status}", "server asked to retry later", transient=True)
        self.retry_after = retry_after


def _check_image_start(head: bytes) -> None:
    if sniff_format(head) is None:
        raise FetchError("not_an_image", "content does not start like a known image format")


class Fetcher:
    """HTTP for sources (`PageFetcher`: fetch_text, allowed_by_robots) and for images.

    `policy` decides which addresses may be contacted; by default it follows
    `settings.allow_private_networks`.
    """

    def __init__(self, settings: CrawlerSettings, policy: AddressPolicy | None = None) -> None:
        self.settings = settings
        self.policy = policy or AddressPolicy(
            allow_private=settings.allow_private_networks,
            allowed=[ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks],
        )
        self._session: aiohttp.ClientSession | None = None
        self.robots = RobotsCache(self._load_robots, settings.user_agent)

    async def __aenter__(self) -> Self:
        s = self.settings
        connect_policy = self.policy
        if s.proxy_url:
            # The proxy itself was chosen by the user and may well be on localhost.
            connect_policy = await self._policy_with_proxy(s.proxy_url)
        connector = aiohttp.TCPConnector(
            limit=s.max_connections,
            limit_per_host=s.max_per_host,
            ttl_dns_cache=300,
            socket_factory=connect_policy.socket_factory,
        )
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=s.connect_timeout, sock_read=s.read_timeout
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            headers={"User-Agent": s.user_agent},
            trust_env=False,
            auto_decompress=True,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _policy_with_proxy(self, proxy_url: str) -> AddressPolicy:
        parts = urlsplit(proxy_url)
        host, port = parts.hostname or "", parts.port or 80
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port)
            addresses = {str(info[4][0]) for info in infos}
        except OSError:
            addresses = set()
        return AddressPolicy(
            allow_private=self.policy.allow_private,
            allowed=[*self.policy.allowed, *addresses],
            blocked=self.policy.blocked,
        )

    # --- PageFetcher ----------------------------------------------------------------------

    async def fetch_text(self, url: str) -> TextPage:
        """Fetch a page (cut at `max_page_bytes`). Any final status is returned except 429 and
        5xx, which are retried and then raised as FetchError("http_<status>", transient=True)."""
        response = await self._with_retries(
            url,
            accept=PAGE_ACCEPT,
            max_bytes=self.settings.max_page_bytes,
            truncate=True,
            check_robots=False,
        )
        content_type = response.headers.get("Content-Type", "")
        return TextPage(
            url=response.url,
            status=response.status,
            text=_decode_text(response.body, content_type),
            content_type=content_type.split(";", 1)[0].strip().lower(),
        )

    async def allowed_by_robots(self, url: str) -> bool:
        if not self.settings.respect_robots:
            return True
        try:
            check_url(url, self.policy)
        except FetchError:
            return False
        try:
            return await self.robots.allowed(url)
        except FetchError:
            return False

    # --- Images ---------------------------------------------------------------------------

    async def fetch_image(self, url: str, referer: str | None = None) -> FetchedImage:
        """Download an image, or raise FetchError with a stable `reason`."""
        response = await self._with_retries(
            url,
            accept=IMAGE_ACCEPT,
            max_bytes=self.settings.max_image_bytes,
            truncate=False,
            check_robots=self.settings.respect_robots,
            referer=referer,
            check_start=_check_image_start,
        )
        if not 200 <= response.status < 300:
            raise FetchError(f"http_{response.status}", mask_url(response.url))
        if not response.body:
            raise FetchError("not_an_image", "empty body")
        return FetchedImage(
            url=url,
            final_url=response.url,
            data=response.body,
            content_type=response.headers.get("Content-Type", ""),
        )

    # --- internals ------------------------------------------------------------------------

    async def _with_retries(
        self,
        url: str,
        *,
        accept: str,
        max_bytes: int,
        truncate: bool,
        check_robots: bool,
        referer: str | None = None,
        check_start: Callable[[bytes], None] | None = None,
        retries: int | None = None,
    ) -> _Response:
        s = self.settings
        attempts = (s.max_retries if retries is None else retries) + 1
        for attempt in range(attempts):
            try:
                async with asyncio.timeout(s.total_timeout):
                    return await self._follow(
                        url, accept, max_bytes, truncate, check_robots, referer, check_start
                    )
            except TimeoutError:
                error = FetchError("timeout", f"over {s.total_timeout:g} s", transient=True)
            except FetchError as exc:
                error = exc
            if not error.transient or attempt == attempts - 1:
                raise error
            await asyncio.sleep(self._retry_delay(attempt, error))
        raise AssertionError("unreachable")

    def _retry_delay(self, attempt: int, error: FetchError) -> float:
        cap = self.settings.max_retry_wait
        retry_after = error.retry_after if isinstance(error, _RetryableStatus) else None
        if retry_after is not None:
            return min(max(retry_after, 0.0), cap)
        base: float = self.settings.retry_backoff * (2**attempt)  # int ** int is Any
        return min(base * random.uniform(0.5, 1.5), cap)

    async def _follow(
        self,
        url: str,
        accept: str,
        max_bytes: int,
        truncate: bool,
        check_robots: bool,
        referer: str | None,
        check_start: Callable[[bytes], None] | None,
    ) -> _Response:
        session = self._session
        if session is None:
            raise RuntimeError("Fetcher used outside `async with`")
        current = urldefrag(url.strip())[0]
        seen = {current}
        headers = {"Accept": accept}
        if referer:
            headers["Referer"] = referer
        for _ in range(self.settings.max_redirects + 1):
            host = check_url(current, self.policy)
            if self.settings.proxy_url:
                port = urlsplit(current).port or (443 if current.startswith("https") else 80)
                await check_resolved(host, port, self.policy)
            if check_robots and not await self.robots.allowed(current):
                raise FetchError("robots_disallowed", mask_url(current))
            try:
                async with session.get(
                    current,
                    headers=headers,
                    allow_redirects=False,
                    proxy=self.settings.proxy_url,
                ) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in REDIRECT_STATUSES and location:
                        target = urldefrag(urljoin(current, location.strip()))[0]
                        if target in seen:
                            raise FetchError("redirect_loop", mask_url(target))
                        seen.add(target)
                        current = target
                        continue
                    if resp.status == 429 or resp.status >= 500:
                        raise _RetryableStatus(resp.status, _retry_after(resp.headers))
                    body = b""
                    if 200 <= resp.status < 300 or not check_start:
                        body = await _read_body(resp, max_bytes, truncate, check_start)
                    return _Response(current, resp.status, resp.headers, body)
            except aiohttp.ClientError as exc:
                raise _client_error(exc, current) from None
        raise FetchError("too_many_redirects", f"more than {self.settings.max_redirects}")

    async def _load_robots(self, robots_url: str) -> RobotsResponse:
        try:
            response = await self._with_retries(
                robots_url,
                accept="text/plain,*/*;q=0.5",
                max_bytes=MAX_ROBOTS_BYTES,
                truncate=True,
                check_robots=False,
                retries=0,
            )
        except FetchError as exc:
            if exc.reason in ("too_many_redirects", "redirect_loop"):
                return RobotsResponse(404)  # RFC 9309 2.3.1.2: treat as unavailable
            if exc.reason in ("private_address", "dns_error", "bad_url"):
                raise  # the download itself would fail the same way: say why
            if exc.reason.startswith("http_"):
                return RobotsResponse(int(exc.reason.removeprefix("http_")))
            log.debug("robots.txt unreachable at %s: %s", mask_url(robots_url), exc)
            return RobotsResponse(0)
        text = _decode_text(response.body, response.headers.get("Content-Type", ""))
        return RobotsResponse(response.status, text)


async def _read_body(
    resp: aiohttp.ClientResponse,
    max_bytes: int,
    truncate: bool,
    check_start: Callable[[bytes], None] | None,
) -> bytes:
    length = resp.content_length
    if length is not None and length > max_bytes and not truncate:
        raise FetchError("too_large", f"Content-Length {length} > {max_bytes}")
    buffer = bytearray()
    checked = check_start is None
    async for chunk in resp.content.iter_chunked(_CHUNK):
        buffer += chunk
        if not checked and len(buffer) >= _SNIFF_BYTES:
            assert check_start is not None
            check_start(bytes(buffer[:_SNIFF_BYTES]))
            checked = True
        if len(buffer) > max_bytes:
            if truncate:
                del buffer[max_bytes:]
                break
            raise FetchError("too_large", f"body over {max_bytes} bytes")
    if not checked and buffer:
        assert check_start is not None
        check_start(bytes(buffer))
    return bytes(buffer)


def _retry_after(headers: CIMultiDictProxy[str]) -> float | None:
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _client_error(exc: aiohttp.ClientError, url: str) -> FetchError:
    where = mask_url(url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, BlockedAddressError):
            return FetchError("private_address", f"{where} -> {exc.os_error.address}")
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return FetchError("dns_error", where)
        if isinstance(exc, aiohttp.ClientSSLError):
            return FetchError("tls_error", where)
        return FetchError("connection_error", f"{where}: {exc.os_error}", transient=True)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return FetchError("timeout", where, transient=True)
    if isinstance(exc, aiohttp.InvalidURL):
        return FetchError("bad_url", where)
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return FetchError("connection_error", f"{where}: {type(exc).__name__}", transient=True)
    return FetchError("bad_response", f"{where}: {type(exc).__name__}")


def _decode_text(body: bytes, content_type: str) -> str:
    charset = "utf-8"
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return body.decode(charset, errors="replace")
