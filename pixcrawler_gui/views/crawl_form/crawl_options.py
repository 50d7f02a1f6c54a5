"""The crawl form's options: how many images, how small is too small, how alike is a
duplicate, which search engines, which label files, and where the dataset goes."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from celery_core.jobs.spec import KNOWN_ENGINES, LABEL_FORMATS
from pixcrawler_gui.presentation.job_draft import FieldKey, JobDraft
from pixcrawler_gui.views.style import label

ENGINE_NAMES = {"bing": "Bing", "duckduckgo": "DuckDuckGo", "google": "Google", "baidu": "Baidu"}


def _spin(low: int, high: int, suffix: str, tip: str, parent: QWidget) -> QSpinBox:
    spin = QSpinBox(parent)
    spin.setRange(low, high)
    spin.setSuffix(suffix)
    spin.setToolTip(tip)
    return spin


class CrawlOptions(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.draft = JobDraft()
        self._loading = False
        self.max_images = _spin(0, 100_000, " images", "Images kept per keyword at most", self)
        self.min_width = _spin(0, 100_000, " px wide", "Narrower images are dropped", self)
        self.min_height = _spin(0, 100_000, " px high", "Lower images are dropped", self)
        self.dedup = _spin(0, 32, " bits", "", self)
        self.dedup.setToolTip(
            "Two images whose perceptual hashes differ by at most this many bits count as the "
            "same picture, and only the first is kept. 0: only identical pictures; 6 suits "
            "most crawls (resized and recompressed copies are caught)."
        )
        self.engines = {name: QCheckBox(ENGINE_NAMES[name], self) for name in KNOWN_ENGINES}
        self.generate_labels = QCheckBox("Write label files:", self)
        self.generate_labels.setToolTip("Write label files listing each image with its category")
        self.formats = {fmt: QCheckBox(fmt, self) for fmt in LABEL_FORMATS}
        self.output_dir = QLineEdit(self)
        self.choose_button = QPushButton("Choose…", self)
        self.errors: dict[str, QLabel] = {}

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(4)

        def add(
            row: int, column: int, title: str, widget: QWidget, key: str, span: int = 1
        ) -> None:
            grid.addWidget(QLabel(title, self), 2 * row, 2 * column)
            grid.addWidget(widget, 2 * row, 2 * column + 1, 1, span)
            error = label("", "FieldError", self)
            error.hide()
            self.errors[key] = error
            grid.addWidget(error, 2 * row + 1, 2 * column + 1, 1, span)

        size = _row(self, self.min_width, QLabel("x", self), self.min_height)
        add(0, 0, "Images per keyword", _row(self, self.max_images), "max_images")
        add(0, 1, "Duplicates within", _row(self, self.dedup), "dedup")
        add(1, 0, "Smallest image", size, "min_size", span=3)
        add(2, 0, "Search engines", _row(self, *self.engines.values()), "engines", span=3)
        labels = _row(self, self.generate_labels, *self.formats.values())
        add(3, 0, "Labels", labels, "labels", span=3)
        grid.setColumnStretch(3, 1)
        # Where the dataset goes sits with its name, in the form's first box.
        self.output_row = _row(self, self.output_dir, self.choose_button, stretch=False)
        self.errors["output"] = label("", "FieldError", self)
        self.errors["output"].hide()
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        for spin in (self.max_images, self.min_width, self.min_height, self.dedup):
            spin.valueChanged.connect(self._edited)
        for box in (*self.engines.values(), *self.formats.values(), self.generate_labels):
            box.toggled.connect(self._edited)
        self.output_dir.textChanged.connect(self._edited)
        self.choose_button.clicked.connect(self.choose_folder)

    def load(self, draft: JobDraft) -> None:
        self.draft = draft
        self._loading = True
        self.max_images.setValue(draft.max_images)
        self.min_width.setValue(draft.min_width)
        self.min_height.setValue(draft.min_height)
        self.dedup.setValue(draft.dedup_threshold)
        for name, box in self.engines.items():
            box.setChecked(name in draft.engines)
        self.generate_labels.setChecked(draft.generate_labels)
        for fmt, box in self.formats.items():
            box.setChecked(fmt in draft.label_formats)
            box.setEnabled(draft.generate_labels)
        self.output_dir.setText(draft.output_dir)
        self._loading = False
        self.update_placeholder()

    def update_placeholder(self) -> None:
        from celery_core.jobs.spec import JobSpec

        name = self.draft.dataset_name.strip() or "<dataset name>"
        try:
            default = JobSpec.model_construct(dataset_name=name, categories={}).dataset_root()
        except Exception:
            default = None
        self.output_dir.setPlaceholderText(f"{default}  (the default)" if default else "")

    def _edited(self) -> None:
        if self._loading:
            return
        d = self.draft
        d.max_images = self.max_images.value()
        d.min_width = self.min_width.value()
        d.min_height = self.min_height.value()
        d.dedup_threshold = self.dedup.value()
        # Engines keep the order of the job file; a newly ticked one goes last.
        d.engines = [e for e in d.engines if self.engines[e].isChecked()] + [
            e for e, box in self.engines.items() if box.isChecked() and e not in d.engines
        ]
        d.generate_labels = self.generate_labels.isChecked()
        d.label_formats = [f for f, box in self.formats.items() if box.isChecked()]
        for box in self.formats.values():
            box.setEnabled(d.generate_labels)
        d.output_dir = self.output_dir.text()
        self.changed.emit()

    def choose_folder(self) -> None:
        start = self.output_dir.text() or self.output_dir.placeholderText().split("  (")[0]
        folder = QFileDialog.getExistingDirectory(self, "Save the dataset in", start)
        if folder:
            self.output_dir.setText(folder)

    def set_problems(self, problems: dict[FieldKey, list[str]]) -> None:
        by_widget = {
            "max_images": ["max_images"],
            "min_size": ["min_width", "min_height"],
            "dedup": ["dedup_threshold"],
            "engines": ["engines"],
            "labels": ["label_formats", "generate_labels"],
            "output": ["output_dir"],
        }
        for key, options in by_widget.items():
            lines = [line for o in options for line in problems.get(("option", o), [])]
            self.errors[key].setText("\n".join(lines))
            self.errors[key].setVisible(bool(lines))


def _row(parent: QWidget, *widgets: QWidget, stretch: bool = True) -> QWidget:
    holder = QWidget(parent)
    row = QHBoxLayout(holder)
    row.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        row.addWidget(widget, 1 if isinstance(widget, QLineEdit) else 0)
    if stretch:
        row.addStretch(1)
    return holder
