"""The New crawl form through its widgets: editing categories and keywords, sources, inline
problems, job files in and out (also dropped on the window)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLineEdit

from pixcrawler_gui.views.crawl_form.crawl_form import CrawlForm
from pixcrawler_gui.views.main_window import MainWindow
from tests.integration.gui.conftest import screenshot, wait_for
from tests.integration.gui.jobs_fixtures import JobsSession


def _paste_into(qtbot: Any, widget: Any, text: str) -> None:
    QApplication.clipboard().setText(text)
    widget.setFocus()
    qtbot.keyClick(widget, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)


def _rename(qtbot: Any, names: Any, row: int, new: str) -> None:
    names.list.setCurrentRow(row)
    names.list.editItem(names.list.item(row))
    editor = wait_for(qtbot, lambda: names.list.findChild(QLineEdit), timeout=5)
    editor.selectAll()
    qtbot.keyClicks(editor, new)
    qtbot.keyClick(editor, Qt.Key.Key_Return)  # commits on the next turn of the event loop
    wait_for(qtbot, lambda: names.names()[row] == new, timeout=5)


def _drop(window: MainWindow, path: Path) -> None:
    """A file dragged from a file manager and dropped on the window."""
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(path))])
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(QPoint(400, 300), actions, data, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)  # fmt: skip
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(400, 300), actions, data, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)  # fmt: skip
    QApplication.sendEvent(window, drop)


def _checked(qtbot: Any, form: CrawlForm) -> None:
    wait_for(qtbot, lambda: not form._timer.isActive(), timeout=5)


def test_editing_keywords_and_sources_with_problems_shown_inline(
    qtbot: Any, jobs_session: JobsSession, tmp_path: Path
) -> None:
    app = jobs_session.app
    app.window.show_page("crawl")
    form = app.pages.form
    assert "Add a category" in form.summary.text() and not form.collect_error.isVisible()
    qtbot.keyClicks(form.name_edit, "bad/name")
    _paste_into(qtbot, form.categories.list, "birds\nfish\nbirds\n")  # Ctrl+V on the list
    assert form.categories.names() == ["birds", "fish"]  # each once
    form.categories.list.setCurrentRow(0)
    _paste_into(qtbot, form.keywords.list, "robin\n  sparrow \n\nblue tit")
    assert form.keywords.names() == ["robin", "sparrow", "blue tit"]
    _rename(qtbot, form.keywords, 1, "house sparrow")
    assert form.draft.categories[0].entries[1].name == "house sparrow"
    form.keywords.list.setCurrentRow(2)
    qtbot.mouseClick(form.keywords.remove_button, Qt.MouseButton.LeftButton)
    assert [e.name for e in form.draft.categories[0].entries] == ["robin", "house sparrow"]

    # A website source with a bad address; the keyword and the category get marked.
    form.keywords.list.setCurrentRow(0)
    qtbot.mouseClick(form.source.kind_buttons["website"], Qt.MouseButton.LeftButton)
    qtbot.keyClicks(form.source.website_edit, "ftp://birds.example/")
    form.options.engines["bing"].setChecked(False)
    form.options.engines["duckduckgo"].setChecked(False)
    _checked(qtbot, form)
    assert "folder name" in form.name_error.text()
    assert "Website" in form.source.error.text() and "ftp://" in form.source.error.text()
    assert form.options.errors["engines"].text() == "must not be empty"
    assert "fish" in form.collect_error.text() and "no keywords" in form.collect_error.text()
    assert not form.start_button.isEnabled() and not form.export_button.isEnabled()
    assert "problems to fix" in form.summary.text()
    screenshot(app.window, "24-form-problems")

    # Renaming a category onto another's name is caught before the file format sees it.
    _rename(qtbot, form.categories, 1, "birds")
    _checked(qtbot, form)
    assert "already called 'birds'" in form.collect_error.text()

    # Fix everything: Start comes on.
    _rename(qtbot, form.categories, 1, "fish")
    form.categories.list.setCurrentRow(1)
    qtbot.keyClicks(form.keywords.bulk, "trout")
    qtbot.mouseClick(form.keywords.add_button, Qt.MouseButton.LeftButton)
    form.categories.list.setCurrentRow(0)
    form.keywords.list.setCurrentRow(0)
    form.source.website_edit.clear()
    qtbot.keyClicks(form.source.website_edit, "https://birds.example/")
    form.options.engines["google"].setChecked(True)
    form.name_edit.clear()
    qtbot.keyClicks(form.name_edit, "birds and fish")
    _checked(qtbot, form)
    assert form.start_button.isEnabled(), form.checked.problems
    spec = form.checked.loaded.spec  # type: ignore[union-attr]
    assert spec.options.engines == ["google"]
    assert [i.kind for i in spec.work_items()] == ["website", "search", "search"]

    # Export, then import the file back: the same job.
    exported = tmp_path / "birds.json"
    form.export_file(exported)
    data = json.loads(exported.read_text())
    assert data["categories"]["birds"][0] == {
        "name": "robin", "website": "https://birds.example/", "max_pages": 100, "max_depth": 2,
    }  # fmt: skip
    form.load_draft(type(form.draft)())
    assert form.import_file(exported)
    assert form.checked.loaded is not None and form.checked.loaded.spec.to_file_dict() == data


def test_job_files_dropped_on_the_window(
    qtbot: Any, jobs_session: JobsSession, tmp_path: Path
) -> None:
    app = jobs_session.app
    form = app.pages.form
    app.window.show_page("jobs")
    # PixCrawler's original config: a URL file beside it, an option this version ignores.
    urls = "# cats\nhttps://example.org/1.jpg\n\nhttps://example.org/2.jpg\n"
    (tmp_path / "urls.txt").write_text(urls)
    more = [{"name": "list", "urls_file": "urls.txt"}]
    good = tmp_path / "config.json"
    good.write_text(json.dumps({
        "dataset_name": "animals",
        "categories": {"mammals": ["dog", "cat"], "more": more},
        "options": {"max_images": 40, "max_retries": 3, "output_dir": "out"},
    }))  # fmt: skip
    _drop(app.window, good)
    assert app.window.pages.currentWidget() is form
    assert form.name_edit.text() == "animals"
    assert form.categories.names() == ["mammals", "more"]
    assert form.options.output_dir.text() == str(tmp_path / "out")
    form.categories.list.setCurrentRow(1)
    assert form.source.urls_edit.toPlainText().splitlines() == [
        "https://example.org/1.jpg", "https://example.org/2.jpg",
    ]  # fmt: skip
    assert form.warning_banner.isVisible()
    assert "options.max_retries" in form.warning_banner.text.text()
    assert form.start_button.isEnabled()

    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps({
        "dataset_name": "x", "categories": {"a": ["dog", 5], "b": []},
        "options": {"max_images": "many"},
    }))  # fmt: skip
    app.window.show_page("gallery")
    _drop(app.window, bad)
    assert app.window.pages.currentWidget() is form
    banner = form.import_banner.text.text()
    assert form.import_banner.isVisible()
    assert "broken.json is not a job file PixCrawler can use" in banner
    assert "categories.a[1]" in banner and "options.max_images" in banner
    assert form.name_edit.text() == "animals"  # nothing was changed
    screenshot(app.window, "25-invalid-job-file-dropped")

    not_json = tmp_path / "notes.json"
    not_json.write_text("dataset_name: x\n")
    _drop(app.window, not_json)
    assert "line 1 column 1" in form.import_banner.text.text()
