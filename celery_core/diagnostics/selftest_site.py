"""A tiny image website on 127.0.0.1 for `pixcrawler self-test`: generated pictures and traps.

The site serves a few distinct pictures in several formats, a resized copy of one of them (a
duplicate the perceptual hash must catch) and a web page served as `.jpg` (an invalid file the
image check must refuse). `expected` says what a correct crawl of `image_urls()` keeps.

It runs `http.server` in a daemon thread and writes nothing to stdout or stderr: the self-test
prints its own PASS/FAIL lines and keeps stderr empty when all is well.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from celery_core.diagnostics.pictures import PICTURE_SIZE, encode, make_picture

__all__ = ["SelfTestSite", "SiteExpectation"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# (path, format) of the distinct pictures; the formats a dataset usually holds.
DISTINCT = (("/img/0.jpg", "JPEG"), ("/img/1.png", "PNG"), ("/img/2.webp", "WEBP"),
            ("/img/3.jpg", "JPEG"))  # fmt: skip
DUPLICATE = "/img/copy-of-0.jpg"
INVALID = "/img/not-a-picture.jpg"
_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class SiteExpectation:
    """What a correct crawl of the whole site ends with."""

    kept: int
    duplicates: int
    invalid: int


def _build_files() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for seed, (path, fmt) in enumerate(DISTINCT):
        files[path] = (encode(make_picture(seed), fmt), _CONTENT_TYPES[fmt])
    width, height = PICTURE_SIZE
    # Smaller and re-encoded: other bytes, same picture; only the perceptual hash can tell.
    resized = make_picture(0).resize((width * 3 // 4, height * 3 // 4))
    files[DUPLICATE] = (encode(resized, "JPEG", quality=80), "image/jpeg")
    page = b"<!doctype html><title>Not a picture</title><p>This is a web page.</p>"
    files[INVALID] = (page, "image/jpeg")
    files["/robots.txt"] = (b"User-agent: *\nAllow: /\n", "text/plain")
    return files


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    files: dict[str, tuple[bytes, str]]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback on stderr, e.g. when a client drops the connection.
        log.debug("self-test site: error while serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, with_body: bool) -> None:
        found = self.server.files.get(self.path.split("?", 1)[0])
        body, content_type = found if found else (b"not found", "text/plain")
        self.send_response(HTTPStatus.OK if found else HTTPStatus.NOT_FOUND)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("self-test site: " + format, *args)


class SelfTestSite:
    """The site on 127.0.0.1:<free port>; a context manager, or `start()` / `stop()`."""

    expected = SiteExpectation(kept=len(DISTINCT), duplicates=1, invalid=1)

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._files = _build_files()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the self-test site is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def image_urls(self) -> list[str]:
        """Every picture URL, the duplicate after its original and the invalid file last."""
        return [self.url(path) for path, _fmt in DISTINCT] + [
            self.url(DUPLICATE),
            self.url(INVALID),
        ]

    def start(self) -> SelfTestSite:
        server = _Server((HOST, 0), _Handler)
        server.files = self._files
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> SelfTestSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
