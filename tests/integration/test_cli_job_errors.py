"""`pixcrawler crawl` on a bad job file: one line on stderr and exit 2, before it looks for
Redis or a worker (the configured Redis here is a dead port: reaching it would take time and
say something else)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_cli import pixcrawler

DEAD = {
    "PIXCRAWLER_CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
    "PIXCRAWLER_CELERY_RESULT_BACKEND": "redis://127.0.0.1:1/1",
}
BASE = '{"dataset_name": "d", "categories": {"c": %s}, "options": %s}'


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (BASE % ('["a"]', '{"max_images": %s}' % ("9" * 5000)), "5000 digits"),
        ("[" * 100_000 + "]" * 100_000, "nested"),
        (BASE % ('["a"]', json.dumps({"output_dir": "x\x00y"})), "control characters"),
        (BASE % ('[{"name": "z", "urls_file": "/dev/zero"}]', "{}"), "not a regular file"),
        (BASE % ('["a/b", "a_b"]', "{}"), "would share one folder"),
        (BASE % ('["a"]', '{"output_dir": "/"}'), "root of a disk"),
        (BASE % ('[{"name": "u", "urls": ["http://u:pw@example.com/a.jpg"]}]', "{}"), "password"),
    ],
    ids=[
        "huge-number",
        "deep-nesting",
        "nul-in-path",
        "dev-zero",
        "shared-folder",
        "root",
        "creds",
    ],
)
def test_bad_job_file_gets_one_line_and_exit_2(tmp_path: Path, text: str, says: str) -> None:
    job = tmp_path / "job.json"
    job.write_text(text, encoding="utf-8")
    out = pixcrawler("crawl", str(job), env=DEAD, timeout=60)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and lines[0].startswith("pixcrawler: ")
    assert "Traceback" not in out.stderr and ":pw@" not in out.stderr


def test_out_pointing_at_the_root_is_refused(tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text(BASE % ('["a"]', "{}"), encoding="utf-8")
    out = pixcrawler("crawl", str(job), "--out", "/", env=DEAD, timeout=60)
    assert out.returncode == 2 and "--out" in out.stderr and "root" in out.stderr
