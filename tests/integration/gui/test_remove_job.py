"""Taking a finished job off the Jobs list: it stays off after a restart, even though Redis
still has its records, and the gallery moves on; a running job cannot be removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery
from PySide6.QtCore import QItemSelectionModel, Qt

from celery_core.jobs.control import submit_job
from celery_core.jobs.spec import parse_job
from pixcrawler_gui.services.jobs.history import HistoryStore
from pixcrawler_gui.views.jobs.jobs_view import JobsView
from tests.integration.gui.conftest import run, screenshot, wait_for
from tests.integration.gui.jobs_fixtures import (
    JobsSession,
    job_dict,
    load_record,
    write_job_done,
    write_keyword_done,
)


def submit(session: JobsSession, out: Path, keyword: str) -> str:
    spec = parse_job(job_dict(out, {"birds": [keyword]})).spec
    job_id = run(session.loop, session.qtbot, session.app.jobs.service.submit(spec))
    assert job_id is not None
    return str(job_id)


def select(view: JobsView, job_id: str) -> None:
    view.tree.selectionModel().setCurrentIndex(
        view.model.index(view.model.row_of(job_id), 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )


def test_a_removed_job_stays_off_the_list(
    qtbot: Any, jobs_session: JobsSession, submitter: Celery, tmp_path: Path
) -> None:
    done_id = submit(jobs_session, tmp_path / "robins", "robin")
    queued_id = submit(jobs_session, tmp_path / "wrens", "wren")
    record = load_record(submitter, done_id)
    write_keyword_done(submitter, record, 0, kept=5)
    write_job_done(submitter, record, kept=5)
    saved = tmp_path / "robins" / "birds" / "robin" / "0001.jpg"
    saved.parent.mkdir(parents=True)
    saved.write_bytes(b"an image")
    view = jobs_session.app.pages.jobs
    wait_for(qtbot, lambda: view.model.job(done_id).ended, timeout=10)  # type: ignore[union-attr]
    gallery = jobs_session.app.pages.gallery
    gallery.show_job(done_id)
    assert gallery.model.job_id == done_id

    select(view, queued_id)
    assert not view.remove_button.isEnabled()  # still waiting for a worker
    assert not view.remove_selected()
    select(view, done_id)
    assert view.remove_button.isEnabled()
    jobs_session.app.window.show_page("jobs")
    screenshot(jobs_session.app.window, "29-jobs-remove-from-list")
    qtbot.mouseClick(view.remove_button, Qt.MouseButton.LeftButton)
    assert view.model.job(done_id) is None and view.model.job(queued_id) is not None
    assert view.selected() is not None and view.selected().job_id == queued_id  # type: ignore[union-attr]
    # It showed the removed job; the queued one has no images yet, so it is not offered.
    assert gallery.model.job_id is None and gallery.job_combo.count() == 0
    assert saved.read_bytes() == b"an image"  # the job's files stay where they are

    history = jobs_session.app.jobs.service.history
    run(jobs_session.loop, qtbot, history.flush())
    store = HistoryStore(history.path)
    try:
        assert done_id in store.hidden_ids()
        assert [e.info.job_id for e in store.entries()] == [queued_id]
    finally:
        store.close()

    # After a restart the job's records are still in Redis, where the app finds jobs started
    # elsewhere: one started now (from a script) shows that the app has looked.
    app = jobs_session.reopen()
    elsewhere = submit_job(submitter, parse_job(job_dict(tmp_path / "x", {"o": ["owl"]})).spec)
    model = app.pages.jobs.model
    wait_for(qtbot, lambda: model.job(elsewhere.job_id) is not None, timeout=15)
    assert load_record(submitter, done_id)["job_id"] == done_id
    assert model.job(done_id) is None
    assert {row.job_id for row in model.jobs()} == {queued_id, elsewhere.job_id}
