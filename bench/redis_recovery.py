"""From the app's own Redis dying (`kill -9` mid-crawl) to jobs running again, and Quit with
Redis gone.

    uv run python -m bench.redis_recovery              # 5 runs
    uv run python -m bench.redis_recovery --runs 10 --json /tmp/recovery.json

Each run, in a fresh temporary folder: the app's real services (`AppServices` and
`JobsRuntime`, with the jobs table model) on a qasync loop, offscreen; nothing answers at the
configured local URL, so the app starts its own Redis; a real `pixcrawler worker` started by
the app's supervisor (prefork, one process); a local image site serving slow pictures (about
0.2 s each, one download at a time). Once the job has kept a few pictures, the pid in the
server's state file is killed with SIGKILL, and the clock runs until:

- server: it answers again (the keeper's RUNNING event, same port and password);
- view: the watcher follows Redis again and the job's row says Running, not Paused;
- task: the worker runs the job's task again (its STARTED or PROGRESS record after the kill);
- picture: the job's folder holds one more picture than at the kill.

Then a second job is started, the keeper is stopped (so the server stays dead), the server is
killed, and Quit is timed as the app does it: the jobs side, then the services (workers
stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
IMAGES = 60


async def _until(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout} s")
        await asyncio.sleep(0.01)
    return value


async def one_run(tmp: Path, site: Any) -> dict[str, float]:
    from celery_core.jobs.spec import parse_job
    from celery_core.redis_server.state import read_state
    from celery_core.settings.celery_settings import CelerySettings
    from pixcrawler_gui.models.jobs_model import JobsModel
    from pixcrawler_gui.services.events import EmbeddedServerStatus, OwnServerState, WorkerState
    from pixcrawler_gui.services.jobs.job_events import JobUpdated, WatcherLink
    from pixcrawler_gui.services.jobs.jobs_runtime import JobsRuntime
    from pixcrawler_gui.services.runtime import AppServices, RuntimeOptions
    from tests.support.redis_proc import free_port

    dead = free_port()
    settings = CelerySettings.load().updated(
        broker_url=f"redis://127.0.0.1:{dead}/0", result_backend=f"redis://127.0.0.1:{dead}/1"
    )
    env = {
        **os.environ,
        "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PIXCRAWLER_CRAWLER_MAX_PER_HOST": "1",
    }
    own = tmp / "own-redis"
    options = RuntimeOptions(
        embedded_dir=own,
        worker_cwd=str(REPO),
        worker_env=env,
        autostart_workers=False,
        roster_path=tmp / "workers.json",
        availability_delay=0.2,
    )
    services = AppServices(settings, options)
    jobs = JobsRuntime(services, history_path=tmp / "history.sqlite", poll_interval=1.0)
    model = JobsModel(services.hub)
    marks: dict[str, float] = {}
    killed_at = 0.0
    at_kill = 0

    def on_status(status: EmbeddedServerStatus) -> None:
        if killed_at and status.state == OwnServerState.RUNNING and "server" not in marks:
            marks["server"] = time.monotonic() - killed_at

    def on_link(link: WatcherLink) -> None:
        if killed_at and link.connected and "link" not in marks:
            marks["link"] = time.monotonic() - killed_at

    def on_update(event: JobUpdated) -> None:
        if not killed_at or "link" not in marks:
            return
        now = time.monotonic() - killed_at
        states = {k.state for k in event.progress.keywords}
        if (
            "task" not in marks
            and states & {"STARTED", "PROGRESS"}
            and any(k.state == "STARTED" or k.in_folder > at_kill for k in event.progress.keywords)
        ):
            marks["task"] = now
        if "picture" not in marks and event.progress.in_folder > at_kill:
            marks["picture"] = now

    services.hub.subscribe(EmbeddedServerStatus, on_status)
    services.hub.subscribe(WatcherLink, on_link)
    services.hub.subscribe(JobUpdated, on_update)
    await asyncio.gather(services.start(), jobs.start())
    worker_id = services.supervisor.add_worker(services.supervisor.suggest_spec("prefork", 1))

    def ready() -> bool:
        snap = next(s for s in services.supervisor.workers() if s.worker_id == worker_id)
        return snap.state == WorkerState.READY

    await _until(ready, 90, "worker ready")

    async def submit(name: str) -> str:
        urls = [site.url(f"/slow/{n}.jpg") for n in range(IMAGES)]
        job = {
            "dataset_name": name,
            "categories": {"cats": [{"name": "street cats", "urls": urls}]},
            "options": {"max_images": IMAGES, "output_dir": str(tmp / name), "min_width": 50,
                        "min_height": 50},
        }  # fmt: skip
        job_id = await jobs.service.submit(parse_job(job).spec)
        assert job_id is not None
        return job_id

    job_id = await submit("first")
    row = await _until(lambda: model.job(job_id), 30, "the job listed")
    await _until(lambda: row.progress.in_folder >= 5, 90, "five pictures")
    state = read_state(own)
    assert state is not None
    at_kill = row.progress.in_folder
    os.kill(state["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    await _until(lambda: model.paused(row), 10, "the job paused")
    marks["paused"] = time.monotonic() - killed_at
    await _until(lambda: not model.paused(row), 30, "the job running again")
    marks["view"] = time.monotonic() - killed_at
    await _until(lambda: "picture" in marks, 60, "a new picture")
    await _until(lambda: row.ended, 120, "the job's end")
    files = len(list((tmp / "first").rglob("*.jpg")))
    manifest = len((tmp / "first" / "manifest.jsonl").read_text().splitlines())
    if not (files == manifest == row.progress.in_folder == IMAGES):
        raise AssertionError(f"{files} files, {manifest} manifest lines, {row.progress}")

    # Quit with Redis gone, mid-job.
    second = await submit("second")
    row2 = await _until(lambda: model.job(second), 30, "the second job listed")
    await _until(lambda: row2.progress.in_folder >= 2, 90, "two pictures")
    keeper = services._keeper
    assert keeper is not None
    await keeper.stop()
    state = read_state(own)
    assert state is not None
    os.kill(state["pid"], signal.SIGKILL)
    await _until(lambda: model.paused(row2), 10, "the second job paused")
    await _until(services.redis_gone, 10, "the broker seen down")
    started = time.monotonic()
    await services.supervisor.jobs_running()
    await jobs.shutdown()
    await services.shutdown(keep_workers=False)
    marks["quit"] = time.monotonic() - started
    model.deleteLater()
    return {k: round(v, 2) for k, v in marks.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import qasync
    from PySide6.QtWidgets import QApplication

    from celery_core.diagnostics.pictures import encode, make_picture
    from pixcrawler_gui.desktop.main_thread_gc import MainThreadGC
    from pixcrawler_gui.desktop.qt_compat import guard_singleton_refcounts
    from tests.support.image_server import ImageServer

    app = QApplication([])
    guard_singleton_refcounts()
    MainThreadGC(parent=app).start()
    runs: list[dict[str, float]] = []
    with ImageServer() as site:
        for n in range(IMAGES):
            body = encode(make_picture(700 + n))
            site.add_slow(f"/slow/{n}.jpg", body, chunk=len(body) // 10 + 1, delay=0.02)
        for number in range(args.runs):
            with tempfile.TemporaryDirectory() as folder:
                tmp = Path(folder)
                os.environ["PIXCRAWLER_CONFIG_DIR"] = str(tmp / "config")
                os.environ["PIXCRAWLER_DATA_DIR"] = str(tmp / "data")
                loop = qasync.QEventLoop(app)
                asyncio.set_event_loop(loop)
                try:
                    figures = loop.run_until_complete(one_run(tmp, site))
                finally:
                    app.processEvents()
                    loop.close()
                    asyncio.set_event_loop(None)
                print(f"run {number + 1}: {figures}", file=sys.stderr, flush=True)
                runs.append(figures)
    keys = ["server", "paused", "link", "view", "task", "picture", "quit"]
    summary = {
        key: {
            "median": round(statistics.median(r[key] for r in runs), 2),
            "max": max(r[key] for r in runs),
        }
        for key in keys
        if all(key in r for r in runs)
    }
    result = {"runs": runs, "summary": summary}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
