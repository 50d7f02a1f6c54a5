"""The gallery with 10,000 images: memory, and how smooth scrolling through all of them is.

    uv run python -m bench.gallery_memory                  # 10,000 images (cached in /tmp)
    uv run python -m bench.gallery_memory --images 20000

A dataset folder of generated JPEGs (640 x 480, like small web images) with its manifest, as
a local worker leaves it; the real gallery page (model, filter, list view, delegate, LRU cache,
thumbnail loader) on a qasync loop, offscreen. It lists every image, then scrolls from the top
to the bottom a screen at a time, waiting each time until the screen's thumbnails are decoded.
Figures: resident memory (VmRSS) before and after listing and its peak while scrolling, the
time to fill a screen, and the event loop's lag (how late a 10 ms sleep wakes) meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from celery_core.crawler.dataset.writer import MANIFEST_NAME, ManifestEntry

SIZE = (640, 480)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def build_dataset(root: Path, count: int) -> Path:
    """`count` distinct JPEGs in 4 categories x 5 keywords, and their manifest (cached)."""
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / MANIFEST_NAME
    if manifest.exists() and len(manifest.read_text().splitlines()) == count:
        return root
    lines = []
    for n in range(count):
        category, keyword = f"category {n % 4}", f"keyword {n % 20}"
        folder = root / category / keyword
        folder.mkdir(parents=True, exist_ok=True)
        rnd = random.Random(n)
        image = Image.new("RGB", SIZE, tuple(rnd.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rnd.randrange(SIZE[0]), rnd.randrange(SIZE[1])
            draw.rectangle([x, y, x + 200, y + 150], fill=tuple(rnd.randrange(256) for _ in "rgb"))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=80)
        data = out.getvalue()
        name = f"{n:05d}.jpg"
        (folder / name).write_bytes(data)
        entry = ManifestEntry(
            path=f"{category}/{keyword}/{name}", url=f"https://example.org/{n}.jpg",
            source_page=None, source="urls", sha256=f"{n:064x}", phash=f"{n:016x}",
            width=SIZE[0], height=SIZE[1], format="JPEG", bytes=len(data), category=category,
            keyword=keyword, fetched_at="2025-01-01T00:00:00Z",
        )  # fmt: skip
        lines.append(entry.to_line())
    manifest.write_text("".join(lines))
    return root


async def measure(root: Path, count: int) -> dict[str, Any]:
    from celery_core.crawler.types import Counts
    from celery_core.jobs.state import JobProgress
    from pixcrawler_gui.models.jobs_model import JobsModel
    from pixcrawler_gui.services.events import EventHub
    from pixcrawler_gui.services.jobs.job_events import JobInfo, JobListed
    from pixcrawler_gui.services.jobs.thumbnail_loader import ThumbnailLoader
    from pixcrawler_gui.views.gallery.gallery import GalleryPage

    hub = EventHub()
    jobs = JobsModel(hub)
    pool = ThreadPoolExecutor(4, thread_name_prefix="io")
    page = GalleryPage(hub, ThumbnailLoader(pool, lambda: None), jobs)
    page.resize(1100, 700)
    page.show()
    await asyncio.sleep(0.2)
    before = rss_mb()
    info = JobInfo("bench", "bench", str(root), time.time())
    progress = JobProgress("bench", "bench", "finished", (), count, 0.0, None, str(root),
                           counts=Counts(kept=count))  # fmt: skip
    hub.publish(JobListed(info, progress))
    started = time.monotonic()
    page.show_job("bench")
    model = page.model
    while model.rowCount() < count:
        await asyncio.sleep(0.01)
    listed_s = time.monotonic() - started
    while model.fetching:
        await asyncio.sleep(0.01)
    after_listing = rss_mb()

    lags: list[float] = []
    peak = [after_listing]
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            start = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append((time.monotonic() - start - 0.01) * 1000)
            peak[0] = max(peak[0], rss_mb())

    probe_task = asyncio.ensure_future(probe())
    bar = page.view.verticalScrollBar()
    fills: list[float] = []
    scroll_started = time.monotonic()
    while True:
        start = time.monotonic()
        await asyncio.sleep(0)  # the view lays out and paints the new screen
        while model.fetching:
            await asyncio.sleep(0.002)
        fills.append((time.monotonic() - start) * 1000)
        if bar.value() >= bar.maximum():
            break
        bar.setValue(bar.value() + bar.pageStep())
    scroll_s = time.monotonic() - scroll_started
    done.set()
    await probe_task
    figures = {
        "images": count,
        "rss_mb": {"window_shown": round(before), "listed": round(after_listing),
                   "peak_while_scrolling": round(peak[0]), "end": round(rss_mb())},
        "listing_s": round(listed_s, 2),
        "screens": len(fills),
        "thumbnails_decoded": model.fetched,
        "cached_pixmaps": len(model.cache),
        "cache_mb": round(model.cache.used / 1024 / 1024, 1),
        "scroll_s": round(scroll_s, 1),
        "screen_fill_ms": _summary(fills),
        "loop_lag_ms": _summary(lags),
    }  # fmt: skip
    await page.stop()
    pool.shutdown()
    page.close()
    page.deleteLater()
    return figures


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))], 1)

    return {"p50": round(statistics.median(ordered), 1), "p95": at(95), "p99": at(99),
            "max": round(ordered[-1], 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/pixcrawler-gallery-bench"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    root = build_dataset(args.dir / str(args.images), args.images)
    import qasync
    from PySide6.QtWidgets import QApplication

    from pixcrawler_gui.desktop.main_thread_gc import MainThreadGC
    from pixcrawler_gui.desktop.qt_compat import guard_singleton_refcounts

    app = QApplication([])
    guard_singleton_refcounts()
    MainThreadGC(parent=app).start()  # as the app does
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        figures = loop.run_until_complete(measure(root, args.images))
    finally:
        app.processEvents()
        loop.close()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
