"""Where the images of one keyword come from: a web search, a list of image URLs, or a website
crawled within limits. Edits the selected `EntryDraft` in place."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QLineEdit,
    QPlainTextEdit,
    QRadioButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from pixcrawler_gui.presentation.job_draft import EntryDraft, EntryKind
from pixcrawler_gui.views.crawl_form.name_list import split_lines
from pixcrawler_gui.views.style import label

KINDS: tuple[tuple[EntryKind, str], ...] = (
    ("search", "Search the web for this keyword"),
    ("urls", "Download a list of image URLs"),
    ("website", "Collect the images of a website"),
)


class SourceEditor(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry: EntryDraft | None = None
        self._loading = False
        self.title = label("Source", "SectionTitle", self, wrap=False)
        self.empty = label("Select a keyword to choose where its images come from.", "Hint", self)
        self.kind_group = QButtonGroup(self)
        self.kind_buttons: dict[EntryKind, QRadioButton] = {}
        for index, (kind, text) in enumerate(KINDS):
            button = QRadioButton(text, self)
            self.kind_group.addButton(button, index)
            self.kind_buttons[kind] = button

        self.pages = QStackedWidget(self)
        search = QWidget(self)
        search_column = QVBoxLayout(search)
        search_column.setContentsMargins(0, 4, 0, 0)
        self.search_hint = label("", "Hint", search)
        search_column.addWidget(self.search_hint)
        search_column.addStretch(1)
        urls = QWidget(self)
        urls_column = QVBoxLayout(urls)
        urls_column.setContentsMargins(0, 4, 0, 0)
        self.urls_edit = QPlainTextEdit(urls)
        self.urls_edit.setPlaceholderText("https://example.org/picture.jpg\none URL per line")
        urls_column.addWidget(self.urls_edit)
        site = QWidget(self)
        form = QFormLayout(site)
        form.setContentsMargins(0, 4, 0, 0)
        self.website_edit = QLineEdit(site)
        self.website_edit.setPlaceholderText("https://example.org/gallery/")
        self.pages_spin = QSpinBox(site)
        self.pages_spin.setRange(1, 100_000)
        self.pages_spin.setToolTip("Pages of the site to read at most")
        self.depth_spin = QSpinBox(site)
        self.depth_spin.setRange(0, 50)
        self.depth_spin.setToolTip("Link hops from the start page (0: the start page only)")
        form.addRow("Start page", self.website_edit)
        form.addRow("Pages at most", self.pages_spin)
        form.addRow("Link depth", self.depth_spin)
        empty_page = QWidget(self)
        empty_column = QVBoxLayout(empty_page)
        empty_column.setContentsMargins(0, 0, 0, 0)
        self.empty.setParent(empty_page)
        empty_column.addWidget(self.empty)
        empty_column.addStretch(1)
        for page in (search, urls, site, empty_page):
            self.pages.addWidget(page)
        self.error = label("", "FieldError", self)
        self.error.hide()

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.title)
        for button in self.kind_buttons.values():
            column.addWidget(button)
        column.addWidget(self.pages, 1)
        column.addWidget(self.error)

        self.kind_group.idToggled.connect(self._kind_toggled)
        self.urls_edit.textChanged.connect(self._edited)
        self.website_edit.textChanged.connect(self._edited)
        self.pages_spin.valueChanged.connect(self._edited)
        self.depth_spin.valueChanged.connect(self._edited)
        self.show_entry(None)

    def set_engines(self, engines: list[str]) -> None:
        from pixcrawler_gui.views.crawl_form.crawl_options import ENGINE_NAMES

        names = [ENGINE_NAMES.get(e, e) for e in engines]
        if not names:
            text = "No search engine is chosen: tick at least one under Options."
        elif len(names) == 1:
            text = f"The keyword is searched on {names[0]} (change it under Options)."
        else:
            order = ", then ".join(names)
            text = (
                f"The keyword is searched on {order}: when one is blocked or finds nothing, "
                "the next is tried (change them under Options)."
            )
        self.search_hint.setText(text)

    def show_entry(self, entry: EntryDraft | None) -> None:
        self.entry = entry
        self._loading = True
        editing = entry is not None
        for button in self.kind_buttons.values():
            button.setVisible(editing)
        self.pages.setCurrentIndex(len(KINDS))  # the "select a keyword" page
        if entry is not None:
            self.title.setText(f"Where the images of “{entry.name}” come from")
            self.kind_buttons[entry.kind].setChecked(True)
            self.pages.setCurrentIndex([k for k, _ in KINDS].index(entry.kind))
            self.urls_edit.setPlainText("\n".join(entry.urls))
            self.website_edit.setText(entry.website)
            self.pages_spin.setValue(entry.max_pages)
            self.depth_spin.setValue(entry.max_depth)
        else:
            self.title.setText("Source")
        self._loading = False

    def set_problems(self, lines: list[str]) -> None:
        self.error.setText("\n".join(lines))
        self.error.setVisible(bool(lines) and self.entry is not None)

    def _kind_toggled(self, index: int, checked: bool) -> None:
        if not checked:
            return
        self.pages.setCurrentIndex(index)
        if self.entry is not None and not self._loading:
            self.entry.kind = KINDS[index][0]
            self.changed.emit()

    def _edited(self) -> None:
        if self.entry is None or self._loading:
            return
        self.entry.urls = split_lines(self.urls_edit.toPlainText())
        self.entry.website = self.website_edit.text().strip()
        self.entry.max_pages = self.pages_spin.value()
        self.entry.max_depth = self.depth_spin.value()
        self.changed.emit()
