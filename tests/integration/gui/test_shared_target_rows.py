"""The parts of a website share its target: their rows say so instead of a share each."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt

from celery_core.jobs.state import JobProgress, aggregate_job, keyword_progress
from pixcrawler_gui.models.jobs_model import ETA, PROGRESS, PROGRESS_ROLE
from pixcrawler_gui.services.events import EventHub
from pixcrawler_gui.services.jobs.job_events import JobInfo, JobListed
from pixcrawler_gui.views.jobs.jobs_view import JobsView
from tests.integration.gui.conftest import screenshot


class NoControls:
    async def cancel(self, job_id: str) -> bool:
        return False

    async def retry(self, job_id: str) -> str | None:
        return None

    def remove(self, job_id: str) -> bool:
        return False


def view_listing(qtbot: Any, progress: JobProgress) -> JobsView:
    """A jobs view that lists one job as the watcher would."""
    hub = EventHub()
    view = JobsView(hub, NoControls())
    qtbot.addWidget(view)
    info = JobInfo(progress.job_id, progress.name, progress.output_dir, time.time())
    hub.publish(JobListed(info, progress))
    return view


def part(index: int, count: int, share: int, pool: int) -> dict[str, Any]:
    return {"category": "web", "keyword": "site", "kind": "website", "target": share,
            "chunk_index": index, "chunk_count": count, "pool_target": pool}  # fmt: skip


def running(kept: int, target: int) -> dict[str, Any]:
    counts = {"found": kept, "downloaded": kept, "kept": kept}
    return {"status": "PROGRESS", "result": {"counts": counts, "target": target, "rate": 5.0}}


def test_parts_of_a_website_are_measured_against_what_they_share(qtbot: Any) -> None:
    # One part found most pictures first: 14 kept against a share of 10.
    keywords = (
        keyword_progress("t0", part(0, 2, 10, 20), running(14, 10)),
        keyword_progress("t1", part(1, 2, 10, 20), running(2, 10)),
        keyword_progress("t2", {"category": "pets", "keyword": "dog", "target": 5}, running(1, 5)),
    )
    assert [k.shared_target for k in keywords] == [20, 20, 0]
    record = {"job_id": "j1", "name": "web", "output_dir": "/tmp/web", "tasks": []}
    progress = aggregate_job(record, keywords, None)
    assert progress.target == 25  # the shares add up to the website's target, plus the dog's

    view = view_listing(qtbot, progress)
    model = view.model
    job = model.index(0, 0)
    # The website is one keyword to its user: one row, its parts added up against the target
    # they share; the parts are listed only in the keyword's details.
    assert model.rowCount(job) == 2
    rows = [model.index(n, PROGRESS, job) for n in range(2)]
    assert [model.data(r) for r in rows] == ["16 of 20", "1 of 5"]
    assert [model.data(r, PROGRESS_ROLE)[:2] for r in rows] == [(16, 20), (1, 5)]
    assert model.data(model.index(0, 0, job)) == "web / site"
    # The keyword's time left: what the parts still miss, at their rates together.
    assert model.data(model.index(0, ETA, job)) == "0 s"
    tooltip = model.data(model.index(0, 0, job), Qt.ItemDataRole.ToolTipRole)
    assert "Worked on in 2 parts" in tooltip
    view.resize(1100, 420)
    view.show()
    view.tree.expandAll()
    view.tree.setCurrentIndex(model.index(0, 0, job))
    details = view.details.text()
    assert "The 2 parts of this website share its 20 images" in details
    assert "Part 1 of 2 (share of the website): 14 kept" in details
    screenshot(view, "28-jobs-website-parts")
