"""`pixcrawler self-test` from source: real Redis, a real worker re-run from this program, a real
HTTP site on 127.0.0.1, a real crawl; and the site and the dataset checks on their own."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from celery_core.diagnostics.selftest_checks import dataset_problems, selftest_job
from celery_core.diagnostics.selftest_site import SelfTestSite

REPO = Path(__file__).resolve().parents[2]
STEPS = ["redis", "process spawn", "image decoders", "image site", "worker", "job file", "crawl",
         "counts", "dataset", "shutdown"]  # fmt: skip
KEPT_DIR = re.compile(r"^Files of this run are in (.+)$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_test(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # A local broker URL where nothing listens: the self-test must start the embedded server,
    # whatever Redis the developer's machine runs on 6379.
    port = free_port()
    env = {
        **os.environ,
        "PIXCRAWLER_CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0",
        "PIXCRAWLER_CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{port}/1",
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "pixcrawler_gui", "self-test", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def step_lines(stdout: str) -> list[tuple[str, str]]:
    found = []
    for line in stdout.splitlines():
        match = re.match(r"^(PASS|FAIL)  (.+?) +\d+\.\d\d s  ", line)
        if match:
            found.append((match.group(1), match.group(2)))
    return found


def test_self_test_passes_with_an_empty_stderr_and_leaves_a_sound_dataset() -> None:
    run = self_test("--keep")
    kept = KEPT_DIR.search(run.stdout)
    try:
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stderr == ""
        assert step_lines(run.stdout) == [("PASS", name) for name in STEPS]
        assert "embedded" in run.stdout.splitlines()[0]
        assert run.stdout.rstrip().splitlines()[-1].startswith("Self-test passed in ")
        assert kept is not None, run.stdout
        workdir = Path(kept.group(1))
        dataset = workdir / "dataset"
        expected = SelfTestSite.expected
        assert dataset_problems(dataset, expected) == []
        manifest = (dataset / "manifest.jsonl").read_text().splitlines()
        assert len(manifest) == expected.kept
        assert "Got shutdown from remote" in (workdir / "worker.log").read_text()

        # The same checks catch a damaged dataset.
        first = dataset / json.loads(manifest[0])["path"]
        first.write_bytes(first.read_bytes()[:100])
        (dataset / "labels.yaml").unlink()
        problems = dataset_problems(dataset, expected)
        assert any("size differs" in p for p in problems), problems
        assert "labels.yaml is missing" in problems
    finally:
        if kept is not None:
            shutil.rmtree(kept.group(1), ignore_errors=True)


def test_self_test_without_a_redis_server_fails_its_first_step_in_plain_words() -> None:
    run = self_test(extra_env={"PIXCRAWLER_REDIS_SERVER": "/nonexistent/valkey-server"})
    kept = KEPT_DIR.search(run.stdout)
    if kept is not None:
        shutil.rmtree(kept.group(1), ignore_errors=True)
    assert run.returncode == 1
    assert step_lines(run.stdout) == [("FAIL", "redis"), ("PASS", "shutdown")]
    assert "PIXCRAWLER_REDIS_SERVER" in run.stdout
    assert "Self-test FAILED" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_site_serves_distinct_pictures_a_resized_copy_and_a_page_named_jpg(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with SelfTestSite() as site:
        urls = site.image_urls()
        assert all(u.startswith("http://127.0.0.1:") for u in urls)
        replies = [fetch(u) for u in urls]
        missing = fetch(site.url("/img/nothing.jpg"))
    assert [status for status, _, _ in replies] == [200] * len(urls)
    assert missing[0] == 404
    *pictures, invalid = replies
    sizes = [Image.open(io.BytesIO(body)).size for _, _, body in pictures]
    assert sizes[:-1] == [(480, 360)] * SelfTestSite.expected.kept
    assert sizes[-1] == (360, 270)  # the copy: smaller, re-encoded, other bytes
    assert len({body for _, _, body in pictures}) == len(pictures)
    assert invalid[1] == "image/jpeg" and invalid[2].startswith(b"<!doctype html>")
    with pytest.raises(OSError):
        Image.open(io.BytesIO(invalid[2]))
    # The site logs nothing on the terminal (the self-test keeps stderr empty).
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_selftest_job_keeps_every_picture_and_all_label_formats(tmp_path: Path) -> None:
    from celery_core.jobs.spec import parse_job

    urls = [f"http://127.0.0.1:8000/img/{n}.jpg" for n in range(3)]
    spec = parse_job(selftest_job(urls, tmp_path / "out")).spec
    items = spec.work_items()
    assert [len(item.urls) for item in items] == [3]
    assert spec.options.max_images >= 3
    assert set(spec.options.label_formats) == {"txt", "json", "csv", "yaml"}
    assert spec.dataset_root() == tmp_path / "out"
