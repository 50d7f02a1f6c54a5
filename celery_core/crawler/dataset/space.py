"""Room on the dataset's disk: telling a full disk or a refused folder from one image's error,
and estimating before a job starts whether it will fit.

A full disk (ENOSPC, EDQUOT) or a folder that cannot be written (EACCES, EPERM, EROFS) is not
one image's problem: every image after it would fail the same way. The crawl turns such an
error into a `StorageFault` and stops (see `pipeline`); the job's other tasks stop with it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from celery_core.crawler.types import StorageFault

NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})

# What an image takes on disk when nothing better is known: photos from image searches are
# mostly 50-500 KB; this errs on the large side, so a warning comes early rather than late.
TYPICAL_IMAGE_BYTES = 200_000
# Below this a job is refused outright: not even the first images and the report would fit.
MIN_FREE_BYTES = 5 * 1024 * 1024
# Room kept for the manifest, labels, the report and the file system's own needs.
HEADROOM = 1.1


def existing_parent(path: Path) -> Path:
    """`path` or its nearest ancestor that exists (a dataset folder may not exist yet)."""
    path = Path(path).expanduser().absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or os.sep)


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged process may still write where `path` is (or would be)."""
    try:
        return shutil.disk_usage(existing_parent(path)).free
    except OSError:
        return None


def storage_fault(exc: OSError, root: Path, folder: Path | None = None) -> StorageFault | None:
    """The fault `exc` means for the dataset at `root`, or None when it is one image's error.

    A full disk is reported at the dataset root, which names the disk the user must free; a
    refused write at the folder of the file refused (else `folder`, else `root`)."""
    name = errno.errorcode.get(exc.errno, "") if exc.errno is not None else ""
    if exc.errno in NO_SPACE:
        return StorageFault("disk_full", str(root), free_bytes(root), name, time.time())
    if exc.errno in NOT_WRITABLE:
        where = Path(os.fsdecode(exc.filename)).parent if exc.filename else folder
        if where is not None and ".pixcrawler" in where.parts:
            where = root  # the dataset's own lock files: the user knows the dataset folder
        return StorageFault("not_writable", str(where or root), free_bytes(root), name, time.time())
    return None


@dataclass(frozen=True)
class SpaceCheck:
    """Whether a job's images will fit where it writes them: an estimate, checked before the
    job is submitted. Data only; `job_text` and the CLI put it into words."""

    path: str  # the folder whose disk was measured (the dataset root or its nearest parent)
    free_bytes: int
    images: int  # images the job wants
    typical_bytes: int  # what one image is expected to take
    floor_bytes: int = MIN_FREE_BYTES

    @property
    def needed_bytes(self) -> int:
        return int(self.images * self.typical_bytes * HEADROOM)

    @property
    def fits(self) -> bool:
        return self.free_bytes >= self.needed_bytes

    @property
    def refused(self) -> bool:
        """Too little room to start at all."""
        return self.free_bytes < self.floor_bytes

    @property
    def images_that_fit(self) -> int:
        room = max(0, self.free_bytes) / HEADROOM
        return int(room // max(1, self.typical_bytes))


def estimate_fit(path: str, free: int, images: int, typical_bytes: int | None = None) -> SpaceCheck:
    """Pure: the check for `images` of about `typical_bytes` each (default
    TYPICAL_IMAGE_BYTES) with `free` bytes left."""
    typical = typical_bytes if typical_bytes and typical_bytes > 0 else TYPICAL_IMAGE_BYTES
    return SpaceCheck(path, max(0, free), max(0, images), typical)


def check_dataset_space(root: Path, images: int, sample: int = 2000) -> SpaceCheck | None:
    """Measure the disk `root` is on (or will be) for `images` more images; None when it
    cannot be measured. An existing dataset lends its own average image size (from its first
    `sample` manifest lines), and the images it already holds count as done (a re-run tops
    the folder up)."""
    root = Path(root).expanduser()
    free = free_bytes(root)
    if free is None:
        return None
    typical, held = _manifest_figures(root / "manifest.jsonl", sample)
    return estimate_fit(str(existing_parent(root)), free, images - held, typical)


def _manifest_figures(path: Path, sample: int) -> tuple[int | None, int]:
    """(average bytes of the first `sample` entries or None, number of lines)."""
    sizes: list[int] = []
    lines = 0
    try:
        with open(path, "rb") as handle:
            for line in handle:
                lines += 1
                if len(sizes) < sample:
                    try:
                        sizes.append(int(json.loads(line)["bytes"]))
                    except (ValueError, KeyError, TypeError):
                        continue
    except OSError:
        return None, 0
    return (sum(sizes) // len(sizes) if sizes else None), lines
