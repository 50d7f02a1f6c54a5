"""A small disk of its own (a tmpfs) and a site of paced, distinct, photo-sized pictures, for
the full-disk and read-only tests. Mounting needs root (CI runs as root); without it, or when
the mount is refused (a container without CAP_SYS_ADMIN), the tests are skipped, saying why."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from celery import Celery

from celery_core.crawler.images.check import ImageRules, check_image
from celery_core.diagnostics.pictures import encode, make_picture
from celery_core.jobs.control import read_job
from celery_core.jobs.state import JobProgress
from celery_core.worker.task_base import envelope_from_meta
from tests.support.image_server import ImageServer, SeenRequest
from tests.support.waiting import wait_until
from tests.support.worker_proc import WorkerProcess

KEYWORDS = 4
PER_KEYWORD = 100
PAD = 150_000  # bytes after the JPEG's end: photo-sized files for the price of small pictures
DELAY = 0.05  # seconds before each picture is served: the pace of a real site, roughly
SLOW_KEYWORD = 1  # runs beside keyword 0, whose pictures fill the disk while its own crawl in
SLOW_DELAY = 3.0  # (the second task to start: a worker with two processes takes 0 and 1 first)
ROOT_FILES = {"manifest.jsonl", "report.json", "report.md"}


class Tmpfs:
    """A tmpfs mounted at `path`, resized or made read-only in place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mounted = False

    def mount(self, size_mb: int) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        _mount("-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(self.path))
        self.mounted = True
        return self.path

    def remount(self, *options: str) -> None:
        _mount("-o", ",".join(("remount", *options)), str(self.path))

    def unmount(self) -> None:
        if not self.mounted:
            return
        done = subprocess.run(["umount", str(self.path)], capture_output=True, check=False)
        if done.returncode != 0:  # still busy: detach it now, the kernel frees it when unused
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
        self.mounted = False


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"mount {' '.join(args)}: {done.stderr.strip() or done.returncode}")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Tmpfs]:
    """A mount point for a small disk; always unmounted afterwards."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")
    tmpfs = Tmpfs(tmp_path / "small-disk")
    try:
        tmpfs.mount(1)
    except OSError as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    tmpfs.unmount()
    try:
        yield tmpfs
    finally:
        tmpfs.unmount()


@cache
def distinct_pictures(count: int, first_seed: int = 600, min_bits: int = 10) -> tuple[bytes, ...]:
    """`count` JPEGs whose perceptual hashes are at least `min_bits` apart (some seed pairs
    are near-duplicates for the crawler), each padded to a photo's size."""
    rules = ImageRules()
    chosen: list[bytes] = []
    hashes: list[int] = []
    seed = first_seed
    while len(chosen) < count:
        data = encode(make_picture(seed))
        seed += 1
        phash = check_image(data, rules).phash
        if all(bin(phash ^ other).count("1") >= min_bits for other in hashes):
            hashes.append(phash)
            chosen.append(data + bytes(PAD))
    return tuple(chosen)


def picture_path(keyword: int, n: int) -> str:
    return f"/p/{keyword}/{n}.jpg"


@dataclass
class PacedSite:
    """KEYWORDS x PER_KEYWORD distinct pictures of about 150 KB, each after DELAY seconds;
    those of SLOW_KEYWORD after `slow_delay` (SLOW_DELAY until a test speeds them up)."""

    server: ImageServer
    slow_delay: float = SLOW_DELAY

    def requests_for(self, keyword: int) -> list[SeenRequest]:
        return [r for r in self.server.requests if r.path.startswith(f"/p/{keyword}/")]


@pytest.fixture
def paced_site() -> Iterator[PacedSite]:
    pictures = distinct_pictures(KEYWORDS * PER_KEYWORD)
    with ImageServer() as server:
        site = PacedSite(server)
        for k in range(KEYWORDS):
            for n in range(PER_KEYWORD):
                server.add_route(picture_path(k, n), _paced(site, k, pictures[k * PER_KEYWORD + n]))
        yield site


def _paced(site: PacedSite, keyword: int, body: bytes) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        delay = site.slow_delay if keyword == SLOW_KEYWORD else DELAY
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.05))  # the pace of a slow site, not synchronisation
            if request.transport is None or request.transport.is_closing():
                break  # the crawler gave up on it: end now, not when the server stops
        return web.Response(body=body, content_type="image/jpeg")

    return handler


def job_for(site: ImageServer, out: Path) -> dict[str, Any]:
    categories = {
        f"set{k}": [
            {"name": "list", "urls": [site.url(picture_path(k, n)) for n in range(PER_KEYWORD)]}
        ]
        for k in range(KEYWORDS)
    }
    return {
        "dataset_name": "full-disk",
        "categories": categories,
        "options": {"max_images": PER_KEYWORD, "output_dir": str(out), "label_formats": ["csv"]},
    }


@pytest.fixture
def disk_env(celery_env: dict[str, str]) -> dict[str, str]:
    return {
        **celery_env,
        # The image server is on loopback: allow exactly that, nothing else private.
        "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PIXCRAWLER_CRAWLER_TOTAL_TIMEOUT": "5",
        "PIXCRAWLER_CRAWLER_RETRY_BACKOFF": "0.05",
    }


@pytest.fixture
def disk_worker(disk_env: dict[str, str]) -> Iterator[WorkerProcess]:
    """Two pool processes: two of the job's four tasks run at once, two wait their turn."""
    with WorkerProcess(disk_env, concurrency=2) as proc:
        proc.wait_ready()
        yield proc


@pytest.fixture
def disk_app(disk_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    from celery_core.settings.celery_settings import CelerySettings
    from celery_core.worker.app import create_app

    for key, value in disk_env.items():
        monkeypatch.setenv(key, value)
    app = create_app(CelerySettings.load(), follow_results=False)
    yield app
    app.close()


def finished(app: Celery, job_id: str, timeout: float = 120) -> JobProgress:
    progress: JobProgress = wait_until(
        lambda: (p := read_job(app, job_id)) is not None and p.finished and p,
        timeout=timeout,
        interval=0.2,
        what=f"job {job_id} to finish",
    )
    return progress


def task_end_times(app: Celery, progress: JobProgress) -> list[float]:
    """When each keyword task ended, as its worker recorded it (wall clock)."""
    ends = []
    for k in progress.keywords:
        meta = json.loads(app.backend.client.get(f"celery-task-meta-{k.task_id}"))
        envelope = envelope_from_meta(meta)
        assert envelope is not None, meta
        ends.append(datetime.fromisoformat(envelope["finished_at"]).timestamp())
    return ends


def consistent_dataset(out: Path) -> list[dict[str, Any]]:
    """The manifest's entries, after checking that the folder agrees with it: every line
    whole, every file complete, nothing twice, no file without its line, no temp file."""
    raw = (out / "manifest.jsonl").read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), "the manifest ends in a torn line"
    entries = [json.loads(line) for line in raw.splitlines()]
    paths = [e["path"] for e in entries]
    assert len(set(paths)) == len(paths)
    assert len({e["sha256"] for e in entries}) == len(entries)
    assert len({e["url"] for e in entries}) == len(entries)
    for entry in entries:
        data = (out / entry["path"]).read_bytes()
        assert len(data) == entry["bytes"], entry["path"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
    files = {
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.parent != out and ".pixcrawler" not in p.relative_to(out).parts
    }
    assert files == set(paths), files ^ set(paths)  # temp files, or images without a line
    at_root = {p.name for p in out.iterdir() if p.is_file()}
    assert at_root <= ROOT_FILES | {"labels.csv"}, at_root  # no report's temp file either
    return entries
