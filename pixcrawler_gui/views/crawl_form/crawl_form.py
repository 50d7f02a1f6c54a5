"""The New crawl page: a dataset name, categories and their keywords, where each keyword's
images come from, and the options. The form is checked as it changes, by building the job
file and letting `parse_job` judge it; each problem shows next to its field, and Start stays
disabled until there are none. Job files come in by Import, by dropping them on the window,
or from a past job (Run again), and go out by Export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from celery_core.jobs.spec import JobError, JobSpec, load_job, parse_job
from celery_core.settings.envfile import atomic_write_text
from pixcrawler_gui.presentation.job_draft import (
    CategoryDraft,
    Checked,
    EntryDraft,
    JobDraft,
    check_draft,
)
from pixcrawler_gui.views.crawl_form.crawl_options import CrawlOptions
from pixcrawler_gui.views.crawl_form.form_parts import (
    banner,
    category_problem,
    dropped_file,
    escape,
)
from pixcrawler_gui.views.crawl_form.name_list import NameList
from pixcrawler_gui.views.crawl_form.source_editor import SourceEditor
from pixcrawler_gui.views.style import label

JOB_FILE_FILTER = "Job files (*.json);;All files (*)"
CHECK_DELAY_MS = 120


class CrawlForm(QWidget):
    start_requested = Signal(object)  # the JobSpec to submit
    checked_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.draft = JobDraft()
        self.checked: Checked = check_draft(self.draft)
        self.base_dir: Path = Path.home()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(CHECK_DELAY_MS)
        self._timer.timeout.connect(self.check_now)

        title = label("New crawl", "PageTitle", self, wrap=False)
        subtitle = label(
            "Describe the dataset to collect: its categories, the keywords of each, and where "
            "their images come from. Problems show next to the field as you type.",
            "PageSubtitle",
            self,
        )
        self.import_banner = banner("ErrorBanner", self)
        self.warning_banner = banner("Banner", self)

        self.options = CrawlOptions(self)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("e.g. animals (also the name of the dataset folder)")
        self.name_error = label("", "FieldError", self)
        self.name_error.hide()
        self.categories = NameList("Categories", "category", "categories", self)
        self.keywords = NameList("Keywords", "keyword", "keywords", self)
        self.source = SourceEditor(self)
        self.collect_error = label("", "FieldError", self)
        self.collect_error.hide()
        self.collect_hint = label("", "Hint", self)
        self.collect_hint.hide()

        self.import_button = QPushButton("Import job file…", self)
        self.export_button = QPushButton("Export job file…", self)
        self.summary = label("", "FormSummary", self)
        self.start_button = QPushButton("Start crawl", self)
        self.start_button.setDefault(True)
        self.start_button.setMinimumWidth(140)

        body = QWidget(self)
        column = QVBoxLayout(body)
        column.setContentsMargins(20, 16, 20, 12)
        column.addWidget(title)
        column.addWidget(subtitle)
        column.addWidget(self.import_banner)
        column.addWidget(self.warning_banner)
        name_box = QGroupBox("Dataset", body)
        name_grid = QGridLayout(name_box)
        name_grid.setVerticalSpacing(4)
        name_grid.addWidget(QLabel("Name", name_box), 0, 0)
        name_grid.addWidget(self.name_edit, 0, 1)
        name_grid.addWidget(self.name_error, 1, 1)
        name_grid.addWidget(QLabel("Save in", name_box), 2, 0)
        name_grid.addWidget(self.options.output_row, 2, 1)
        name_grid.addWidget(self.options.errors["output"], 3, 1)
        column.addWidget(name_box)
        collect = QGroupBox("What to collect", body)
        collect_row = QHBoxLayout(collect)
        collect_row.addWidget(self.categories, 2)
        collect_row.addWidget(self.keywords, 3)
        collect_row.addWidget(self.source, 4)
        collect.setMinimumHeight(230)
        column.addWidget(collect, 1)
        column.addWidget(self.collect_error)
        column.addWidget(self.collect_hint)
        options_box = QGroupBox("Options", body)
        QVBoxLayout(options_box).addWidget(self.options)
        column.addWidget(options_box)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        bar = QHBoxLayout()
        bar.setContentsMargins(20, 8, 20, 12)
        bar.addWidget(self.import_button)
        bar.addWidget(self.export_button)
        bar.addSpacing(12)
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.start_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll, 1)
        layout.addLayout(bar)

        self.name_edit.textChanged.connect(self._name_edited)
        self.categories.added.connect(self._categories_added)
        self.categories.removed.connect(self._category_removed)
        self.categories.renamed.connect(self._category_renamed)
        self.categories.current_changed.connect(self._category_selected)
        self.keywords.added.connect(self._keywords_added)
        self.keywords.removed.connect(self._keyword_removed)
        self.keywords.renamed.connect(self._keyword_renamed)
        self.keywords.current_changed.connect(self._keyword_selected)
        self.source.changed.connect(self.schedule_check)
        self.options.changed.connect(self.schedule_check)
        self.options.changed.connect(lambda: self.source.set_engines(self.draft.engines))
        self.import_button.clicked.connect(self.choose_import)
        self.export_button.clicked.connect(self.choose_export)
        self.start_button.clicked.connect(self.start)
        self.load_draft(JobDraft())

    # -- loading -------------------------------------------------------------------------------

    def load_draft(self, draft: JobDraft, base_dir: Path | None = None) -> None:
        self.draft = draft
        self.base_dir = base_dir or Path.home()
        self.name_edit.blockSignals(True)
        self.name_edit.setText(draft.dataset_name)
        self.name_edit.blockSignals(False)
        self.categories.set_names([c.name for c in draft.categories])
        self._category_selected(self.categories.current_row())
        self.options.load(draft)
        self.source.set_engines(draft.engines)
        self.check_now()

    def load_spec(self, spec: JobSpec, output_dir: str | None = None) -> None:
        self.load_draft(JobDraft.from_spec(spec, output_dir))

    def load_job_dict(self, data: dict[str, Any], output_dir: str | None = None) -> bool:
        """Fill the form from a job (e.g. a past job to run again); False if it is invalid."""
        try:
            loaded = parse_job(data, base_dir=output_dir)
        except JobError as exc:
            self.show_import_problems("This job cannot be loaded", exc)
            return False
        self.import_banner.hide()
        self.load_spec(loaded.spec, output_dir)
        self._show_warnings(loaded.warnings)
        return True

    def import_file(self, path: Path) -> bool:
        try:
            loaded = load_job(path)
        except JobError as exc:
            self.warning_banner.hide()  # about an earlier file: it would only confuse now
            self.show_import_problems(f"{path.name} is not a job file PixCrawler can use", exc)
            return False
        self.import_banner.hide()
        self.load_draft(JobDraft.from_spec(loaded.spec), base_dir=path.parent)
        self._show_warnings(loaded.warnings)
        return True

    def show_import_problems(self, headline: str, exc: JobError) -> None:
        items = "".join(f"<li>{escape(p)}</li>" for p in exc.problems[:8])
        more = len(exc.problems) - 8
        if more > 0:
            items += f"<li>… and {more} more</li>"
        text = f"<b>{escape(headline)}.</b> Nothing was changed.<ul>{items}</ul>"
        self.import_banner.text.setText(text)
        self.import_banner.show()

    def show_start_problem(self, reason: str) -> None:
        self.import_banner.text.setText(
            f"<b>The job could not be started:</b> {escape(reason)}<br>Check the connection "
            "to Redis in the status bar below, then press Start again."
        )
        self.import_banner.show()

    def _show_warnings(self, warnings: tuple[str, ...]) -> None:
        if warnings:
            items = "".join(f"<li>{escape(w)}</li>" for w in warnings[:8])
            self.warning_banner.text.setText(f"Imported, with keys left out:<ul>{items}</ul>")
        self.warning_banner.setVisible(bool(warnings))

    def choose_import(self) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self, "Import a job file", str(self.base_dir), JOB_FILE_FILTER
        )
        if name:
            self.import_file(Path(name))

    def choose_export(self) -> None:
        start = str(self.base_dir / f"{self.draft.dataset_name or 'job'}.json")
        name, _ = QFileDialog.getSaveFileName(self, "Export the job file", start, JOB_FILE_FILTER)
        if name:
            self.export_file(Path(name))

    def export_file(self, path: Path) -> None:
        """Write the job file (the form must be valid: Export is disabled otherwise)."""
        self.check_now()
        if self.checked.loaded is None:
            return
        data = self.checked.loaded.spec.to_file_dict()
        atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    # -- drag and drop -------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_file(event)
        if path is not None:
            event.acceptProposedAction()
            self.import_file(path)

    # -- editing -------------------------------------------------------------------------------

    def _current_category(self) -> CategoryDraft | None:
        row = self.categories.current_row()
        return self.draft.categories[row] if 0 <= row < len(self.draft.categories) else None

    def _name_edited(self, text: str) -> None:
        self.draft.dataset_name = text
        self.options.update_placeholder()
        self.schedule_check()

    def _categories_added(self, names: list[str]) -> None:
        self.draft.categories += [CategoryDraft(n) for n in names]
        self.schedule_check()

    def _category_removed(self, row: int) -> None:
        del self.draft.categories[row]
        self.schedule_check()

    def _category_renamed(self, row: int, name: str) -> None:
        self.draft.categories[row].name = name
        self._category_selected(row)
        self.schedule_check()

    def _category_selected(self, row: int) -> None:
        category = self._current_category()
        self.keywords.setEnabled(category is not None)
        name = category.name if category is not None else ""
        self.keywords.title.setText(f"Keywords of “{name}”" if name else "Keywords")
        self.keywords.set_names([e.name for e in category.entries] if category else [])
        self._keyword_selected(self.keywords.current_row())
        self._show_problems()

    def _keywords_added(self, names: list[str]) -> None:
        category = self._current_category()
        if category is not None:
            category.entries += [EntryDraft(n) for n in names]
            self.schedule_check()

    def _keyword_removed(self, row: int) -> None:
        category = self._current_category()
        if category is not None:
            del category.entries[row]
            self.schedule_check()

    def _keyword_renamed(self, row: int, name: str) -> None:
        category = self._current_category()
        if category is not None:
            category.entries[row].name = name
            self.source.show_entry(category.entries[row])
            self.schedule_check()

    def _keyword_selected(self, row: int) -> None:
        category = self._current_category()
        entry = None
        if category is not None and 0 <= row < len(category.entries):
            entry = category.entries[row]
        self.source.show_entry(entry)
        self._show_problems()

    # -- checking ------------------------------------------------------------------------------

    def schedule_check(self) -> None:
        self.start_button.setEnabled(False)  # until the check says the new content is fine
        self._timer.start()

    def check_now(self) -> Checked:
        self._timer.stop()
        self.checked = check_draft(self.draft, self.base_dir)
        self._show_problems()
        self.checked_changed.emit()
        return self.checked

    def _show_problems(self) -> None:
        checked = self.checked
        problems = checked.problems
        name_lines = checked.for_field(("dataset_name",))
        self.name_error.setText("\n".join(name_lines))
        self.name_error.setVisible(bool(name_lines))
        marked: dict[int, list[str]] = {}
        # Nothing to collect yet is where every form starts: a hint, not an error.
        hint = checked.for_field(("categories",))
        self.collect_hint.setText("To start, " + hint[0] if hint else "")
        self.collect_hint.setVisible(bool(hint))
        general = checked.for_field(("general",))
        for key, lines in problems.items():
            if key[0] == "category":
                marked.setdefault(key[1], []).extend(lines)
                name = self.draft.categories[key[1]].name.strip() or "(no name)"
                general += [f"Category “{name}” {category_problem(line)}" for line in lines]
            elif key[0] == "entry":
                marked.setdefault(key[1], []).append("a keyword of this category has a problem")
        self.categories.set_problems(marked)
        row = self.categories.current_row()
        entries = {key[2]: lines for key, lines in problems.items()
                   if key[0] == "entry" and key[1] == row}  # fmt: skip
        self.keywords.set_problems(entries)
        self.source.set_problems(entries.get(self.keywords.current_row(), []))
        self.collect_error.setText("\n".join(dict.fromkeys(general)))
        self.collect_error.setVisible(bool(general))
        self.options.set_problems(problems)
        valid = checked.valid
        self.start_button.setEnabled(valid)
        self.export_button.setEnabled(valid)
        self.summary.setText(self._summary_text())

    def _summary_text(self) -> str:
        count = self.checked.count()
        if self.checked.for_field(("categories",)):
            return "Add a category and its keywords to start"
        if count:
            return f"{count} problem{'s' * (count > 1)} to fix before starting"
        loaded = self.checked.loaded
        if loaded is None:
            return ""
        items = loaded.spec.work_items()
        most = sum(item.target for item in items)
        cats = len(loaded.spec.categories)
        return (
            f"Ready: {cats} categor{'ies' if cats > 1 else 'y'}, {len(items)} "
            f"keyword{'s' * (len(items) > 1)}, up to {most} images"
        )

    def start(self) -> None:
        checked = self.check_now()
        if checked.valid and checked.loaded is not None:
            self.start_requested.emit(checked.loaded.spec)
