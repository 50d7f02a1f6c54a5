"""The Gallery page: the images of one job as they are kept, filtered by category and keyword;
click one to see it larger with where it came from."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from celery_core.crawler.dataset.writer import ManifestEntry
from pixcrawler_gui.models.gallery_model import ITEM_ROLE, STATUS_ROLE, GalleryFilter, GalleryModel
from pixcrawler_gui.models.jobs_model import JobsModel
from pixcrawler_gui.services.background import TaskSet
from pixcrawler_gui.services.events import EventHub
from pixcrawler_gui.services.jobs.thumbnail_loader import (
    THUMBNAIL_SIZE,
    GalleryItem,
    ThumbnailLoader,
)
from pixcrawler_gui.views.gallery.image_detail import ImageDetail
from pixcrawler_gui.views.style import label

CELL = QSize(THUMBNAIL_SIZE + 16, THUMBNAIL_SIZE + 30)
ALL = "__all__"


class ThumbnailDelegate(QStyledItemDelegate):
    """A picture (or a grey box while it loads) over its file name; a fixed size, so the view
    asks nothing of items it does not paint."""

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        return CELL

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        rect: QRect = option.rect
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(rect.adjusted(2, 2, -2, -2), QColor("#dde7f7"))
        box = QRect(rect.x() + 8, rect.y() + 6, THUMBNAIL_SIZE, THUMBNAIL_SIZE)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            size = pixmap.size().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(box.center())
            painter.drawPixmap(target, pixmap)
        else:
            painter.fillRect(box, QColor("#eceef2"))
            painter.setPen(QColor("#8a8f98"))
            missing = index.data(STATUS_ROLE) == "missing"
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, "no preview" if missing else "…")
        painter.setPen(QColor("#3b4048"))
        text_rect = QRect(rect.x() + 4, box.bottom() + 4, rect.width() - 8, 18)
        name = option.fontMetrics.elidedText(
            str(index.data(Qt.ItemDataRole.DisplayRole) or ""),
            Qt.TextElideMode.ElideMiddle,
            text_rect.width(),
        )
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, name)
        painter.restore()


class GalleryPage(QWidget):
    run_again = Signal(str)  # job id: fill the crawl form with its settings, to top it up

    def __init__(
        self,
        hub: EventHub,
        loader: ThumbnailLoader,
        jobs: JobsModel,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.loader = loader
        self.jobs = jobs
        self._choices: list[tuple[str, str, set[str]]] | None = None  # None: not filled yet
        self._asked: str | None = None  # Show images on a job: offered even without images
        self.model = GalleryModel(hub, loader, parent=self)
        self.filter = GalleryFilter(self)
        self.filter.setSourceModel(self.model)
        self.manifest: dict[str, ManifestEntry] = {}
        self._tasks = TaskSet()

        title = label("Gallery", "PageTitle", self, wrap=False)
        subtitle = label(
            "The images a job kept, as they come in. Pick a job, narrow it down to a category "
            "or a keyword, and click an image to see where it came from. Move the ones you do "
            "not want to the trash; running the job again replaces them.",
            "PageSubtitle",
            self,
        )
        self.job_combo = QComboBox(self)
        self.job_combo.setMinimumWidth(260)
        self.category_combo = QComboBox(self)
        self.keyword_combo = QComboBox(self)
        for combo in (self.category_combo, self.keyword_combo):
            combo.setMinimumWidth(160)
        self.count = label("", "Hint", self, wrap=False)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Job", self))
        bar.addWidget(self.job_combo)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Category", self))
        bar.addWidget(self.category_combo)
        bar.addWidget(QLabel("Keyword", self))
        bar.addWidget(self.keyword_combo)
        bar.addStretch(1)
        bar.addWidget(self.count)

        self.view = QListView(self)
        self.view.setModel(self.filter)
        self.view.setItemDelegate(ThumbnailDelegate(self.view))
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setUniformItemSizes(True)
        self.view.setGridSize(CELL)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)
        # Several at once (Shift/Ctrl-click) for the trash; the panel shows the current one.
        self.view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.empty = label("", "EmptyText", self)
        self.notice = label("", "Hint", self)  # what the last action did
        self.again_button = QPushButton("Run the job again…", self)
        self.again_button.setToolTip("Open this job's settings in New crawl, to top it up")
        self.again_button.clicked.connect(self._run_again)
        self.notice_row = QWidget(self)
        notice_line = QHBoxLayout(self.notice_row)
        notice_line.setContentsMargins(0, 0, 0, 0)
        notice_line.addWidget(self.notice, 1)
        notice_line.addWidget(self.again_button)
        self.notice_row.hide()
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail = ImageDetail(self)
        left = QWidget(self)
        left_column = QVBoxLayout(left)
        left_column.setContentsMargins(0, 0, 0, 0)
        left_column.addWidget(self.notice_row)
        left_column.addWidget(self.empty)
        left_column.addWidget(self.view, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(left)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 12)
        layout.addWidget(title)
        layout.addWidget(subtitle)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)

        self.job_combo.currentIndexChanged.connect(self._job_chosen)
        self.category_combo.currentIndexChanged.connect(self._category_chosen)
        self.keyword_combo.currentIndexChanged.connect(self._filter_changed)
        self.model.categories_changed.connect(self._refill_filters)
        self.model.rowsInserted.connect(self._update_count)
        self.model.modelReset.connect(self._update_count)
        self.view.selectionModel().currentChanged.connect(self._clicked)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.detail.trash_requested.connect(self.trash_current)
        trash = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.view)
        trash.setContext(Qt.ShortcutContext.WidgetShortcut)
        trash.activated.connect(self.trash_current)
        self.model.rowsRemoved.connect(self._update_count)
        jobs.rowsInserted.connect(self._refill_jobs)
        jobs.rowsRemoved.connect(self._refill_jobs)
        jobs.modelReset.connect(self._refill_jobs)
        jobs.dataChanged.connect(self._refill_jobs)  # a job's first image makes it a choice
        self._refill_jobs()

    # -- jobs ----------------------------------------------------------------------------------

    def _refill_jobs(self) -> None:
        """The jobs with images, newest first; a job and its retries (one folder) are one."""
        choices = self.jobs.gallery_choices(self._asked)
        before = self._choices
        self._choices = choices
        if before is not None and [c[:2] for c in choices] == [c[:2] for c in before]:
            return
        current = self.model.job_id
        index = self._choice_of(current) if current else -1
        self.job_combo.blockSignals(True)
        self.job_combo.clear()
        for text, job_id, _ in choices:
            self.job_combo.addItem(text, job_id)
        self.job_combo.setCurrentIndex(index)
        self.job_combo.blockSignals(False)
        if index < 0 and self.job_combo.count():
            self.job_combo.setCurrentIndex(0)  # none shown yet, or the one shown was removed
        elif index < 0 and current is not None:
            self._job_chosen(-1)  # the last job left the list
        elif index >= 0 and self.job_combo.itemData(index) != current:
            self._job_chosen(index)  # another job, or a retry joined the shown one
        self._update_count()

    def _choice_of(self, job_id: str) -> int:
        """The picker's entry showing `job_id`'s images (its own, or its family's), or -1."""
        for index, (_, _, members) in enumerate(self._choices or ()):
            if job_id in members:
                return index
        return -1

    def show_job(self, job_id: str) -> None:
        """Show `job_id`'s images (a job and its retries share them)."""
        if self._choice_of(job_id) < 0:
            self._asked = job_id
            self._refill_jobs()
        index = self._choice_of(job_id)
        if index < 0:
            return
        if index == self.job_combo.currentIndex() and self.model.job_id == self.job_combo.itemData(
            index
        ):
            return
        self.job_combo.setCurrentIndex(index)

    def _job_chosen(self, index: int) -> None:
        job_id = self.job_combo.itemData(index) if index >= 0 else None
        job = self.jobs.job(job_id) if job_id else None
        self.manifest = {}
        self.detail.clear()
        self.notice_row.hide()
        self.model.show_job(job_id, job.info.output_dir if job else None)

    # -- filters -------------------------------------------------------------------------------

    def _refill_filters(self) -> None:
        category = self.category_combo.currentData()
        self.category_combo.blockSignals(True)
        self.category_combo.clear()
        self.category_combo.addItem("All categories", ALL)
        for name in self.model.categories():
            self.category_combo.addItem(name, name)
        self.category_combo.setCurrentIndex(max(0, self.category_combo.findData(category)))
        self.category_combo.blockSignals(False)
        self._refill_keywords()

    def _refill_keywords(self) -> None:
        category = self.category_combo.currentData()
        keyword = self.keyword_combo.currentData()
        self.keyword_combo.blockSignals(True)
        self.keyword_combo.clear()
        self.keyword_combo.addItem("All keywords", ALL)
        for name in self.model.keywords(None if category in (None, ALL) else category):
            self.keyword_combo.addItem(name, name)
        self.keyword_combo.setCurrentIndex(max(0, self.keyword_combo.findData(keyword)))
        self.keyword_combo.blockSignals(False)
        self._filter_changed()

    def _category_chosen(self) -> None:
        self._refill_keywords()

    def set_filter(self, category: str | None, keyword: str | None) -> None:
        self.category_combo.setCurrentIndex(max(0, self.category_combo.findData(category or ALL)))
        self.keyword_combo.setCurrentIndex(max(0, self.keyword_combo.findData(keyword or ALL)))

    def _filter_changed(self) -> None:
        category = self.category_combo.currentData()
        keyword = self.keyword_combo.currentData()
        self.filter.set_filter(
            None if category in (None, ALL) else category,
            None if keyword in (None, ALL) else keyword,
        )
        self._update_count()

    def _update_count(self) -> None:
        shown, total = self.filter.rowCount(), self.model.rowCount()
        text = f"{shown} image{'s' * (shown != 1)}"
        self.count.setText(text if shown == total else f"{text} of {total}")
        if self.model.job_id is None:
            message = "No job yet: images appear here as a crawl keeps them."
        elif total == 0:
            message = "No images yet: they appear here as the workers keep them."
        else:
            message = ""
        self.empty.setText(message)
        self.empty.setVisible(bool(message))

    # -- the detail panel ----------------------------------------------------------------------

    def _clicked(self, current: QModelIndex) -> None:
        item = current.data(ITEM_ROLE) if current.isValid() else None
        if isinstance(item, GalleryItem):
            self._tasks.spawn(self._show_detail(item))

    async def _show_detail(self, item: GalleryItem) -> None:
        root = self.model.root
        local = root / item.path if root is not None else None
        if local is not None and not local.is_file():
            local = None
        if local is not None and root is not None and item.path not in self.manifest:
            entries = await self.loader.manifest(root)
            self.manifest = {e.path: e for e in entries}
        thumbnail = self.model.cache.get(item.cache_key)
        self.detail.show_item(item, local, self.manifest.get(item.path), thumbnail)
        if local is not None:
            image = await self.loader.full_image(local, 520)
            if image is not None:
                self.detail.show_full(item, image)

    def _selected_items(self) -> list[GalleryItem]:
        indexes = sorted(self.view.selectionModel().selectedIndexes(), key=lambda i: i.row())
        return [item for i in indexes if isinstance(item := i.data(ITEM_ROLE), GalleryItem)]

    def _selection_changed(self) -> None:
        count = len(self._selected_items())
        self.detail.trash_button.setText(f"Move {count} to trash" if count > 1 else "Move to trash")

    def trash_current(self) -> None:
        """Move the selected images (or the one shown) to the system's trash."""
        root = self.model.root
        items = self._selected_items() or ([self.detail.item] if self.detail.item else [])
        if root is not None and items:
            self._tasks.spawn(self._trash(root, items))

    async def _trash(self, root: Path, items: list[GalleryItem]) -> None:
        shown = (self.model.index(self.model.row_of(item.path)) for item in items)
        first = min(self.filter.mapFromSource(index).row() for index in shown)
        moved: list[GalleryItem] = []
        for item in items:
            if await self.loader.move_to_trash(root / item.path):
                moved.append(item)
        for item in moved:
            self.model.remove_path(item.path)
        if moved and self.filter.rowCount():
            row = min(max(0, first), self.filter.rowCount() - 1)
            self.view.setCurrentIndex(self.filter.index(row, 0))
        elif moved:
            self.detail.clear()
        self._notify(_trash_message(moved, len(items) - len(moved)), offer_run=bool(moved))

    def _notify(self, text: str, offer_run: bool) -> None:
        self.notice.setText(text)
        job = self.jobs.job(self.model.job_id) if self.model.job_id else None
        self.again_button.setVisible(offer_run and job is not None and job.info.spec is not None)
        self.notice_row.show()

    def _run_again(self) -> None:
        if self.model.job_id is not None:
            self.run_again.emit(self.model.job_id)

    async def stop(self) -> None:
        await self._tasks.close()
        await self.model.close()


def _trash_message(moved: list[GalleryItem], refused: int) -> str:
    parts = []
    if len(moved) == 1:
        name = Path(moved[0].path).name
        parts.append(f"Moved {name} to the trash. Running the job again replaces it.")
    elif moved:
        parts.append(
            f"Moved {len(moved)} images to the trash. Running the job again replaces them."
        )
    if refused:
        parts.append(
            f"{refused} could not be moved to the trash (this drive may have none): delete "
            f"{'it' if refused == 1 else 'them'} from the folder instead."
        )
    return " ".join(parts)


__all__ = ["GalleryPage", "ThumbnailDelegate"]
