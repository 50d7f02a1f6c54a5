"""A keyword whose every source failed is shown as a failure, its job amber, with the reason
in words, and can be tried again once the computer is back online."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from celery_core.crawler.types import Counts
from celery_core.jobs.state import JobState, aggregate_job, keyword_progress
from pixcrawler_gui.models.jobs_model import STATE
from pixcrawler_gui.presentation import job_text
from tests.integration.gui.conftest import screenshot
from tests.integration.gui.test_shared_target_rows import view_listing


def ended(counts: Counts, target: int) -> dict[str, Any]:
    result = {"counts": counts.to_dict(), "target": target}
    return {"status": "SUCCESS", "result": {"task_id": "t", "result": result}}


def test_a_keyword_that_reached_no_engine_is_a_failure(qtbot: Any) -> None:
    offline = Counts(source_errors=["bing: dns_error", "duckduckgo: dns_error"])
    fine = Counts(found=40, downloaded=38, kept=30, duplicates=5, invalid=3)
    keywords = (
        keyword_progress(
            "t0", {"category": "animals", "keyword": "cats", "target": 300}, ended(offline, 300)
        ),
        keyword_progress(
            "t1", {"category": "animals", "keyword": "dogs", "target": 30}, ended(fine, 30)
        ),
    )
    summary = {"task_id": "cb", "result": {"state": "finished_with_problems", "kept": 30}}
    record = {"job_id": "j1", "name": "pets", "output_dir": "/tmp/pets", "tasks": []}
    progress = aggregate_job(record, keywords, {"status": "SUCCESS", "result": summary})
    assert progress.state is JobState.FINISHED_WITH_PROBLEMS

    view = view_listing(qtbot, progress)
    model = view.model
    job = model.index(0, 0)
    state = model.data(model.index(0, STATE))
    assert state.startswith("Finished with problems")
    cats = model.index(0, STATE, job)
    assert "Couldn't reach Bing or DuckDuckGo: is this computer online?" in model.data(cats)
    assert job_text.job_state_color(progress.state) == job_text.AMBER
    assert model.data(cats, Qt.ItemDataRole.ToolTipRole)
    view.resize(1100, 420)
    view.show()
    view.tree.expandAll()
    view.tree.setCurrentIndex(model.index(0, 0, job))
    screenshot(view, "jobs_failed_source")
    view.select("j1")
    assert view.retry_button.isEnabled()  # "is this computer online?" needs a way to try again
