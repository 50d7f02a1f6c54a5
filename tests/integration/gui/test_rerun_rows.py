"""A re-run tops a folder up: its rows count what earlier runs kept toward the target."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from celery_core.jobs.state import aggregate_job, keyword_progress
from pixcrawler_gui.models.jobs_model import ETA, PROGRESS, PROGRESS_ROLE
from pixcrawler_gui.presentation import job_text
from tests.integration.gui.conftest import screenshot
from tests.integration.gui.test_shared_target_rows import view_listing


def meta(status: str, kept: int, existing: int, target: int) -> dict[str, Any]:
    counts = {"found": kept, "downloaded": kept, "kept": kept, "existing": existing}
    result = {"counts": counts, "target": target, "rate": 2.0}
    if status == "SUCCESS":  # a finished task's record holds its result envelope
        return {"status": status, "result": {"task_id": "t1", "status": status, "result": result}}
    return {"status": status, "result": result}


def test_images_kept_by_an_earlier_run_count_toward_the_target(qtbot: Any) -> None:
    dog = {"category": "pets", "keyword": "dog", "target": 30}
    cat = {"category": "pets", "keyword": "cat", "target": 30}
    part = {"category": "web", "keyword": "list", "target": 10, "chunk_index": 0,
            "chunk_count": 2}  # fmt: skip
    keywords = (
        keyword_progress("t0", dog, meta("PROGRESS", 3, 24, 30)),  # 6 trashed, 3 replaced so far
        keyword_progress("t1", cat, meta("SUCCESS", 0, 30, 30)),  # nothing was missing
        keyword_progress("t2", part, meta("PROGRESS", 4, 7, 10)),  # a list's part counts its own
    )
    assert [k.already_had for k in keywords] == [24, 30, 0]
    record = {"job_id": "j2", "name": "pets again", "output_dir": "/tmp/pets", "tasks": []}
    progress = aggregate_job(record, keywords, None)
    assert (progress.counts.kept, progress.already_had, progress.in_folder) == (7, 54, 61)
    assert progress.eta_s == (70 - 61) / 4.0  # only what is still missing
    assert "54 already in the folder" in job_text.counts_text(progress)

    view = view_listing(qtbot, progress)
    model = view.model
    job = model.index(0, 0)
    assert model.data(model.index(0, PROGRESS)) == "61 of 70"
    assert model.data(model.index(0, PROGRESS), PROGRESS_ROLE)[:2] == (61, 70)
    rows = [model.index(n, PROGRESS, job) for n in range(3)]
    assert [model.data(r) for r in rows] == ["27 of 30", "30 of 30", "4 of 10"]
    assert model.data(model.index(0, ETA, job)) == "2 s"  # (30 - 27) at 2 a second
    tooltip = model.data(model.index(0, 0, job), Qt.ItemDataRole.ToolTipRole)
    assert "3 new, 24 already in the folder from an earlier run" in tooltip
    job_tip = model.data(model.index(0, 0), Qt.ItemDataRole.ToolTipRole)
    assert "7 new, 54 already in the folder" in job_tip
    view.resize(1100, 420)
    view.show()
    view.tree.expandAll()
    screenshot(view, "29-jobs-rerun-top-up")
