"""The dataset on disk: safe names, atomic files, a manifest shared by processes, labels, report."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from celery_core.crawler.dataset.labels import write_labels
from celery_core.crawler.dataset.names import safe_name
from celery_core.crawler.dataset.report import build_report, render_markdown, write_report
from celery_core.crawler.dataset.temp_files import TEMP_PREFIX
from celery_core.crawler.dataset.writer import (
    MANIFEST_NAME,
    Dataset,
    ManifestEntry,
)
from celery_core.crawler.types import Counts, KeywordResult


def entry(
    path: str, n: int = 0, category: str = "cats", keyword: str = "tabby", **kw: object
) -> ManifestEntry:
    values: dict[str, object] = {
        "path": path,
        "url": f"http://img.example/{n}.jpg",
        "source_page": None,
        "source": "urls",
        "sha256": f"{n:064x}",
        "phash": f"{n:016x}",
        "width": 100,
        "height": 80,
        "format": "JPEG",
        "bytes": 1234,
        "category": category,
        "keyword": keyword,
        "fetched_at": "2026-01-01T00:00:00Z",
    }
    values.update(kw)
    return ManifestEntry(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("cats", "cats"),
        ("red apples", "red apples"),
        ("../../etc/passwd", "_._etc_passwd"),
        ("..", "_"),
        ("a/b\\c", "a_b_c"),
        ("tab\there\x00\x1f", "tabhere"),
        ("  dots... ", "dots"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("chat noir 猫", "chat noir 猫"),
        ("", "_"),
        ("x" * 300, "x" * 100),
    ],
)
def test_safe_name(raw: str, expected: str) -> None:
    name = safe_name(raw)
    assert name == expected
    assert "/" not in name and "\\" not in name and ".." not in name


def test_folder_names_cannot_escape_the_root(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path / "ds")
    folder = dataset.prepare_folder("../../outside", "../kw")
    assert folder.path.resolve().is_relative_to((tmp_path / "ds").resolve())
    assert folder.relative == "_._outside/_kw"


def keep_all(path: str) -> ManifestEntry:
    return entry(path)


def test_numbering_continues_and_temp_files_are_removed(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path)
    folder = dataset.prepare_folder("cats", "tabby")
    assert folder.next_number == 1
    assert dataset.write_image(folder, "jpg", b"one", keep_all) == "cats/tabby/0001.jpg"
    (folder.path / "0007.png").write_bytes(b"seven")
    old_stray = folder.path / f"{TEMP_PREFIX}abc-0008.jpg"
    old_stray.write_bytes(b"half an ima")  # a crash an hour ago
    os.utime(old_stray, (time.time() - 3600, time.time() - 3600))
    young = folder.path / f"{TEMP_PREFIX}def-0009.jpg"
    young.write_bytes(b"being written by another crawl of this folder")
    again = dataset.prepare_folder("cats", "tabby")
    assert again.next_number == 8
    assert sorted(os.listdir(folder.path)) == [young.name, "0001.jpg", "0007.png"]


def test_temp_files_of_processes_that_are_gone_go_at_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    from celery_core.crawler.dataset import temp_files

    dataset = Dataset(tmp_path)
    folder = dataset.prepare_folder("cats", "tabby")
    ours = temp_files.temp_name("jpg")
    assert ours.startswith(TEMP_PREFIX) and f"-{os.getpid()}-" in ours
    dead = subprocess.run(  # a writer of this computer that was killed seconds ago
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    gone = ours.replace(f"-{os.getpid()}-", f"-{int(dead.stdout)}-")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as alive:
        try:
            running = ours.replace(f"-{os.getpid()}-", f"-{alive.pid}-")
            elsewhere = f"{TEMP_PREFIX}00000000-{int(dead.stdout)}-abcd.jpg"  # another computer
            for name in (ours, gone, running, elsewhere):
                (folder.path / name).write_bytes(b"half an image")
            dataset.prepare_folder("cats", "tabby")
            assert sorted(os.listdir(folder.path)) == sorted([ours, running, elsewhere])
        finally:
            alive.kill()


def test_names_taken_meanwhile_are_skipped_never_replaced(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path)
    folder = dataset.prepare_folder("cats", "tabby")
    assert dataset.write_image(folder, "jpg", b"first", keep_all) == "cats/tabby/0001.jpg"
    # Another crawl of this folder took 0002 and 0003 since: the next image gets 0004.
    (folder.path / "0002.jpg").write_bytes(b"theirs")
    (folder.path / "0003.png").write_bytes(b"theirs")
    seen: list[str] = []

    def record(path: str) -> ManifestEntry:
        seen.append(path)
        return entry(path)

    assert dataset.write_image(folder, "png", b"mine", record) == "cats/tabby/0004.png"
    assert seen == ["cats/tabby/0004.png"]
    assert (folder.path / "0001.jpg").read_bytes() == b"first"
    assert (folder.path / "0002.jpg").read_bytes() == b"theirs"
    assert [e.path for e in dataset.read_manifest()] == [
        "cats/tabby/0001.jpg",
        "cats/tabby/0004.png",
    ]
    assert not [n for n in os.listdir(folder.path) if n.startswith(TEMP_PREFIX)]


def test_a_refused_or_failed_image_leaves_nothing(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path)
    folder = dataset.prepare_folder("cats", "tabby")
    assert dataset.write_image(folder, "jpg", b"duplicate", lambda path: None) is None

    def broken(path: str) -> ManifestEntry:
        raise RuntimeError("index unreachable")

    with pytest.raises(RuntimeError):
        dataset.write_image(folder, "jpg", b"x", broken)
    assert os.listdir(folder.path) == []
    assert dataset.read_manifest() == []
    assert dataset.write_image(folder, "jpg", b"kept", keep_all) == "cats/tabby/0001.jpg"


def test_manifest_round_trip_and_torn_last_line(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path)
    dataset.append_manifest(entry("cats/tabby/0001.jpg", 1), entry("cats/tabby/0002.jpg", 2))
    with open(tmp_path / MANIFEST_NAME, "ab") as handle:
        handle.write(b'{"path": "cats/tabby/0003.jpg", "sha2')  # a crash mid-line
    existing = dataset.existing()
    assert [e.path for e in existing.entries] == ["cats/tabby/0001.jpg", "cats/tabby/0002.jpg"]
    assert existing.urls == {"http://img.example/1.jpg", "http://img.example/2.jpg"}
    assert existing.sha256s == {f"{1:064x}", f"{2:064x}"}
    assert existing.in_folder("cats/tabby") == 2 and existing.in_folder("cats/tab") == 0
    line = (tmp_path / MANIFEST_NAME).read_text().splitlines()[0]
    assert set(json.loads(line)) == {
        "path", "url", "source_page", "source", "sha256", "phash", "width", "height",
        "format", "bytes", "category", "keyword", "fetched_at", "final_url",
    }  # fmt: skip


def _append_many(root: str, worker: int, count: int) -> None:
    dataset = Dataset(Path(root))
    for i in range(count):
        long_url = f"http://img.example/{worker}/{i}/" + "x" * 6000
        dataset.append_manifest(entry(f"w{worker}/{i:04d}.jpg", worker * 10_000 + i, url=long_url))


def test_processes_append_to_one_manifest_safely(tmp_path: Path) -> None:
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context: Any = multiprocessing.get_context(method)
    workers = [context.Process(target=_append_many, args=(str(tmp_path), w, 150)) for w in range(4)]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(60)
        assert proc.exitcode == 0
    lines = (tmp_path / MANIFEST_NAME).read_bytes().split(b"\n")
    assert lines[-1] == b""
    parsed = [json.loads(line) for line in lines[:-1]]
    assert len(parsed) == 600
    assert len({p["path"] for p in parsed}) == 600


# --- labels ----------------------------------------------------------------------------


def _yaml_images(text: str) -> list[dict[str, object]]:
    """Read back the small YAML subset the label writer emits (JSON-quoted scalars)."""
    images: list[dict[str, object]] = []
    in_images = False
    for line in text.splitlines():
        if line == "images:":
            in_images = True
        elif in_images and line.startswith("  - "):
            images.append({})
            line = "    " + line[4:]
        if in_images and line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            images[-1][key] = json.loads(value)
    return images


def test_labels_in_four_formats(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path)
    cat = dataset.prepare_folder("cats", "tabby")
    dog = dataset.prepare_folder('dogs "good"', "pug: small")
    (cat.path / "0001.jpg").write_bytes(b"x")
    (dog.path / "0001.jpg").write_bytes(b"x")
    dataset.append_manifest(
        entry("cats/tabby/0001.jpg", 1),
        entry(f"{dog.relative}/0001.jpg", 2, category='dogs "good"', keyword="pug: small"),
        entry("cats/tabby/0002.jpg", 3),  # deleted by hand: left out of the labels
    )
    paths = write_labels(tmp_path)
    assert [p.name for p in paths] == ["labels.txt", "labels.json", "labels.csv", "labels.yaml"]

    txt = (tmp_path / "labels.txt").read_text().splitlines()
    assert txt == ["cats/tabby/0001.jpg\tcats", f'{dog.relative}/0001.jpg\tdogs "good"']

    document = json.loads((tmp_path / "labels.json").read_text())
    assert document["classes"] == ["cats", 'dogs "good"']
    assert [i["label"] for i in document["images"]] == ["cats", 'dogs "good"']

    rows = list(csv.DictReader(io.StringIO((tmp_path / "labels.csv").read_text())))
    assert [(r["path"], r["label"], r["keyword"]) for r in rows] == [
        ("cats/tabby/0001.jpg", "cats", "tabby"),
        (f"{dog.relative}/0001.jpg", 'dogs "good"', "pug: small"),
    ]

    yaml_text = (tmp_path / "labels.yaml").read_text()
    assert yaml_text.startswith('classes:\n  - "cats"\n  - "dogs \\"good\\""\nimages:\n')
    images = _yaml_images(yaml_text)
    assert [(i["path"], i["label"], i["width"]) for i in images] == [
        ("cats/tabby/0001.jpg", "cats", 100),
        (f"{dog.relative}/0001.jpg", 'dogs "good"', 100),
    ]


def test_labels_refuse_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="xml"):
        write_labels(tmp_path, ["xml"])


# --- report ----------------------------------------------------------------------------


def test_report_groups_keywords_and_adds_totals(tmp_path: Path) -> None:
    results = [
        KeywordResult(
            "cats",
            "tabby",
            10,
            Counts(found=20, downloaded=15, kept=10, duplicates=3, invalid=2, failed=5,
                   invalid_reasons={"truncated": 2}, failed_reasons={"http_404": 5}),
            3.5,
        ),
        KeywordResult(
            "cats",
            "siamese | thai",
            10,
            Counts(found=5, kept=4, failed=1, failed_reasons={"timeout": 1},
                   source_errors=["bing: blocked"]),
            2.0,
            partial=True,
        ),
        KeywordResult("dogs", "pug", 5, Counts(kept=5, skipped_existing=2), 1.0),
    ]  # fmt: skip
    report = build_report(results, title="Pets")
    assert report["totals"]["kept"] == 19
    assert report["totals"]["failed_reasons"] == {"http_404": 5, "timeout": 1}
    assert report["elapsed_s"] == 6.5
    cats = report["categories"][0]
    assert cats["name"] == "cats" and cats["counts"]["kept"] == 14
    assert [k["keyword"] for k in cats["keywords"]] == ["tabby", "siamese | thai"]
    json_path, md_path = write_report(tmp_path, report)
    assert json.loads(json_path.read_text())["totals"]["duplicates"] == 3
    markdown = md_path.read_text()
    assert markdown == render_markdown(report)
    assert "# Pets" in markdown and "## dogs" in markdown
    assert "| siamese \\| thai | 10 | 4 |" in markdown
    assert "http_404 5" in markdown and "source error: bing: blocked" in markdown
    assert "partial" in markdown
