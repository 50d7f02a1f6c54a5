"""The gallery's list: one row per kept image of the shown job, thumbnails loaded lazily.

Rows come from the dataset's manifest (when the folder is on this computer), from the
thumbnail list in Redis, and live from `ThumbnailsAdded`. A thumbnail is fetched only when a
view asks for its picture, which a list view does only for the items it paints; requests are
batched (one MGET, one decode job) and the newest win, so a fast scroll does not queue up
work for items already gone by. Pixmaps live in a bounded LRU cache.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QPixmap

from pixcrawler_gui.models.pixmap_cache import PixmapCache
from pixcrawler_gui.models.subscriptions import subscribe_for
from pixcrawler_gui.services.background import TaskSet
from pixcrawler_gui.services.events import EventHub
from pixcrawler_gui.services.jobs.job_events import JobEnded, ThumbnailsAdded
from pixcrawler_gui.services.jobs.thumbnail_loader import GalleryItem, ThumbnailLoader

ITEM_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_ROLE = Qt.ItemDataRole.UserRole + 2  # "loading", "ready" or "missing"
_Index = QModelIndex | QPersistentModelIndex


class GalleryModel(QAbstractListModel):
    categories_changed = Signal()
    batch_loaded = Signal(int)  # how many thumbnails a batch brought

    def __init__(
        self,
        hub: EventHub,
        loader: ThumbnailLoader,
        cache: PixmapCache | None = None,
        batch_size: int = 48,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.loader = loader
        self.cache = cache or PixmapCache()
        self.batch_size = batch_size
        self.job_id: str | None = None
        self.output_dir: Path | None = None
        self._root: Path | None = None
        self.fetched = 0  # thumbnails requested from the loader so far (lazy loading shows)
        self._items: list[GalleryItem] = []
        self._rows: dict[str, int] = {}  # path -> row
        self._keywords: dict[str, dict[str, None]] = {}  # category -> keywords, in order seen
        self._wanted: OrderedDict[str, GalleryItem] = OrderedDict()
        self._missing: set[str] = set()
        self._gone: set[str] = set()  # paths removed from the folder: not shown again
        self.listed = False  # the job's folder and previews have been read once
        self._tasks = TaskSet()
        self._fetching = False
        subscribe_for(self, hub, ThumbnailsAdded, self.on_thumbnails)
        subscribe_for(self, hub, JobEnded, self.on_ended)

    @property
    def root(self) -> Path | None:
        """The dataset folder when it is on this computer (a job may create it later)."""
        if self._root is None and self.output_dir is not None and self.output_dir.is_dir():
            self._root = self.output_dir
        return self._root

    # -- Qt model ------------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._items):
            return None
        item = self._items[index.row()]
        if role == ITEM_ROLE:
            return item
        if role == Qt.ItemDataRole.DecorationRole:
            pixmap = self.cache.get(item.cache_key)
            if pixmap is None and item.cache_key not in self._missing:
                self._want(item)
            return pixmap
        if role == STATUS_ROLE:
            if item.cache_key in self.cache:
                return "ready"
            return "missing" if item.cache_key in self._missing else "loading"
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(item.path).name
        if role == Qt.ItemDataRole.ToolTipRole:
            size = f"{item.width} x {item.height} px" if item.width else ""
            return f"{item.category} / {item.keyword}\n{item.path}\n{size}".strip()
        return None

    # -- content -------------------------------------------------------------------------------

    def show_job(self, job_id: str | None, output_dir: str | None) -> None:
        """Show the images of `job_id` (None: nothing)."""
        self._cancel_tasks()
        self.beginResetModel()
        self.job_id = job_id
        self.output_dir = Path(output_dir) if output_dir else None
        self._root = None
        self._items, self._rows, self._keywords = [], {}, {}
        self._wanted.clear()
        self._missing.clear()
        self._gone.clear()
        self.listed = False
        self.endResetModel()
        self.categories_changed.emit()
        if job_id is not None:
            self._tasks.spawn(self._populate(job_id))

    async def _populate(self, job_id: str) -> None:
        await self._populate_from_disk(job_id)
        records = await self.loader.records(job_id)
        if self.job_id == job_id:
            self.add_items([GalleryItem.from_record(r) for r in records])
            self.listed = True

    def on_ended(self, event: JobEnded) -> None:
        """The manifest lists every kept image (previews in Redis are a sample): add them."""
        if event.progress.job_id == self.job_id and self.root is not None:
            self._tasks.spawn(self._populate_from_disk(event.progress.job_id))

    async def _populate_from_disk(self, job_id: str) -> None:
        root = self.root
        if root is not None:
            entries, gone = await self.loader.on_disk(root)
            if self.job_id == job_id:
                for path in gone:  # a preview may have come from Redis meanwhile
                    self.remove_path(path)
                self.add_items([GalleryItem.from_manifest(job_id, e) for e in entries])

    def on_thumbnails(self, event: ThumbnailsAdded) -> None:
        if event.job_id == self.job_id:
            self.add_items([GalleryItem.from_record(r) for r in event.records])

    def add_items(self, items: list[GalleryItem]) -> None:
        """Append the items not shown yet; an item with Redis bytes completes a disk one."""
        fresh: list[GalleryItem] = []
        for item in items:
            if item.path in self._gone:
                continue
            row = self._rows.get(item.path)
            if row is None:
                self._rows[item.path] = len(self._items) + len(fresh)
                fresh.append(item)
            elif row < len(self._items):  # known: complete it (preview key, image size)
                known = self._items[row]
                self._items[row] = replace(
                    known,
                    redis_key=known.redis_key or item.redis_key,
                    width=known.width or item.width,
                    height=known.height or item.height,
                )
        if not fresh:
            return
        new_category = False
        for item in fresh:
            keywords = self._keywords.setdefault(item.category, {})
            new_category = new_category or item.keyword not in keywords
            keywords[item.keyword] = None
        first = len(self._items)
        self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
        self._items.extend(fresh)
        self.endInsertRows()
        if new_category:
            self.categories_changed.emit()

    def remove_path(self, path: str) -> None:
        """Stop showing an image that left the folder (and do not show it again)."""
        self._gone.add(path)
        row = self._rows.pop(path, None)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._items[row]
        self._rows = {item.path: n for n, item in enumerate(self._items)}
        self.endRemoveRows()

    def categories(self) -> list[str]:
        return list(self._keywords)

    def keywords(self, category: str | None) -> list[str]:
        if category is None:
            return list(dict.fromkeys(k for ks in self._keywords.values() for k in ks))
        return list(self._keywords.get(category, {}))

    @property
    def fetching(self) -> bool:
        """Whether thumbnails are being fetched or wait to be."""
        return self._fetching or bool(self._wanted)

    def row_of(self, path: str) -> int:
        return self._rows.get(path, -1)

    def item(self, row: int) -> GalleryItem | None:
        return self._items[row] if 0 <= row < len(self._items) else None

    # -- lazy loading --------------------------------------------------------------------------

    def _want(self, item: GalleryItem) -> None:
        self._wanted[item.cache_key] = item
        self._wanted.move_to_end(item.cache_key)
        while len(self._wanted) > 4 * self.batch_size:
            self._wanted.popitem(last=False)  # scrolled past long ago
        if not self._fetching:
            self._fetching = True
            self._tasks.spawn(self._fetch())

    async def _fetch(self) -> None:
        try:
            while self._wanted:
                batch: list[GalleryItem] = []
                while self._wanted and len(batch) < self.batch_size:
                    batch.append(self._wanted.popitem(last=True)[1])
                job_id = self.job_id
                self.fetched += len(batch)
                images = await self.loader.thumbnails(batch, self.root)
                if job_id != self.job_id:
                    continue
                rows = []
                for item, image in zip(batch, images, strict=True):
                    if image is None:
                        self._missing.add(item.cache_key)
                    else:
                        self.cache.put(item.cache_key, QPixmap.fromImage(image))
                    row = self._rows.get(item.path)
                    if row is not None:
                        rows.append(row)
                for row in rows:
                    index = self.index(row)
                    self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])
                self.batch_loaded.emit(len(batch))
        finally:
            self._fetching = False

    # -- tasks ---------------------------------------------------------------------------------

    def _cancel_tasks(self) -> None:
        self._tasks.cancel()
        self._fetching = False

    async def close(self) -> None:
        self._fetching = False
        await self._tasks.close()


class GalleryFilter(QSortFilterProxyModel):
    """Only the images of one category and/or keyword (None: all)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.category: str | None = None
        self.keyword: str | None = None

    def set_filter(self, category: str | None, keyword: str | None) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+
            self.beginFilterChange()
            self.category, self.keyword = category, keyword
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.category, self.keyword = category, keyword
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        model = self.sourceModel()
        if not isinstance(model, GalleryModel):
            return True
        item = model.item(source_row)
        if item is None:
            return False
        if self.category is not None and item.category != self.category:
            return False
        return self.keyword is None or item.keyword == self.keyword
