"""A settings form generated from settings classes: a page per group, a row per field."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from celery_core.settings.file_settings import FileSettings
from pixcrawler_gui.services.settings_editor import EditorField, SettingsEditor
from pixcrawler_gui.views.settings.setting_widgets import Binding, BoolBinding, make_binding
from pixcrawler_gui.views.style import label

SECTION_TITLES = {"CelerySettings": "Task system", "CrawlerSettings": "Crawler"}
_RESTART_WORDS = {
    "worker": "Takes effect when workers restart.",
    "app": "Takes effect when PixCrawler restarts.",
    "none": "Takes effect at once.",
}


def section_title(owner: type[FileSettings]) -> str:
    name = owner.__name__
    return SECTION_TITLES.get(name, name.removesuffix("Settings") or name)


class FieldRow:
    """The widgets of one field: input, description, environment note and error."""

    def __init__(self, field: EditorField, binding: Binding, parent: QWidget) -> None:
        self.field = field
        self.binding = binding
        self.description = label(field.info.description, "Description", parent)
        self.error = label("", "FieldError", parent)
        self.error.hide()
        # A value in a settings file that could not be used: what, where, and what is used.
        self.problem = label("", "Badge", parent)
        self.problem.hide()
        self.override = label(
            f"Set by the environment variable {field.info.env_var}, which wins over the "
            "settings file: change it there.",
            "Badge",
            parent,
        )
        self.override.setVisible(field.overridden)
        binding.set_enabled(not field.overridden)
        tooltip = f"{field.info.description}\n\n{_RESTART_WORDS[field.info.restart]}"
        tooltip += f"\nEnvironment variable: {field.info.env_var}"
        binding.widget.setToolTip(tooltip)
        self.container = QWidget(parent)
        column = QVBoxLayout(self.container)
        column.setContentsMargins(0, 0, 0, 6)
        column.setSpacing(2)
        column.addWidget(binding.widget, 0, Qt.AlignmentFlag.AlignLeft)
        column.addWidget(self.error)
        column.addWidget(self.problem)
        column.addWidget(self.description)
        column.addWidget(self.override)

    def show_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))

    def show_problem(self, note: str | None) -> None:
        self.problem.setText(note or "")
        self.problem.setVisible(bool(note))


class SettingsForm(QWidget):
    """Emits `edited` after every change; `editor` holds the values and the errors."""

    edited = Signal()

    def __init__(self, editor: SettingsEditor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.rows: dict[str, FieldRow] = {}
        self._row_labels: dict[str, QLabel] = {}
        self._pages: dict[str, QWidget] = {}
        self._page_layouts: dict[str, QVBoxLayout] = {}
        self.nav = QListWidget(self)
        self.nav.setObjectName("SettingsNavigation")
        self.nav.setFixedWidth(190)
        self.pages = QStackedWidget(self)
        self.show_advanced = QCheckBox("Show advanced settings", self)
        self.show_advanced.toggled.connect(self._apply_advanced)
        for owner, group, fields in editor.groups():
            self._add_group(owner, group, fields)
        self.nav.currentRowChanged.connect(self._nav_changed)
        self.nav.setCurrentRow(1)  # row 0 is a section header

        side = QVBoxLayout()
        side.addWidget(self.nav, 1)
        side.addWidget(self.show_advanced)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(side)
        layout.addWidget(self.pages, 1)
        self.reload()

    def _add_group(self, owner: type[FileSettings], group: str, fields: list[EditorField]) -> None:
        title = section_title(owner)
        if not any(
            self.nav.item(i).data(Qt.ItemDataRole.UserRole) == f"section:{title}"
            for i in range(self.nav.count())
        ):
            header = QListWidgetItem(title.upper())
            header.setFlags(Qt.ItemFlag.NoItemFlags)
            font = QFont(header.font())
            font.setBold(True)
            font.setPointSizeF(font.pointSizeF() * 0.85)
            header.setFont(font)
            header.setData(Qt.ItemDataRole.UserRole, f"section:{title}")
            self.nav.addItem(header)
        page_key = f"{owner.__name__}:{group}"
        item = QListWidgetItem(f"   {group}")
        item.setData(Qt.ItemDataRole.UserRole, page_key)
        self.nav.addItem(item)

        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(16, 8, 16, 8)
        column.addWidget(label(f"{title} · {group}", "PageTitle", page, wrap=False))
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for field in fields:
            binding = make_binding(
                field,
                changed=partial(self._changed, field.key),
                invalid=partial(self._invalid, field.key),
            )
            row = FieldRow(field, binding, page)
            self.rows[field.key] = row
            text = "" if isinstance(binding, BoolBinding) else field.info.title
            row_label = QLabel(text, page)
            self._row_labels[field.key] = row_label
            form.addRow(row_label, row.container)
        column.addLayout(form)
        column.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(page)
        self._pages[page_key] = scroll
        self._page_layouts[page_key] = column
        self.pages.addWidget(scroll)

    def page_layout(self, key: str) -> QVBoxLayout:
        """The layout of the page that shows field `key` (to add buttons next to it)."""
        return self._page_layouts[self._page_key(key)]

    def show_page_of(self, key: str) -> None:
        page_key = self._page_key(key)
        for item in self._nav_items():
            if item.data(Qt.ItemDataRole.UserRole) == page_key:
                self.nav.setCurrentItem(item)

    def reload(self) -> None:
        """Show the editor's values (after loading another environment or saving)."""
        for key, row in self.rows.items():
            row.binding.load(self.editor.value(key))
            text = self.editor.shown_text(key)
            if text is not None:
                row.binding.load_text(text)
        self.refresh()
        self._apply_advanced(self.show_advanced.isChecked())

    def refresh(self) -> None:
        errors = self.editor.errors()
        marked = set(errors)
        for key, row in self.rows.items():
            row.show_error(errors.get(key))
            note = self.editor.problem_note(key)
            row.show_problem(note)
            if note:
                marked.add(key)
        bad_pages = {self._page_key(key) for key in marked}
        for item in self._nav_items():
            page_key = str(item.data(Qt.ItemDataRole.UserRole))
            group = page_key.split(":", 1)[1]
            item.setText(f"   {group}{'  ⚠' if page_key in bad_pages else ''}")

    def _page_key(self, key: str) -> str:
        field = self.editor.field(key)
        return f"{field.owner.__name__}:{field.info.group}"

    def _nav_items(self) -> list[QListWidgetItem]:
        items = [self.nav.item(i) for i in range(self.nav.count())]
        return [
            item
            for item in items
            if not str(item.data(Qt.ItemDataRole.UserRole)).startswith("section:")
        ]

    def _changed(self, key: str, value: object) -> None:
        self.editor.set(key, value)
        self.refresh()
        self.edited.emit()

    def _invalid(self, key: str, message: str) -> None:
        self.editor.set_input_error(key, message)
        self.refresh()
        self.edited.emit()

    def _nav_changed(self, row: int) -> None:
        item: QListWidgetItem | None = self.nav.item(row)  # None when out of range
        if item is None:
            return
        page = self._pages.get(str(item.data(Qt.ItemDataRole.UserRole)))
        if page is not None:
            self.pages.setCurrentWidget(page)

    def first_marked(self) -> str | None:
        """The first field with an error or a problem note, in the order of the pages."""
        errors = self.editor.errors()
        for key in self.rows:
            if key in errors or self.editor.problem_note(key):
                return key
        return None

    def _apply_advanced(self, shown: bool) -> None:
        errors = self.editor.errors()
        for key, row in self.rows.items():
            marked = key in errors or bool(self.editor.problem_note(key))
            visible = shown or not row.field.info.advanced or marked
            row.container.setVisible(visible)
            self._row_labels[key].setVisible(visible)
        shown_pages = {
            self._page_key(key) for key, row in self.rows.items() if not row.container.isHidden()
        }
        for item in self._nav_items():
            item.setHidden(item.data(Qt.ItemDataRole.UserRole) not in shown_pages)
