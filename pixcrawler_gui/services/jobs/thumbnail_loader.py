"""Thumbnails and dataset details for the gallery: from Redis (any worker, any machine) or
from the dataset folder when it is on this computer.

Decoding and disk reads run in a thread pool (QImage may be used off the GUI thread; QPixmap
may not): callers get QImages and turn them into pixmaps on the GUI thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QFile, QSize, Qt
from PySide6.QtGui import QImage, QImageReader

from celery_core.crawler.dataset.writer import MANIFEST_NAME, Dataset, ManifestEntry
from celery_core.jobs.redis_keys import ThumbnailRecord, thumbs_key

THUMBNAIL_SIZE = 128


@dataclass(frozen=True)
class GalleryItem:
    """One kept image: where it is in the dataset, and where its thumbnail bytes are."""

    job_id: str
    path: str  # relative to the dataset root, "/" separators
    category: str
    keyword: str
    width: int = 0
    height: int = 0
    redis_key: str | None = None

    @property
    def cache_key(self) -> str:
        return f"{self.job_id}:{self.path}"

    @classmethod
    def from_record(cls, record: ThumbnailRecord) -> GalleryItem:
        # The record's size is the preview's; the image's own is in the manifest.
        return cls(
            record.job_id, record.path, record.category, record.keyword, redis_key=record.key
        )

    @classmethod
    def from_manifest(cls, job_id: str, entry: ManifestEntry) -> GalleryItem:
        return cls(job_id, entry.path, entry.category, entry.keyword, entry.width, entry.height)


ClientGetter = Callable[[], Any]  # the watcher's connected redis.asyncio client, or None


class ThumbnailLoader:
    def __init__(
        self, executor: Executor, client: ClientGetter, size: int = THUMBNAIL_SIZE
    ) -> None:
        self.executor = executor
        self.client = client
        self.size = size

    async def thumbnails(self, items: list[GalleryItem], root: Path | None) -> list[QImage | None]:
        """Each item's thumbnail: Redis bytes when there, else scaled from the local file."""
        loop = asyncio.get_running_loop()
        raws: list[bytes | None] = [None] * len(items)
        client = self.client()
        keyed = [i for i, item in enumerate(items) if item.redis_key]
        if client is not None and keyed:
            try:
                found = await client.mget([items[i].redis_key for i in keyed])
            except Exception:  # Redis went away: the local files may still do
                found = [None] * len(keyed)
            for i, raw in zip(keyed, found, strict=True):
                raws[i] = raw
        paths = [(root / item.path) if root is not None else None for item in items]
        return await loop.run_in_executor(self.executor, self._decode_all, raws, paths)

    def _decode_all(
        self, raws: list[bytes | None], paths: list[Path | None]
    ) -> list[QImage | None]:
        return [self._decode(raw, path) for raw, path in zip(raws, paths, strict=True)]

    def _decode(self, raw: bytes | None, path: Path | None) -> QImage | None:
        if raw:
            image = QImage.fromData(QByteArray(raw))
            if not image.isNull():
                return image
        if path is not None and path.is_file():
            return scaled_image(path, self.size)
        return None

    async def records(self, job_id: str) -> list[ThumbnailRecord]:
        """Every thumbnail record of a job still in Redis (at most the per-job cap)."""
        client = self.client()
        if client is None:
            return []
        try:
            raws = await client.lrange(thumbs_key(job_id), 0, -1)
        except Exception:
            return []
        out = []
        for raw in raws:
            try:
                out.append(ThumbnailRecord.from_json(raw))
            except (ValueError, TypeError):
                continue
        return out

    async def manifest(self, root: Path) -> list[ManifestEntry]:
        """The dataset's manifest when the folder is on this computer, else nothing."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, read_manifest, root)

    async def on_disk(self, root: Path) -> tuple[list[ManifestEntry], set[str]]:
        """The manifest's images still in the folder (one per path), and the paths of those
        removed from it (a dataset being curated)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, images_on_disk, root)

    async def move_to_trash(self, path: Path) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, move_to_trash, path)

    async def full_image(self, path: Path, bound: int) -> QImage | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, scaled_image, path, bound)


def move_to_trash(path: Path) -> bool:
    """The system's trash (the user can take it back); False where there is none."""
    return bool(QFile.moveToTrash(str(path)))


def images_on_disk(root: Path) -> tuple[list[ManifestEntry], set[str]]:
    present: dict[str, ManifestEntry] = {}
    gone: set[str] = set()
    for entry in read_manifest(root):
        if (root / entry.path).is_file():
            present[entry.path] = entry
        else:
            gone.add(entry.path)
    return list(present.values()), gone - set(present)


def read_manifest(root: Path) -> list[ManifestEntry]:
    if not (root / MANIFEST_NAME).is_file():
        return []
    try:
        return Dataset(root).read_manifest()
    except (OSError, json.JSONDecodeError):
        return []


def scaled_image(path: Path, bound: int) -> QImage | None:
    """The image at `path` scaled to fit `bound` x `bound`, decoded at that size when the
    format allows (a JPEG decodes at 1/2, 1/4 or 1/8 scale much faster)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and (size.width() > bound or size.height() > bound):
        reader.setScaledSize(size.scaled(QSize(bound, bound), Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    return None if image.isNull() else image
