"""Checks behind `pixcrawler self-test`: the job it crawls, the dataset it expects, a spawn probe.

Pure functions over files and plain data (no Celery, no Qt), so the command-line role stays a
list of steps and each check can be tested on its own.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from celery_core.diagnostics.selftest_site import SiteExpectation

__all__ = [
    "LABEL_FORMATS",
    "dataset_problems",
    "decoders_check",
    "report_pid",
    "selftest_job",
    "spawn_round_trip",
]

LABEL_FORMATS = ("txt", "json", "csv", "yaml")
CATEGORY = "selftest"
KEYWORD = "pictures"
MIN_SIDE = 64


def selftest_job(urls: Sequence[str], output_dir: Path) -> dict[str, Any]:
    """The job file (as a dict) that crawls `urls` into `output_dir`."""
    return {
        "dataset_name": "pixcrawler-self-test",
        "categories": {CATEGORY: [{"name": KEYWORD, "urls": list(urls)}]},
        "options": {
            "max_images": len(urls) * 2,
            "output_dir": str(output_dir),
            "min_width": MIN_SIDE,
            "min_height": MIN_SIDE,
            "generate_labels": True,
            "label_formats": list(LABEL_FORMATS),
        },
    }


def decoders_check() -> str:
    """Each image format the crawler keeps decodes here (a packaged app that left a codec out
    would refuse every such file); says which WebP decoder and PNG inflater are in use."""
    from io import BytesIO

    from PIL import Image

    from celery_core.crawler.images import webp_thumbnail
    from celery_core.crawler.images.check import ImageRules, check_image

    picture = Image.new("RGB", (320, 240), (40, 90, 160))
    picture.paste((230, 200, 30), (40, 30, 200, 150))
    for fmt in ("JPEG", "PNG", "WEBP", "GIF", "BMP"):
        out = BytesIO()
        picture.save(out, fmt)
        checked = check_image(out.getvalue(), ImageRules())
        if (checked.format, checked.width, checked.height) != (fmt, 320, 240):
            raise RuntimeError(
                f"{fmt} decoded as {checked.format} {checked.width}x{checked.height}"
            )
    webp = "scaled by libwebp" if webp_thumbnail.decoder() is not None else "through Pillow"
    out = BytesIO()
    picture.save(out, "PNG")
    png = _png_inflate(out.getvalue())
    return f"JPEG, PNG, WebP, GIF and BMP decode; WebP {webp}; PNG inflated by {png}"


def _png_inflate(png: bytes) -> str:
    from celery_core.crawler.images import png_reflate

    if not png_reflate.enabled():
        return "zlib-ng (Pillow's own zlib)"
    return "zlib-ng" if png_reflate.reflate(png) is not None else "the system zlib"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_problems(root: Path, expected: SiteExpectation) -> list[str]:
    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        return [f"no manifest at {manifest}"]
    problems: list[str] = []
    try:
        entries = [json.loads(line) for line in manifest.read_text("utf-8").splitlines() if line]
    except ValueError as exc:
        return [f"manifest.jsonl is not JSON lines: {exc}"]
    if len(entries) != expected.kept:
        problems.append(f"manifest has {len(entries)} images, expected {expected.kept}")
    for entry in entries:
        path = root / str(entry.get("path", ""))
        if not path.is_file():
            problems.append(f"manifest names a missing file {entry.get('path')!r}")
        elif path.stat().st_size != entry.get("bytes"):
            problems.append(f"{entry['path']}: size differs from the manifest")
        elif _sha256(path) != entry.get("sha256"):
            problems.append(f"{entry['path']}: SHA-256 differs from the manifest")
        elif entry.get("category") != CATEGORY or entry.get("keyword") != KEYWORD:
            problems.append(f"{entry['path']}: wrong category or keyword")
    # Hidden files (the folder's lock) are the crawler's bookkeeping, not images.
    images = [p for p in (root / CATEGORY).rglob("[!.]*") if p.is_file()]
    if len(images) != len(entries):
        problems.append(f"{len(images)} image files on disk, {len(entries)} in the manifest")
    return problems


def _report_problems(root: Path, expected: SiteExpectation) -> list[str]:
    path = root / "report.json"
    try:
        report = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        return [f"report.json is missing or unreadable: {exc}"]
    totals = report.get("totals") if isinstance(report, dict) else None
    if not isinstance(totals, dict):
        return ["report.json has no totals"]
    want = {"kept": expected.kept, "duplicates": expected.duplicates, "invalid": expected.invalid}
    return [
        f"report.json counts {totals.get(key)} {key}, expected {value}"
        for key, value in want.items()
        if totals.get(key) != value
    ]


def _label_problems(root: Path, expected: SiteExpectation) -> list[str]:
    problems = [
        f"labels.{fmt} is missing"
        for fmt in LABEL_FORMATS
        if not (root / f"labels.{fmt}").is_file()
    ]
    if problems:
        return problems
    try:
        labels = json.loads((root / "labels.json").read_text("utf-8"))
    except ValueError as exc:
        return [f"labels.json is not JSON: {exc}"]
    images = labels.get("images", []) if isinstance(labels, dict) else []
    if len(images) != expected.kept:
        problems.append(f"labels.json lists {len(images)} images, expected {expected.kept}")
    if labels.get("classes") != [CATEGORY]:
        problems.append(f"labels.json classes are {labels.get('classes')}, expected [{CATEGORY!r}]")
    txt_lines = (root / "labels.txt").read_text("utf-8").splitlines()
    if len(txt_lines) != expected.kept:
        problems.append(f"labels.txt has {len(txt_lines)} lines, expected {expected.kept}")
    return problems


def dataset_problems(root: Path, expected: SiteExpectation) -> list[str]:
    """What is wrong with the dataset at `root`; empty when it is what the crawl should make."""
    return (
        _manifest_problems(root, expected)
        + _report_problems(root, expected)
        + _label_problems(root, expected)
    )


def report_pid(queue: Any) -> None:
    """Runs in a spawned child process: proves the executable can start pool processes."""
    queue.put(os.getpid())


def spawn_round_trip(timeout: float = 60.0) -> int:
    """Start one process the way a spawn-mode pool does (macOS's default) and hear from it.

    The queue's lock starts billiard's semaphore tracker on POSIX, the child is started with
    `--billiard-fork` when frozen: both helper command lines of the packaged executable run.
    Returns the child's pid; raises RuntimeError when it does not answer.
    """
    import billiard

    context = billiard.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=report_pid, args=(queue,), daemon=True)
    try:
        process.start()
        try:
            pid = int(queue.get(timeout=timeout))
        except Exception as exc:
            raise RuntimeError(
                f"a spawned process did not answer within {timeout:.0f} s "
                f"(exit code {process.exitcode})"
            ) from exc
        process.join(timeout)
        if process.exitcode != 0:
            raise RuntimeError(f"the spawned process exited with code {process.exitcode}")
        return pid
    finally:
        if process.is_alive():
            process.terminate()
            process.join(5)
        queue.close()
        queue.join_thread()
