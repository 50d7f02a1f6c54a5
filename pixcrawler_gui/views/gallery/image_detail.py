"""The gallery's side panel: the selected image, large, with what the manifest says about it
(source URL, size, format, hashes), a button to open its folder and one to move it to the
trash."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from celery_core.crawler.dataset.writer import ManifestEntry
from pixcrawler_gui.desktop.open_path import open_path
from pixcrawler_gui.services.jobs.thumbnail_loader import GalleryItem
from pixcrawler_gui.views.style import label

PREVIEW_SIZE = 300


class ImageDetail(QWidget):
    open_requested = Signal()
    trash_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.item: GalleryItem | None = None
        self.path: Path | None = None
        self.picture = QLabel(self)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(PREVIEW_SIZE, 220)
        self.picture.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.picture.setObjectName("Preview")
        self.note = label("", "Hint", self)
        self.note.hide()
        self.facts = label(
            "Click an image to see it larger, with where it came from.", "Hint", self
        )
        self.facts.setTextFormat(Qt.TextFormat.RichText)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.facts.setOpenExternalLinks(True)
        self.open_button = QPushButton("Open its folder", self)
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_folder)
        self.trash_button = QPushButton("Move to trash", self)
        self.trash_button.setToolTip(
            "Take this image out of the dataset (Delete key). Running the job again replaces "
            "it with a new one and does not fetch this one again."
        )
        self.trash_button.setEnabled(False)
        self.trash_button.clicked.connect(self.trash_requested)
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 0, 0, 0)
        column.addWidget(self.picture)
        column.addWidget(self.note)
        column.addWidget(self.facts)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.trash_button)
        buttons.addStretch(1)
        column.addLayout(buttons)
        column.addStretch(1)

    def clear(self) -> None:
        self.item = None
        self.path = None
        self.picture.clear()
        self.note.hide()
        self.facts.setText("Click an image to see it larger, with where it came from.")
        self.open_button.setEnabled(False)
        self.trash_button.setEnabled(False)

    def show_item(
        self,
        item: GalleryItem,
        local: Path | None,
        entry: ManifestEntry | None,
        thumbnail: QPixmap | None,
    ) -> None:
        """Show `item`: `local` is its file when on this computer; until the full image is
        decoded (`show_full`), or when there is none here, the thumbnail stands in."""
        self.item = item
        self.path = local
        if thumbnail is not None:
            self._set_picture(thumbnail)
        else:
            self.picture.clear()
        if local is None:
            self.note.setText(
                "This is the preview: the full image is on the computer of the worker that "
                "downloaded it."
            )
            self.note.show()
        else:
            self.note.hide()
        self.facts.setText(_facts(item, entry, local))
        self.open_button.setEnabled(local is not None)
        self.trash_button.setEnabled(local is not None)

    def show_full(self, item: GalleryItem, image: QImage) -> None:
        if item == self.item:
            self._set_picture(QPixmap.fromImage(image))

    def _set_picture(self, pixmap: QPixmap) -> None:
        bound = max(PREVIEW_SIZE, min(self.picture.width(), 520))
        if pixmap.width() > bound or pixmap.height() > bound:
            pixmap = pixmap.scaled(
                bound, bound, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )  # fmt: skip
        self.picture.setPixmap(pixmap)

    def open_folder(self) -> bool:
        if self.path is None:
            return False
        self.open_requested.emit()
        return open_path(self.path.parent, "folder", self)


def _facts(item: GalleryItem, entry: ManifestEntry | None, local: Path | None) -> str:
    esc = html.escape
    rows = [("Keyword", f"{item.category} / {item.keyword}"), ("File", item.path)]
    if entry is not None:
        rows.append(("Size", f"{entry.width} x {entry.height} px, {_bytes(entry.bytes)}"))
        rows.append(("Format", entry.format))
        url = entry.final_url or entry.url
        if url:
            link = f"<a href='{esc(url, quote=True)}'>{esc(_clip(url))}</a>"
            rows.append(("URL", link))
        if entry.source_page:
            rows.append(("Found on", _clip(entry.source_page)))
        rows.append(("Source", entry.source))
        rows.append(("SHA-256", f"<code>{entry.sha256[:16]}…</code>"))
        rows.append(("Perceptual hash", f"<code>{entry.phash}</code>"))
        rows.append(("Downloaded", entry.fetched_at))
    elif item.width:
        rows.append(("Size", f"{item.width} x {item.height} px"))
        rows.append(("Details", "in the dataset's manifest, on the worker's computer"))
    cells = "".join(
        f"<tr><td style='color:#5f6670;padding-right:8px'>{esc(name)}</td>"
        f"<td>{value if name in ('URL', 'SHA-256', 'Perceptual hash') else esc(value)}</td></tr>"
        for name, value in rows
    )
    return f"<table>{cells}</table>"


def _bytes(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def _clip(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
