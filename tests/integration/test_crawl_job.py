"""A whole job through a real worker: a hostile web's traps, dataset, report, resume, cancel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from celery_core.diagnostics.pictures import encode, make_picture, png_bomb
from celery_core.jobs.control import cancel_job, read_job, submit_job
from celery_core.jobs.spec import parse_job
from tests.support.image_server import ImageServer, Reply
from tests.support.waiting import wait_until
from tests.support.worker_proc import WorkerProcess

REPO = Path(__file__).resolve().parents[2]
DISTINCT = 8


@pytest.fixture
def site() -> Iterator[ImageServer]:
    with ImageServer() as server:
        for n in range(DISTINCT):
            fmt = ("JPEG", "PNG", "WEBP")[n % 3]
            server.add_bytes(f"/img/{n}.{fmt.lower()}", encode(make_picture(n), fmt), "image/jpeg")
        original = make_picture(0)
        server.add_bytes("/trap/exact-copy.jpg", encode(original, "JPEG"), "image/jpeg")
        smaller = original.resize((400, 300))
        server.add_bytes("/trap/near-copy.jpg", encode(smaller, "JPEG", quality=70), "image/jpeg")
        whole = encode(make_picture(100), "JPEG")
        server.add_bytes("/trap/truncated.jpg", whole[: len(whole) // 2], "image/jpeg")
        server.add_text("/trap/page.jpg", "<html><body>not an image</body></html>")
        server.add_bytes("/trap/bomb.png", png_bomb(), "image/png")
        server.add_bytes("/trap/tiny.jpg", encode(make_picture(101, (20, 20))), "image/jpeg")
        server.add_sequence(
            "/trap/flaky.jpg",
            [Reply(503), Reply(200, encode(make_picture(102)), "image/jpeg")],
        )
        server.add_redirect("/trap/loop-a.jpg", "/trap/loop-b.jpg")
        server.add_redirect("/trap/loop-b.jpg", "/trap/loop-a.jpg")
        server.add_redirect("/trap/to-private.jpg", "http://10.255.255.1/secret.jpg")
        server.add_endless("/trap/endless.jpg")
        for n in range(3):  # the same bytes under other names, crawled by another category
            server.add_bytes(f"/copies/{n}.bin", encode(make_picture(n), "PNG"), "image/png")
        yield server


def trap_urls(server: ImageServer) -> list[str]:
    names = ["exact-copy.jpg", "near-copy.jpg", "truncated.jpg", "page.jpg", "bomb.png",
             "tiny.jpg", "flaky.jpg", "loop-a.jpg", "to-private.jpg", "endless.jpg",
             "missing.jpg"]  # fmt: skip
    return [
        server.url(f"/trap/{n}") for n in names
    ]  # non-http schemes never get this far: the job file refuses them


@pytest.fixture
def crawl_env(celery_env: dict[str, str]) -> dict[str, str]:
    return {
        **celery_env,
        # The image server is on loopback: allow exactly that, nothing else private.
        "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS": "127.0.0.0/8",
        "PIXCRAWLER_CRAWLER_MAX_IMAGE_BYTES": str(2 * 1024 * 1024),
        "PIXCRAWLER_CRAWLER_TOTAL_TIMEOUT": "5",
        "PIXCRAWLER_CRAWLER_READ_TIMEOUT": "3",
        "PIXCRAWLER_CRAWLER_RETRY_BACKOFF": "0.05",
    }


@pytest.fixture
def crawl_worker(
    crawl_env: dict[str, str], request: pytest.FixtureRequest
) -> Iterator[WorkerProcess]:
    concurrency = getattr(request, "param", 2)
    with WorkerProcess(crawl_env, concurrency=concurrency) as proc:
        proc.wait_ready()
        yield proc


@pytest.fixture
def crawl_app(crawl_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    from celery_core.settings.celery_settings import CelerySettings
    from celery_core.worker.app import create_app

    for key, value in crawl_env.items():
        monkeypatch.setenv(key, value)
    app = create_app(CelerySettings.load(), follow_results=False)
    yield app
    app.close()


def job_for(server: ImageServer, out: Path, extra: list[str] | None = None) -> dict:
    urls = [server.url(f"/img/{n}.{('jpeg', 'png', 'webp')[n % 3]}") for n in range(DISTINCT)]
    return {
        "dataset_name": "traps",
        "categories": {
            "set": [{"name": "list", "urls": urls + trap_urls(server) + (extra or [])}],
            # Copies of three pictures under other names: duplicates across categories and
            # tasks, whichever task gets to them first.
            "more": [{"name": "again", "urls": [server.url(f"/copies/{n}.bin") for n in range(3)]}],
        },
        "options": {"max_images": 50, "output_dir": str(out), "min_width": 50,
                    "min_height": 50, "label_formats": ["txt", "json", "csv", "yaml"]},
    }  # fmt: skip


def finished(app: Celery, job_id: str, timeout: float = 120):
    return wait_until(
        lambda: (p := read_job(app, job_id)) is not None and p.finished and p,
        timeout=timeout,
        interval=0.2,
        what=f"job {job_id} to finish",
    )


# One process runs the two categories one after the other, two run them side by side: the
# counts must not depend on which.
@pytest.mark.parametrize("crawl_worker", [1, 2], indirect=True, ids=["serial", "parallel"])
def test_every_trap_is_handled_through_a_real_worker(
    site: ImageServer, crawl_app: Celery, crawl_worker: WorkerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "dataset"
    spec = parse_job(job_for(site, out)).spec
    handle = submit_job(crawl_app, spec)
    progress = finished(crawl_app, handle.job_id)
    assert progress.state == "finished", progress
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    urls = {entry["url"] for entry in manifest}
    # The distinct pictures and the one that succeeded after a 503 are kept, nothing else.
    assert len(manifest) == DISTINCT + 1, urls
    assert site.url("/trap/flaky.jpg") in urls
    assert site.hits("/trap/flaky.jpg") == 2
    for entry in manifest:
        path = out / entry["path"]
        assert path.is_file() and path.stat().st_size == entry["bytes"]
        assert path.suffix == {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}[entry["format"]]
        for key in ("url", "source", "sha256", "phash", "width", "height", "category",
                    "keyword", "fetched_at"):  # fmt: skip
            assert entry[key] not in (None, ""), key
    report = json.loads((out / "report.json").read_text())
    text = json.dumps(report)
    for reason in ("not_an_image", "truncated", "too_many_pixels", "too_small"):
        assert reason in text, reason
    for reason in ("http_404", "redirect", "private", "too_large"):
        assert reason in text, reason
    # Picture 0 came four times (original, exact copy, near copy, renamed copy), 1 and 2 twice.
    assert progress.counts.duplicates == 3 + 1 + 1
    assert (out / "report.md").is_file()
    for fmt in ("txt", "json", "csv", "yaml"):
        assert (out / f"labels.{fmt}").is_file(), fmt
    image_dirs = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    leftovers = [
        p for d in image_dirs for p in d.rglob("*") if p.is_file() and p.name.startswith(".")
    ]
    assert leftovers == []  # no temp or lock files among the images
    # Thumbnails for a GUI on another machine are in Redis.
    client = crawl_app.backend.client
    assert client.llen(f"pixcrawler:thumbs:{handle.job_id}") == DISTINCT + 1
    first = json.loads(client.lindex(f"pixcrawler:thumbs:{handle.job_id}", 0))
    jpeg = client.get(first["key"])
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) < 10_000


def test_running_the_same_job_again_keeps_nothing_twice(
    site: ImageServer, crawl_app: Celery, crawl_worker: WorkerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "dataset"
    spec = parse_job(job_for(site, out)).spec
    first = finished(crawl_app, submit_job(crawl_app, spec).job_id)
    assert first.counts.kept == DISTINCT + 1
    before = (out / "manifest.jsonl").read_text()
    second = finished(crawl_app, submit_job(crawl_app, spec).job_id)
    assert second.state == "finished"
    assert second.counts.kept == 0
    # What the first run kept counts toward the target: the re-run says so.
    assert second.already_had == first.counts.kept and second.in_folder == first.counts.kept
    assert (out / "manifest.jsonl").read_text() == before
    files = [
        p
        for p in out.rglob("*")
        if p.is_file() and p.parent != out and ".pixcrawler" not in p.parts
    ]
    assert len(files) == DISTINCT + 1


def test_cancel_stops_the_job_and_keeps_what_was_saved(
    site: ImageServer, crawl_app: Celery, crawl_worker: WorkerProcess, tmp_path: Path
) -> None:
    slow = [site.add_slow(f"/slow/{n}.jpg", encode(make_picture(200 + n)), chunk=2048, delay=0.05)
            for n in range(40)]  # fmt: skip
    out = tmp_path / "dataset"
    job = job_for(site, out)
    job["categories"] = {"slow": [{"name": "list", "urls": slow}]}
    handle = submit_job(crawl_app, parse_job(job).spec)
    wait_until(
        lambda: (p := read_job(crawl_app, handle.job_id)) is not None and p.counts.kept >= 1,
        timeout=60,
        what="the first image kept",
    )
    cancel_job(crawl_app, handle.job_id)
    progress = finished(crawl_app, handle.job_id)
    assert progress.state == "cancelled"
    assert 1 <= progress.counts.kept < 40
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == progress.counts.kept
    assert (out / "report.json").is_file()


def test_pixcrawler_crawl_json_summary(
    site: ImageServer, crawl_env: dict[str, str], crawl_worker: WorkerProcess, tmp_path: Path
) -> None:
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job_for(site, tmp_path / "ignored")))
    out = tmp_path / "chosen"
    argv = ["crawl", str(job_file), "--out", str(out), "--json"]
    run = subprocess.run(
        [sys.executable, "-m", "pixcrawler_gui", *argv],
        cwd=REPO, env={**os.environ, **crawl_env}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["state"] == "finished"
    assert summary["kept"] == DISTINCT + 1
    assert summary["output_dir"] == str(out.resolve())
    assert summary["already_had"] == 0
    for key in ("job_id", "duplicates", "invalid", "failed", "elapsed_s"):
        assert key in summary
    assert (out / "manifest.jsonl").is_file()


def test_pixcrawler_crawl_bad_job_file_and_no_worker(
    crawl_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**os.environ, **crawl_env}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dataset_name": "x", "categories": {"a": ["dog", 5]}}))
    run = subprocess.run([sys.executable, "-m", "pixcrawler_gui", "crawl", str(bad)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2
    assert "categories.a[1]" in run.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"dataset_name": "x", "categories": {"a": ["dog"]}}))
    run = subprocess.run([sys.executable, "-m", "pixcrawler_gui", "crawl", str(good)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 3
    assert "--local-worker" in run.stderr


def test_job_survives_its_worker_being_killed(
    site: ImageServer, crawl_app: Celery, crawl_env: dict[str, str], tmp_path: Path
) -> None:
    slow = [site.add_slow(f"/slowk/{n}.jpg", encode(make_picture(300 + n)), chunk=2048, delay=0.03)
            for n in range(30)]  # fmt: skip
    out = tmp_path / "dataset"
    job = job_for(site, out)
    job["categories"] = {"slow": [{"name": "list", "urls": slow}]}
    first = WorkerProcess(crawl_env, concurrency=1).start()
    try:
        first.wait_ready()
        handle = submit_job(crawl_app, parse_job(job).spec)
        wait_until(
            lambda: (p := read_job(crawl_app, handle.job_id)) is not None and p.counts.kept >= 3,
            timeout=60,
            what="a few images kept",
        )
        first.kill_hard()
    finally:
        first.stop()
    with WorkerProcess(crawl_env, concurrency=1) as second:
        second.wait_ready()
        progress = finished(crawl_app, handle.job_id, timeout=150)
    assert progress.state == "finished"
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 30
    assert len({line["path"] for line in lines}) == 30
    assert len({line["sha256"] for line in lines}) == 30  # nothing kept twice
    files = sorted(p for p in (out / "slow" / "list").iterdir())
    assert [p.name for p in files] == sorted(Path(line["path"]).name for line in lines)
    # Counts mean one thing: what the killed delivery saved counts as kept by this run, once.
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["in_folder"] == report["totals"]["kept"] == len(lines) == len(files)
    assert report["totals"]["existing"] == 0
    assert progress.in_folder == progress.counts.kept == 30 and progress.already_had == 0


def test_soft_time_limit_keeps_what_was_saved_and_marks_the_job_partial(
    site: ImageServer, crawl_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery_core.settings.celery_settings import CelerySettings
    from celery_core.worker.app import create_app

    limits = {
        "PIXCRAWLER_CELERY_TASK_SOFT_TIME_LIMIT": "5",
        "PIXCRAWLER_CELERY_TASK_TIME_LIMIT": "20",
        "PIXCRAWLER_CELERY_VISIBILITY_TIMEOUT": "60",
        "PIXCRAWLER_CRAWLER_MAX_PER_HOST": "2",  # about 2 images a second: far from done at 5 s
    }
    env = {**crawl_env, **limits}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    slow = [site.add_slow(f"/slows/{n}.jpg", encode(make_picture(400 + n)), chunk=2048, delay=0.1)
            for n in range(150)]  # fmt: skip
    out = tmp_path / "dataset"
    job = job_for(site, out)
    job["categories"] = {"slow": [{"name": "list", "urls": slow}]}
    app = create_app(CelerySettings.load(), follow_results=False)
    try:
        with WorkerProcess(env, concurrency=1) as worker:
            worker.wait_ready()
            handle = submit_job(app, parse_job(job).spec)
            progress = finished(app, handle.job_id, timeout=60)
        assert progress.state == "partial"
        assert progress.keywords[0].partial is True
        assert 1 <= progress.counts.kept < 150
        lines = (out / "manifest.jsonl").read_text().splitlines()
        assert len(lines) == progress.counts.kept
    finally:
        app.close()


def test_pixcrawler_crawl_local_worker_starts_what_it_needs(
    site: ImageServer, tmp_path: Path
) -> None:
    """No Redis answering, no worker: --local-worker starts the embedded server and a worker."""
    job_file = tmp_path / "job.json"
    job = job_for(site, tmp_path / "out")
    job["categories"] = {"set": [{"name": "list", "urls": [site.url("/img/1.png")]}]}
    job_file.write_text(json.dumps(job))
    env = {
        **os.environ,
        "PIXCRAWLER_CELERY_BROKER_URL": "redis://localhost:1/0",
        "PIXCRAWLER_CELERY_RESULT_BACKEND": "redis://localhost:1/1",
        "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    argv = ["crawl", str(job_file), "--local-worker", "--json"]
    run = subprocess.run(
        [sys.executable, "-m", "pixcrawler_gui", *argv],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["state"] == "finished" and summary["kept"] == 1
    assert run.stderr.strip() == ""


def test_a_website_is_read_once_and_its_pictures_shared_by_several_tasks(
    site: ImageServer, crawl_app: Celery, crawl_worker: WorkerProcess, tmp_path: Path
) -> None:
    links = "".join(f'<a href="/web/p{n}.html">page {n}</a>' for n in range(6))
    site.add_text("/web/index.html", f"<html><body>{links}</body></html>")
    for n in range(6):
        images = "".join(f'<img src="/web/{n}-{m}.jpg">' for m in range(4))
        for m in range(4):
            site.add_bytes(f"/web/{n}-{m}.jpg", encode(make_picture(700 + 4 * n + m)), "image/jpeg")
        site.add_text(f"/web/p{n}.html", f"<html><body>{images}</body></html>")
    out = tmp_path / "dataset"
    job = job_for(site, out)
    job["categories"] = {
        "web": [{"name": "site", "website": site.url("/web/index.html"), "max_pages": 100}]
    }
    handle = submit_job(crawl_app, parse_job(job).spec)
    assert len(handle.task_ids) == 4  # 100 pages allowed: four tasks share the site
    progress = finished(crawl_app, handle.job_id)
    assert progress.state == "finished", progress
    assert progress.counts.kept == 24 and progress.counts.duplicates == 0
    urls = [json.loads(x)["url"] for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(urls) == len(set(urls)) == 24
    assert [site.hits(f"/web/p{n}.html") for n in range(6)] == [1] * 6  # each page read once
    # Every shard ended well; which of them kept the pictures depends on who started first.
    assert [k.state for k in progress.keywords] == ["SUCCESS"] * 4
    assert sum(k.counts.kept for k in progress.keywords) == 24
    # Each part is measured against the website's whole target, which the parts share.
    assert [k.shared_target for k in progress.keywords] == [progress.target] * 4
    report = json.loads((out / "report.json").read_text())
    assert "site" in json.dumps(report)
