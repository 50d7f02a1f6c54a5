"""A real HTTP server on 127.0.0.1 for crawler tests: generated images and every trap.

    with ImageServer() as server:
        server.add_bytes("/a.jpg", jpeg_bytes, "image/jpeg")
        server.add_redirect("/r", "/a.jpg")
        server.add_sequence("/flaky.jpg", [Reply(503), Reply(200, jpeg_bytes)])
        url = server.url("/a.jpg")

The server runs its own asyncio loop in a background thread, so it does not share the test's
loop (or the engine's). Routes can be added while it runs. `hits(path)` counts requests and
`requests` keeps their headers and arrival times. Pictures to serve come from
`celery_core.diagnostics.pictures`: `make_picture(seed)` draws a distinct one, `encode` gives
its bytes, `png_bomb` a trap.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

__all__ = ["ImageServer", "Reply"]


@dataclass
class Reply:
    """One canned response."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SeenRequest:
    path: str
    query: str
    headers: dict[str, str]
    at: float = field(default_factory=time.time)  # when it arrived (wall clock, as workers log)


class ImageServer:
    """aiohttp server on `host`:free port in a background thread."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._routes: dict[str, Handler] = {}
        self._static: list[tuple[str, Path]] = []
        self._lock = threading.Lock()
        self._hits: Counter[str] = Counter()
        self.requests: list[SeenRequest] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> ImageServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = int(sock.getsockname()[1])
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"image server did not start: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop, stopped = self._loop, self._stopped
        assert stopped is not None
        loop.call_soon_threadsafe(stopped.set)
        self._thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> ImageServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(sock))
        except BaseException as exc:  # reported to start() or lost at shutdown
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _serve(self, sock: socket.socket) -> None:
        self._stopped = asyncio.Event()
        app = web.Application(client_max_size=1024**2)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await runner.cleanup()

    # --- addresses and bookkeeping --------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def hits(self, path: str) -> int:
        with self._lock:
            return self._hits[path]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        with self._lock:
            self._hits[path] += 1
            self.requests.append(SeenRequest(path, request.query_string, dict(request.headers)))
            handler = self._routes.get(path)
        if handler is not None:
            return await handler(request)
        for prefix, directory in self._static:
            if path.startswith(prefix):
                return _serve_file(directory, path[len(prefix) :])
        return web.Response(status=404, text="not found")

    # --- routes ---------------------------------------------------------------------------

    def add_route(self, path: str, handler: Handler) -> str:
        """Serve `path` with an aiohttp handler (runs on the server's loop). Returns its URL."""
        with self._lock:
            self._routes[path] = handler
        return self.url(path)

    def add_reply(self, path: str, reply: Reply) -> str:
        async def handler(request: web.Request) -> web.StreamResponse:
            return _response(reply)

        return self.add_route(path, handler)

    def add_bytes(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/octet-stream",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> str:
        return self.add_reply(path, Reply(status, body, content_type, dict(headers or {})))

    def add_text(self, path: str, text: str, content_type: str = "text/html") -> str:
        return self.add_bytes(path, text.encode(), f"{content_type}; charset=utf-8")

    def add_redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.add_reply(path, Reply(status, headers={"Location": location}))

    def add_sequence(self, path: str, replies: Iterable[Reply]) -> str:
        """Answer successive requests with successive replies; the last one repeats."""
        queue = list(replies)

        async def handler(request: web.Request) -> web.StreamResponse:
            with self._lock:
                reply = queue.pop(0) if len(queue) > 1 else queue[0]
            return _response(reply)

        return self.add_route(path, handler)

    def add_slow(self, path: str, body: bytes, chunk: int = 64, delay: float = 0.05) -> str:
        """Send `body` in small chunks with a pause between them (a slow server)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
            response.content_length = len(body)
            await response.prepare(request)
            try:
                for start in range(0, len(body), chunk):
                    await response.write(body[start : start + chunk])
                    await asyncio.sleep(delay)
            except (ConnectionError, asyncio.CancelledError):
                pass
            return response

        return self.add_route(path, handler)

    def add_endless(self, path: str, prefix: bytes = b"\xff\xd8\xff\xe0") -> str:
        """Stream `prefix` then zeros forever, without a Content-Length."""

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            block = bytes(64 * 1024)
            try:
                await response.write(prefix)
                while True:
                    await response.write(block)
            except (ConnectionError, asyncio.CancelledError):
                pass
            return response

        return self.add_route(path, handler)

    def add_static_dir(self, prefix: str, directory: Path) -> str:
        """Serve files under `directory` at `prefix` (content type from the suffix)."""
        with self._lock:
            self._static.append((prefix, directory))
        return self.url(prefix)


_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".gif": "image/gif"}


def _serve_file(directory: Path, name: str) -> web.StreamResponse:
    path = (directory / name).resolve()
    if directory.resolve() not in path.parents or not path.is_file():
        return web.Response(status=404, text="not found")
    content_type = _TYPES.get(path.suffix.lower(), "application/octet-stream")
    return web.Response(body=path.read_bytes(), content_type=content_type)


def _response(reply: Reply) -> web.Response:
    headers = dict(reply.headers)
    headers.setdefault("Content-Type", reply.content_type)
    return web.Response(status=reply.status, body=reply.body, headers=headers)
