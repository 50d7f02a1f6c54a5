"""How fast a worker's progress write shows in the Jobs view, and how much a busy crawl
delays the GUI's event loop.

    uv run python -m bench.watcher_latency                       # the default: a busy crawl
    uv run python -m bench.watcher_latency --active 64 --seconds 20   # a stress run

A real redis-server; the real watcher, jobs model, Jobs view (progress-bar delegate) and
gallery on a qasync loop, offscreen; 10 jobs of 100 tasks each (1,000 tasks followed). Another
process plays the workers: `--active` tasks at a time each write a PROGRESS record 4 times a
second, set and published the way Celery's Redis backend does, and `--thumbs` thumbnails a
second go to the job the gallery shows. Latency: from the write (a monotonic clock shared by
both processes on Linux) to the first paint of the Jobs view after the model took the value.
Loop lag: how late a 10 ms asyncio sleep wakes up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from celery_core.jobs.redis_keys import ThumbnailRecord, save_job_record, thumb_key, thumbs_key
from celery_core.jobs.work_items import WorkItem

JOBS, TASKS_PER_JOB, REPORTS_PER_S = 10, 100, 4


def make_records(out: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for j in range(JOBS):
        tasks = [
            {"id": uuid.uuid4().hex,
             "item": WorkItem(f"cat{t % 5}", f"keyword {t}", "search", 100).to_dict()}
            for t in range(TASKS_PER_JOB)
        ]  # fmt: skip
        records.append({
            "job_id": uuid.uuid4().hex, "name": f"bench {j}", "output_dir": str(out / f"j{j}"),
            "options": {}, "spec": None, "tasks": tasks, "callback_id": uuid.uuid4().hex,
            "submitted_at": time.time() - j, "parent_job": None,
        })  # fmt: skip
    return records


def meta(task_id: str, kept: int) -> str:
    counts = {"found": kept + 3, "downloaded": kept + 1, "kept": kept, "duplicates": kept // 9,
              "invalid": 0, "failed": kept // 20}  # fmt: skip
    result = {"counts": counts, "target": 100, "elapsed_s": kept / 2, "rate": 2.0,
              "thumbnails": [], "sent": time.monotonic()}  # fmt: skip
    return json.dumps({"status": "PROGRESS", "result": result, "traceback": None,
                       "children": [], "date_done": None, "task_id": task_id})  # fmt: skip


# -- the workers' side (a separate process) ---------------------------------------------------


def write(url: str, plan: Path, active: int, thumbs: float, seconds: float, log: Path) -> None:
    records = json.loads(plan.read_text())
    client = redis.Redis.from_url(url)
    task_ids = [t["id"] for r in records for t in r["tasks"]]
    # The running tasks are spread over the jobs, as several workers would pick them.
    running = [task_ids[(i * 37) % len(task_ids)] for i in range(active)]
    kept = dict.fromkeys(running, 0)
    gallery_job = records[0]["job_id"]
    jpeg = _jpeg()
    sent: list[tuple[str, int, float]] = []
    interval = 1.0 / (active * REPORTS_PER_S)
    thumb_every = 1.0 / thumbs if thumbs else None
    start = next_write = next_thumb = time.monotonic()
    number = 0
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if thumb_every is not None and now >= next_thumb:
            number += 1
            path = f"cat0/kw/{number:04d}.jpg"
            key = thumb_key(gallery_job, number)
            record = ThumbnailRecord(gallery_job, number, key, path, "cat0", "kw", 128, 96)
            pipe = client.pipeline()
            pipe.set(record.key, jpeg)
            pipe.rpush(thumbs_key(gallery_job), record.to_json())
            pipe.publish(thumbs_key(gallery_job), record.to_json())
            pipe.execute()
            next_thumb += thumb_every
        if now >= next_write:
            task_id = running[len(sent) % len(running)]
            kept[task_id] += 1
            key = f"celery-task-meta-{task_id}"
            value = meta(task_id, kept[task_id])
            pipe = client.pipeline()  # what Celery's RedisBackend.set does
            pipe.set(key, value, ex=86400)
            pipe.publish(key, value)
            pipe.execute()
            sent.append((task_id, kept[task_id], json.loads(value)["result"]["sent"]))
            next_write += interval
        time.sleep(max(0.0, min(next_write, next_thumb if thumb_every else next_write)
                       - time.monotonic()))  # fmt: skip  # pacing of the simulated workers
    log.write_text(json.dumps(sent))


def _jpeg() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (128, 96), (40, 120, 200)).save(out, "JPEG")
    return out.getvalue()


# -- the GUI's side ---------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(url: str, args: argparse.Namespace, records: list[dict[str, Any]],
                  plan: Path, log: Path) -> dict[str, Any]:  # fmt: skip
    from PySide6.QtCore import QEvent, QObject

    from pixcrawler_gui.services.events import EventHub
    from pixcrawler_gui.services.jobs.job_events import JobListed, JobUpdated
    from pixcrawler_gui.services.jobs.thumbnail_loader import ThumbnailLoader
    from pixcrawler_gui.services.jobs.watcher import JobWatcher
    from pixcrawler_gui.views.gallery.gallery import GalleryPage
    from pixcrawler_gui.views.jobs.jobs_view import JobsView

    hub = EventHub()
    watcher = JobWatcher(hub)
    view = JobsView(hub, controls=None)  # type: ignore[arg-type]  # no buttons pressed here
    view.resize(1000, 600)
    view.show()
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(2)
    gallery = GalleryPage(hub, ThumbnailLoader(pool, lambda: watcher.client), view.model)
    gallery.resize(1000, 600)
    gallery.show()
    shown: list[tuple[str, int, float]] = []  # task, kept, when the model had it
    last: dict[str, dict[str, int]] = {}

    def probe(event: JobUpdated) -> None:
        now = time.monotonic()
        old = last.setdefault(event.progress.job_id, {})
        for k in event.progress.keywords:
            if old.get(k.task_id) != k.counts.kept:
                old[k.task_id] = k.counts.kept
                shown.append((k.task_id, k.counts.kept, now))

    paints: list[float] = []

    class Paints(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                paints.append(time.monotonic())
            return False

    painter = Paints()
    view.tree.viewport().installEventFilter(painter)
    listed = asyncio.Event()
    count = [0]

    def on_listed(event: JobListed) -> None:
        count[0] += 1
        if count[0] == JOBS:
            listed.set()

    hub.subscribe(JobListed, on_listed)
    watcher.start(url)
    for record in records:
        watcher.follow(record["job_id"], record)
    await asyncio.wait_for(listed.wait(), 30)
    gallery.show_job(records[0]["job_id"])
    hub.subscribe(JobUpdated, probe)  # after the model: it sees what the model has

    lags: list[float] = []
    done = asyncio.Event()

    async def lag_probe() -> None:
        while not done.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append((time.monotonic() - before - 0.01) * 1000)

    lag_task = asyncio.ensure_future(lag_probe())
    writer = subprocess.Popen([sys.executable, "-m", "bench.watcher_latency", "--write", url,
                               "--plan", str(plan), "--log", str(log), "--active",
                               str(args.active), "--thumbs", str(args.thumbs), "--seconds",
                               str(args.seconds)])  # fmt: skip
    while writer.poll() is None:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # let the last pushes arrive before counting
    done.set()
    await lag_task
    await watcher.stop()
    await gallery.stop()
    pool.shutdown()
    for widget in (view, gallery):  # gone before the application object is
        widget.close()
        widget.deleteLater()

    latencies = []
    firsts: dict[str, list[tuple[int, float]]] = {}
    for task_id, kept, when in shown:
        firsts.setdefault(task_id, []).append((kept, when))
    missing = 0
    for task_id, kept, sent_at in json.loads(log.read_text()):
        seen = next((w for k, w in firsts.get(task_id, []) if k >= kept), None)
        if seen is None:
            missing += 1
            continue
        paint = next((p for p in paints if p >= seen), None)
        latencies.append(((paint or seen) - sent_at) * 1000)
    return {
        "tracked_tasks": JOBS * TASKS_PER_JOB,
        "active_tasks": args.active,
        "writes": len(latencies) + missing,
        "writes_per_s": round((len(latencies) + missing) / args.seconds, 1),
        "thumbnails_per_s": args.thumbs,
        "gallery_rows": gallery.model.rowCount(),
        "missing": missing,
        "latency_ms": _summary(latencies),
        "loop_lag_ms": _summary(lags),
    }


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "p50": round(statistics.median(values), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--active", type=int, default=16, help="tasks writing at once")
    parser.add_argument("--thumbs", type=float, default=30.0, help="thumbnails per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--write", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        write(args.write, args.plan, args.active, args.thumbs, args.seconds, args.log)
        return 0
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtWidgets import QApplication

    from pixcrawler_gui.desktop.main_thread_gc import MainThreadGC
    from pixcrawler_gui.desktop.qt_compat import guard_singleton_refcounts
    from tests.support.redis_proc import RedisProcess

    app = QApplication([])
    guard_singleton_refcounts()
    with tempfile.TemporaryDirectory() as tmp, RedisProcess(Path(tmp) / "redis") as server:
        records = make_records(Path(tmp))
        client = server.client(1)
        for record in records:
            save_job_record(client, record["job_id"], record, 86400)
        plan = Path(tmp) / "plan.json"
        plan.write_text(json.dumps(records))
        MainThreadGC(parent=app).start()  # as the app does
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        try:
            figures = loop.run_until_complete(
                measure(server.url(1), args, records, plan, Path(tmp) / "sent.json")
            )
        finally:
            app.processEvents()
            loop.close()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
