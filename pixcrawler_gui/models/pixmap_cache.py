"""A bounded least-recently-used cache of pixmaps, sized in bytes of pixel data."""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtGui import QPixmap

DEFAULT_BUDGET = 48 * 1024 * 1024  # about 750 thumbnails of 128 x 128: several screens full


def pixmap_bytes(pixmap: QPixmap) -> int:
    return pixmap.width() * pixmap.height() * max(1, pixmap.depth() // 8)


class PixmapCache:
    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.used = 0
        self._items: OrderedDict[str, QPixmap] = OrderedDict()

    def get(self, key: str) -> QPixmap | None:
        pixmap = self._items.get(key)
        if pixmap is not None:
            self._items.move_to_end(key)
        return pixmap

    def put(self, key: str, pixmap: QPixmap) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= pixmap_bytes(old)
        self._items[key] = pixmap
        self.used += pixmap_bytes(pixmap)
        while self.used > self.budget and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self.used -= pixmap_bytes(evicted)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
        self.used = 0
