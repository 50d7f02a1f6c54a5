"""A crawl through the desktop app, end to end: the form filled through its widgets, a real
worker (started outside the app, as a remote one would be), a real image site, the jobs view,
the gallery, the notification, and the history after the window is closed and opened again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from pixcrawler_gui.models.jobs_model import PROGRESS, PROGRESS_ROLE, STATE
from pixcrawler_gui.views.crawl_form.crawl_form import CrawlForm
from tests.integration.gui.conftest import screenshot, wait_for
from tests.integration.gui.jobs_fixtures import JobsApp, JobsSession
from tests.support.image_server import ImageServer
from tests.support.worker_proc import WorkerProcess


def _type(qtbot: Any, widget: Any, text: str) -> None:
    widget.setFocus()
    for number, line in enumerate(text.split("\n")):
        if number:
            qtbot.keyClick(widget, Qt.Key.Key_Return)
        qtbot.keyClicks(widget, line)


def _paste(qtbot: Any, widget: Any, text: str) -> None:
    QApplication.clipboard().setText(text)
    widget.setFocus()
    qtbot.keyClick(widget, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)


def _click(qtbot: Any, button: Any) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def _set_spin(qtbot: Any, spin: Any, value: int) -> None:
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, str(value))


def _add_keyword_with_urls(qtbot: Any, form: CrawlForm, keyword: str, urls: list[str]) -> None:
    _type(qtbot, form.keywords.bulk, keyword)
    _click(qtbot, form.keywords.add_button)
    assert form.keywords.names()[-1] == keyword
    _click(qtbot, form.source.kind_buttons["urls"])
    _paste(qtbot, form.source.urls_edit, "\n".join(urls))


def _job_state(app: JobsApp, row: int = 0) -> str:
    model = app.pages.jobs.model
    return str(model.data(model.index(row, STATE)))


def _progress(app: JobsApp, row: int = 0) -> tuple[int, int]:
    model = app.pages.jobs.model
    kept, target, _, _ = model.data(model.index(row, PROGRESS), PROGRESS_ROLE)
    return kept, target


def test_crawl_from_the_form_to_the_gallery_and_after_a_restart(
    loop: qasync.QEventLoop,
    qtbot: Any,
    jobs_session: JobsSession,
    image_site: ImageServer,
    crawl_worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    app = jobs_session.app
    window, form = app.window, app.pages.form
    window.nav.setCurrentRow(window.page_keys.index("crawl"))
    assert not form.start_button.isEnabled()

    _type(qtbot, form.name_edit, "pets")
    _type(qtbot, form.categories.bulk, "dogs\ncats")
    _click(qtbot, form.categories.add_button)
    assert form.categories.names() == ["dogs", "cats"]
    form.categories.list.setCurrentRow(0)
    fast = [image_site.url(f"/img/{n}.jpg") for n in range(6)]
    _add_keyword_with_urls(qtbot, form, "park dogs", [*fast[:5], "not a link"])
    # The bad line is named next to the field while typing, and Start stays disabled.
    wait_for(qtbot, lambda: "not a link" in form.source.error.text(), timeout=5)
    assert form.source.error.isVisible() and not form.start_button.isEnabled()
    assert "line 6" in form.source.error.text()
    form.source.urls_edit.selectAll()
    _paste(qtbot, form.source.urls_edit, "\n".join(fast))
    wait_for(qtbot, lambda: not form.source.error.isVisible(), timeout=5)

    form.categories.list.setCurrentRow(1)
    slow = [image_site.url(f"/slow/{n}.jpg") for n in range(6)]
    _add_keyword_with_urls(qtbot, form, "street cats", slow)
    _set_spin(qtbot, form.options.max_images, 6)
    out = tmp_path / "datasets" / "pets"
    _type(qtbot, form.options.output_dir, str(out))
    wait_for(qtbot, form.start_button.isEnabled, timeout=5)
    assert "2 categories, 2 keywords, up to 12 images" in form.summary.text()
    screenshot(window, "20-new-crawl-form")

    _click(qtbot, form.start_button)
    jobs_view = app.pages.jobs
    wait_for(qtbot, lambda: window.pages.currentWidget() is jobs_view, timeout=15)
    assert jobs_view.model.rowCount() == 1
    jobs_view.tree.expandAll()
    # Mid-crawl: the fast keyword done, the slow one on its way.
    wait_for(qtbot, lambda: 8 <= _progress(app)[0] < 12, timeout=60)
    assert _job_state(app).startswith("Running")
    screenshot(window, "21-jobs-mid-crawl")

    wait_for(qtbot, lambda: _progress(app) == (12, 12), timeout=60)
    wait_for(qtbot, lambda: _job_state(app) == "Finished", timeout=30)
    job = jobs_view.model.jobs()[0]
    manifest = (out / "manifest.jsonl").read_text().splitlines()
    assert len(manifest) == 12
    assert (out / "report.md").is_file() and (out / "labels.json").is_file()
    assert job.progress.summary["report"] == str(out / "report.md")
    notifier = app.pages.notifier
    wait_for(qtbot, lambda: getattr(notifier, "sent", None), timeout=10)
    title, message, _ = notifier.sent[-1]  # type: ignore[attr-defined]
    assert title == "Crawl finished: pets" and message.startswith("12 images kept")

    assert jobs_view.open_report() and jobs_session.opened[-1] == str(out / "report.md")
    _click(qtbot, jobs_view.images_button)
    gallery = app.pages.gallery
    wait_for(qtbot, lambda: window.pages.currentWidget() is gallery, timeout=5)
    wait_for(qtbot, lambda: gallery.model.rowCount() == 12, timeout=15)
    wait_for(qtbot, lambda: len(gallery.model.cache) == 12, timeout=15)
    gallery.set_filter("cats", None)
    assert gallery.filter.rowCount() == 6
    gallery.view.setCurrentIndex(gallery.filter.index(0, 0))
    first = json.loads(next(line for line in manifest if '"cats"' in line))
    wait_for(qtbot, lambda: first["sha256"][:16] in gallery.detail.facts.text(), timeout=10)
    assert first["url"] in gallery.detail.facts.text()
    wait_for(qtbot, lambda: gallery.detail.picture.pixmap().width() > 128, timeout=10)
    screenshot(window, "22-gallery")
    assert gallery.detail.open_folder()
    assert jobs_session.opened[-1] == str((out / first["path"]).parent)

    # A restart: a new window with a new history connection lists the job as it ended.
    app = jobs_session.reopen()
    model = app.pages.jobs.model
    wait_for(qtbot, lambda: model.rowCount() == 1, timeout=10)
    listed = model.jobs()[0]
    assert listed.progress.state == "finished" and listed.progress.counts.kept == 12
    assert [k.counts.kept for k in listed.progress.keywords] == [6, 6]
    assert listed.info.spec is not None and listed.info.output_dir == str(out)

    # Run again fills the form with the same settings.
    app.pages.jobs.select(listed.job_id)
    _click(qtbot, app.pages.jobs.again_button)
    form = app.pages.form
    wait_for(qtbot, lambda: app.window.pages.currentWidget() is form, timeout=5)
    assert form.name_edit.text() == "pets" and form.categories.names() == ["dogs", "cats"]
    assert form.options.output_dir.text() == str(out) and form.options.max_images.value() == 6
    assert form.start_button.isEnabled()
