"""A real local HTTP server for source tests, and a small PageFetcher that talks to it.

`LocalSite` is a ThreadingHTTPServer on 127.0.0.1 answering from a route table (path, and
optionally query parameters, -> status, body, headers), and it logs every request so tests
can check what a source asked for. `AiohttpPageFetcher` fetches pages with aiohttp and
answers robots.txt questions with protego, the way the product's fetcher does (RFC 9309:
a 4xx robots.txt allows everything, a 5xx or an unreachable one allows nothing).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from protego import Protego

from celery_core.crawler.types import FetchError, TextPage

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "engines"
HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"


@dataclass
class Route:
    body: bytes
    status: int = 200
    content_type: str = HTML
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class LocalSite:
    """`with LocalSite() as site: site.add("/page", "<html>...")`; `site.url` is its root."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Route]] = {}
        self.requests: list[str] = []  # path with query, in arrival order
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append(self.path)
                route = site.match(self.path)
                if route is None:
                    route = Route(b"not found", status=404, content_type="text/plain")
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alias_url(self) -> str:
        """The same server under another host name: for the crawl, another site."""
        return f"http://localhost:{self.port}"

    def add(
        self,
        path: str,
        body: str | bytes = b"",
        *,
        status: int = 200,
        content_type: str = HTML,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        route = Route(data, status, content_type, dict(query or {}), dict(headers or {}))
        routes = self.routes.setdefault(path, [])
        routes.append(route)
        routes.sort(key=lambda r: len(r.query), reverse=True)  # the most specific first

    def add_fixture(self, path: str, name: str, **kwargs: object) -> None:
        """Serve tests/fixtures/engines/<name> at `path`."""
        if "content_type" not in kwargs:
            kwargs["content_type"] = JSON if name.endswith(".json") else HTML
        self.add(path, (FIXTURES / name).read_bytes(), **kwargs)  # type: ignore[arg-type]

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.add(path, status=status, headers={"Location": location})

    def match(self, raw_path: str) -> Route | None:
        parts = urlsplit(raw_path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        for route in self.routes.get(parts.path, []):
            if all(params.get(k) == v for k, v in route.query.items()):
                return route
        return None

    def requested(self, path: str) -> list[dict[str, str]]:
        """The query parameters of each request made for `path`."""
        return [
            dict(parse_qsl(urlsplit(p).query, keep_blank_values=True))
            for p in self.requests
            if urlsplit(p).path == path
        ]

    def __enter__(self) -> LocalSite:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class AiohttpPageFetcher:
    """PageFetcher over aiohttp: pages come back whatever their status; robots by protego."""

    user_agent = "PixCrawlerTest/1.0"

    def __init__(self, respect_robots: bool = True, timeout: float = 5.0) -> None:
        self.respect_robots = respect_robots
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._robots: dict[str, Protego | bool] = {}  # origin -> rules, or allow/deny all
        self.fetched: list[str] = []

    async def __aenter__(self) -> AiohttpPageFetcher:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, headers={"User-Agent": self.user_agent}
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use `async with AiohttpPageFetcher()`"
        return self._session

    async def fetch_text(self, url: str) -> TextPage:
        self.fetched.append(url)
        try:
            async with self.session.get(url) as response:
                text = await response.text(errors="replace")
                return TextPage(
                    url=str(response.url),
                    status=response.status,
                    text=text,
                    content_type=response.headers.get("Content-Type", ""),
                )
        except TimeoutError as exc:
            raise FetchError("timeout", url, transient=True) from exc
        except aiohttp.ClientError as exc:
            raise FetchError("connection_failed", str(exc), transient=True) from exc

    async def allowed_by_robots(self, url: str) -> bool:
        if not self.respect_robots:
            return True
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            self._robots[origin] = await self._load_robots(origin)
        rules = self._robots[origin]
        if isinstance(rules, bool):
            return rules
        return bool(rules.can_fetch(url, self.user_agent))

    async def _load_robots(self, origin: str) -> Protego | bool:
        try:
            async with self.session.get(f"{origin}/robots.txt") as response:
                if 400 <= response.status < 500:
                    return True
                if response.status >= 500:
                    return False
                return Protego.parse(await response.text(errors="replace"))
        except (TimeoutError, aiohttp.ClientError):
            return False
