"""The Jobs view as a user reads it: one row per keyword (a URL list's parts inside it), a
retry listed under its job, how long an ended job took; the gallery offers each job once."""

from __future__ import annotations

import time
from typing import Any

from celery_core.jobs.state import JobProgress, aggregate_job, keyword_progress
from pixcrawler_gui.models.jobs_model import ETA, NAME, PROGRESS, RATE, STATE
from pixcrawler_gui.services.events import EventHub
from pixcrawler_gui.services.jobs.job_events import JobEnded, JobInfo, JobListed
from pixcrawler_gui.views.jobs.jobs_view import JobsView
from tests.integration.gui.conftest import screenshot
from tests.integration.gui.test_shared_target_rows import NoControls


def chunk(index: int) -> dict[str, Any]:
    return {"category": "urls", "keyword": "from list", "kind": "urls", "target": 75,
            "chunk_index": index, "chunk_count": 4}  # fmt: skip


def meta(status: str, kept: int, partial: bool = False) -> dict[str, Any]:
    counts = {"found": kept, "downloaded": kept, "kept": kept, "duplicates": 1}
    result = {"counts": counts, "target": 75, "rate": 3.0, "elapsed_s": 20.0,
              "partial": partial}  # fmt: skip
    if status == "SUCCESS":
        return {"status": status, "result": {"task_id": "t", "status": status, "result": result}}
    return {"status": status, "result": result}


def job(job_id: str, metas: list[dict[str, Any] | None], summary: dict | None = None,
        parts: range = range(4)) -> JobProgress:  # fmt: skip
    keywords = tuple(keyword_progress(f"{job_id}-{n}", chunk(n), metas[i])
                     for i, n in enumerate(parts))  # fmt: skip
    record = {"job_id": job_id, "name": "pets", "output_dir": "/tmp/pets", "tasks": []}
    callback = {"status": "SUCCESS", "result": {"task_id": "cb", "result": summary}}
    return aggregate_job(record, keywords, callback if summary else None)


def listed(hub: EventHub, progress: JobProgress, at: float, parent: str | None = None) -> None:
    info = JobInfo(progress.job_id, "pets", "/tmp/pets", at, parent_job=parent)
    hub.publish(JobListed(info, progress))


def test_a_url_list_is_one_keyword_row_its_parts_in_the_details(qtbot: Any) -> None:
    hub = EventHub()
    view = JobsView(hub, NoControls())
    qtbot.addWidget(view)
    view.resize(1100, 480)
    view.show()
    running = job("j1", [meta("SUCCESS", 75), meta("PROGRESS", 40), meta("PROGRESS", 12), None])
    listed(hub, running, time.time() - 60)
    model = view.model
    row = model.index(0, 0)
    assert model.rowCount(row) == 1  # one URL list asked for: one row, not four
    assert model.data(model.index(0, NAME, row)) == "urls / from list"
    assert model.data(model.index(0, STATE, row)) == "Running"
    assert model.data(model.index(0, PROGRESS, row)) == "127 of 300"
    assert model.data(model.index(0, RATE, row)) == "6.0"  # the two running parts together
    assert model.data(model.index(0, ETA, row)) == "29 s"  # (300 - 127) / 6
    view.tree.expandAll()
    view.tree.setCurrentIndex(model.index(0, 0, row))
    details = view.details.text()
    assert "Worked on in 4 parts" in details
    assert "Part 2 of 4 (URLs): 40 kept" in details and "Part 4 of 4 (URLs): 0 kept" in details
    screenshot(view, "40-jobs-url-list-running")

    done = job("j1", [meta("SUCCESS", 75), meta("SUCCESS", 75), meta("SUCCESS", 75),
                      meta("SUCCESS", 70, partial=True)],
               {"state": "partial", "kept": 295, "elapsed_s": 130.4})  # fmt: skip
    hub.publish(JobEnded(done))
    assert model.data(model.index(0, STATE, row)) == "Done, short of the target"
    assert model.data(model.index(0, PROGRESS, row)) == "295 of 300"
    assert model.data(model.index(0, ETA)) == "took 2 min 10 s"
    assert model.data(model.index(0, RATE)) == "2.3 avg"
    view.tree.setCurrentIndex(model.index(0, 0))
    assert "took 2 min 10 s · 2.3 images/s" in view.details.text()
    screenshot(view, "41-jobs-url-list-finished")


def test_a_retry_is_listed_under_its_job_and_the_gallery_offers_them_once(qtbot: Any) -> None:
    hub = EventHub()
    view = JobsView(hub, NoControls())
    qtbot.addWidget(view)
    view.resize(1100, 480)
    view.show()
    now = time.time()
    short = {"state": "partial", "kept": 220, "elapsed_s": 95.0}
    parent = job("p1", [meta("SUCCESS", 75), meta("SUCCESS", 75), meta("SUCCESS", 70, True),
                        None], short)  # fmt: skip
    listed(hub, parent, now - 600)
    empty = job("e1", [None], parts=range(1))  # another job, queued, nothing kept yet
    listed(hub, empty, now - 300)
    retry = job("r1", [meta("PROGRESS", 3)], parts=range(2, 3))
    listed(hub, retry, now - 10, parent="p1")
    model = view.model
    names = [model.data(model.index(n, NAME)) for n in range(model.rowCount())]
    assert names == ["pets", "pets", "↳ Retry of pets"]  # newest first, the retry under its job
    assert [r.job_id for r in model.jobs()] == ["e1", "p1", "r1"]
    view.select("r1")
    details = view.details.text()
    assert "a retry of “pets” (started" in details and "into the same folder" in details
    view.select("p1")
    assert "(the row below)" in view.details.text()
    assert not view.retry_button.isEnabled()  # its retry runs: a second would repeat it
    view.tree.expand(model.index(2, 0))
    screenshot(view, "42-jobs-retry-under-its-job")

    # The gallery: the job and its retry keep their images in one folder (one choice, showing
    # the newest run's previews); a job without images is not offered.
    choices = model.gallery_choices()
    assert [(c[1], c[2]) for c in choices] == [("r1", {"p1", "r1"})]
    assert choices[0][0].startswith("pets — ")
    assert [c[1] for c in model.gallery_choices(asked="e1")] == ["e1", "r1"]
