"""A full disk or an unwritable folder: how the fault is told apart, carried and put into words,
and the estimate of whether a job fits, checked before it starts."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest

from celery_core.crawler.dataset.space import (
    MIN_FREE_BYTES,
    TYPICAL_IMAGE_BYTES,
    check_dataset_space,
    estimate_fit,
    existing_parent,
    storage_fault,
)
from celery_core.crawler.types import Counts, KeywordResult, StorageFault
from celery_core.jobs.control import NotEnoughSpace
from celery_core.jobs.redis_keys import parse_stop
from celery_core.jobs.state import job_progress
from pixcrawler_gui.presentation.job_text import (
    fault_text,
    job_state_text,
    keyword_state,
    size_text,
    space_text,
)

FULL = StorageFault("disk_full", "/media/usb/cats", 200_000, "ENOSPC", 1.0)


# --- words ------------------------------------------------------------------------------------


def _fault(kind: str, free: int | None, error: str, path: str = "/d") -> StorageFault:
    return StorageFault(kind, path, free, error)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fault", "text"),
    [
        (FULL, "Disk full at /media/usb/cats (0.2 MB free)"),
        (_fault("disk_full", 0, "ENOSPC"), "Disk full at /d (0 MB free)"),
        (_fault("disk_full", 45_300_000, "ENOSPC"), "Disk full at /d (45 MB free)"),
        (_fault("disk_full", None, "ENOSPC"), "Disk full at /d"),
        (_fault("disk_full", 10**10, "EDQUOT"), "Disk quota used up at /d (10.0 GB free)"),
        (_fault("not_writable", 10**9, "EACCES"), "Can't write to /d: permission denied"),
        (_fault("not_writable", 10**9, "EPERM"), "Can't write to /d: permission denied"),
        (_fault("not_writable", 0, "EROFS"), "Can't write to /d: the disk is read-only"),
    ],
)
def test_a_fault_in_plain_words(fault: StorageFault, text: str) -> None:
    assert fault_text(fault) == text


def test_sizes_read_as_on_a_disk() -> None:
    assert [size_text(n) for n in (0, 49_999, 420_000, 9_940_000, 12_400_000, 2_500_000_000)] == [
        "0 MB", "0 MB", "0.4 MB", "9.9 MB", "12 MB", "2.5 GB"
    ]  # fmt: skip


# --- the estimate -----------------------------------------------------------------------------


def test_a_job_that_fits_gets_no_warning() -> None:
    check = estimate_fit("/data", free=10**9, images=900)
    assert check.typical_bytes == TYPICAL_IMAGE_BYTES
    assert check.fits and not check.refused
    assert space_text(check) is None


def test_a_job_that_clearly_does_not_fit_is_warned_about_not_refused() -> None:
    check = estimate_fit("/mnt/small", free=20_000_000, images=900)
    assert not check.fits and not check.refused
    assert check.needed_bytes == int(900 * 200_000 * 1.1)
    assert check.images_that_fit == 90
    assert space_text(check) == (
        "Only 20 MB free at /mnt/small: 900 images need about 198 MB (at 200 KB each), so only "
        "about 90 will fit. The job stops when the disk is full."
    )


def test_below_the_floor_a_job_is_refused() -> None:
    check = estimate_fit("/mnt/tiny", free=MIN_FREE_BYTES - 1, images=1)
    assert check.refused
    message = str(NotEnoughSpace(check))
    assert message.startswith("only 5.2 MB free at /mnt/tiny: too little to start a crawl")


def test_the_estimate_uses_the_size_it_is_given_and_never_goes_negative() -> None:
    check = estimate_fit("/d", free=-5, images=-3, typical_bytes=50_000)
    assert (check.free_bytes, check.images, check.typical_bytes) == (0, 0, 50_000)
    assert check.fits and check.refused  # nothing to fit, and yet no room to start
    assert estimate_fit("/d", 1, 1, typical_bytes=0).typical_bytes == TYPICAL_IMAGE_BYTES


def test_an_existing_dataset_lends_its_average_and_counts_what_it_holds(tmp_path: Path) -> None:
    root = tmp_path / "cats"
    root.mkdir()
    lines = [{"path": f"a/b/{n:04d}.jpg", "bytes": 100_000 + 20_000 * n} for n in range(3)]
    text = "".join(json.dumps(line) + "\n" for line in lines) + "not json\n"
    (root / "manifest.jsonl").write_text(text)
    check = check_dataset_space(root, images=10)
    assert check is not None
    assert check.typical_bytes == 120_000
    assert check.images == 10 - 4  # one line per kept image, the torn one too: an estimate
    assert check.path == str(root)


def test_a_folder_not_made_yet_is_measured_where_it_will_be(tmp_path: Path) -> None:
    assert existing_parent(tmp_path / "a" / "b" / "c") == tmp_path
    check = check_dataset_space(tmp_path / "a" / "b", images=5)
    assert check is not None and check.path == str(tmp_path)
    assert check.images == 5 and check.typical_bytes == TYPICAL_IMAGE_BYTES


# --- telling a fault from one image's error ---------------------------------------------------


def test_no_space_and_refused_writes_are_faults_other_errors_are_not(tmp_path: Path) -> None:
    root = tmp_path / "set"
    full = storage_fault(OSError(errno.ENOSPC, "No space left on device"), root)
    assert full is not None and full.kind == "disk_full"
    assert (full.path, full.error) == (str(root), "ENOSPC")
    assert full.free_bytes is not None and full.at > 0
    quota = storage_fault(OSError(errno.EDQUOT, "Disk quota exceeded"), root)
    assert quota is not None and (quota.kind, quota.error) == ("disk_full", "EDQUOT")
    temp = root / "dogs" / "pug" / ".tmp-x.jpg"
    denied = storage_fault(PermissionError(errno.EACCES, "Permission denied", str(temp)), root)
    assert denied is not None and (denied.kind, denied.path) == ("not_writable", str(temp.parent))
    lock = root / ".pixcrawler" / "locks" / "x.lock"
    ro = storage_fault(OSError(errno.EROFS, "Read-only file system", str(lock)), root)
    assert ro is not None and (ro.path, ro.error) == (str(root), "EROFS")  # not its lock folder
    folder = root / "dogs" / "pug"
    no_name = storage_fault(OSError(errno.EPERM, "Operation not permitted"), root, folder)
    assert no_name is not None and no_name.path == str(folder)
    for other in (errno.EIO, errno.ENAMETOOLONG, errno.ENOENT):
        assert storage_fault(OSError(other, "x"), root) is None
    assert storage_fault(OSError("no errno"), root) is None


# --- carried through results, the stop flag and the job's state -------------------------------


def test_a_fault_survives_the_trip_through_json() -> None:
    result = KeywordResult("cats", "tabby", 10, Counts(kept=3), 1.0, partial=True, fault=FULL)
    again = KeywordResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert KeywordResult.from_dict({**result.to_dict(), "fault": None}).fault is None
    assert StorageFault.from_dict({"kind": "weird"}) is None


def test_the_stop_flag_says_cancel_or_fault() -> None:
    assert parse_stop(None) is None
    assert parse_stop(b"1") is None  # the user cancelled
    assert parse_stop(json.dumps(FULL.to_dict()).encode()) == FULL
    assert parse_stop(b"{not json") is None


def _record(n: int = 2) -> dict[str, Any]:
    tasks = [{"id": f"t{i}", "item": {"category": "c", "keyword": f"k{i}", "target": 10}}
             for i in range(n)]  # fmt: skip
    return {"job_id": "j", "name": "cats", "tasks": tasks, "callback_id": "cb"}


def _done(result: dict[str, Any]) -> dict[str, Any]:
    envelope = {"task_id": "x", "status": "SUCCESS", "result": result}
    return {"status": "SUCCESS", "result": envelope}


def test_the_job_says_stopping_then_failed_with_the_fault() -> None:
    counts = Counts(kept=4, downloaded=6).to_dict()
    stopped = _done({"counts": counts, "partial": True, "fault": FULL.to_dict()})
    running = {"status": "PROGRESS", "result": {"counts": counts, "target": 10}}
    progress = job_progress(_record(), {"t0": stopped, "t1": running}, cancelled=True)
    assert progress.state == "cancelling" and progress.fault == FULL
    assert job_state_text(progress) == "Stopping: Disk full at /media/usb/cats (0.2 MB free)"
    assert keyword_state(progress.keywords[0]) == (
        "Stopped: Disk full at /media/usb/cats (0.2 MB free)", "#d03b3b"
    )  # fmt: skip
    assert progress.keywords[1].fault is None

    cancelled = _done({"counts": counts, "partial": True, "cancelled": True})
    summary = {"state": "failed", "kept": 8, "failed": 0, "fault": FULL.to_dict()}
    ended = job_progress(_record(), {"t0": stopped, "t1": cancelled, "cb": _done(summary)}, True)
    assert ended.state == "failed" and ended.error is None and ended.fault == FULL
    assert job_state_text(ended) == "Failed: Disk full at /media/usb/cats (0.2 MB free)"
    assert job_state_text(ended, "cancelled by you") == job_state_text(ended)


def test_a_job_without_a_fault_reads_as_before() -> None:
    summary = {"state": "failed", "kept": 0}
    meta = {"status": "FAILURE", "result": {"exc_type": "OSError", "exc_message": "boom"}}
    progress = job_progress(_record(1), {"t0": meta, "cb": _done(summary)})
    assert progress.fault is None
    assert job_state_text(progress, "the final step failed") == "Failed: the final step failed"
