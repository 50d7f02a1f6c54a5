"""One row per keyword (its parts combined) and how long an ended job took, in words."""

from __future__ import annotations

from typing import Any

from celery_core.jobs.state import aggregate_job, keyword_progress
from pixcrawler_gui.presentation.job_rows import (
    average_rate_text,
    combine_parts,
    combined_state,
    job_duration,
    keyword_rows,
    took_text,
)


def chunk(index: int, count: int = 4, target: int = 75) -> dict[str, Any]:
    return {"category": "urls", "keyword": "from list", "kind": "urls", "target": target,
            "chunk_index": index, "chunk_count": count}  # fmt: skip


def meta(status: str, kept: int, **extra: Any) -> dict[str, Any]:
    counts = {"found": kept, "downloaded": kept, "kept": kept, "duplicates": 1}
    result = {"counts": counts, "rate": 2.0, "elapsed_s": 10.0 + kept, **extra}
    if status == "SUCCESS":
        return {"status": status, "result": {"task_id": "t", "status": status, "result": result}}
    return {"status": status, "result": result}


def test_the_parts_of_a_url_list_are_one_keyword_with_their_sums() -> None:
    parts = (
        keyword_progress("a", chunk(0), meta("SUCCESS", 70)),
        keyword_progress("b", chunk(1), meta("PROGRESS", 30)),
        keyword_progress("c", chunk(2), meta("PROGRESS", 10)),
        keyword_progress("d", chunk(3), None),
    )
    dog = keyword_progress("e", {"category": "pets", "keyword": "dog", "target": 5}, None)
    rows = keyword_rows((parts[0], dog, *parts[1:]))
    assert [r.name for r in rows] == ["urls / from list", "pets / dog"]
    assert rows[1].combined is dog and not rows[1].split
    k = rows[0].combined
    assert rows[0].parts == parts
    assert (k.counts.kept, k.counts.duplicates, k.target) == (110, 3, 300)
    assert k.state == "PROGRESS" and k.rate == 4.0  # only the running parts' rates
    assert k.in_folder == 110 and k.already_had == 0 and k.shared_target == 0
    assert k.elapsed_s == 80.0


def test_a_websites_parts_are_measured_against_the_target_they_share() -> None:
    share = {"category": "web", "keyword": "site", "kind": "website", "target": 10,
             "chunk_count": 2, "pool_target": 20}  # fmt: skip
    k = combine_parts([
        keyword_progress("a", {**share, "chunk_index": 0}, meta("SUCCESS", 14, partial=True)),
        keyword_progress("b", {**share, "chunk_index": 1}, meta("SUCCESS", 6)),
    ])  # fmt: skip
    assert (k.counts.kept, k.target, k.state) == (20, 20, "SUCCESS")
    assert not k.partial  # one part fell short of its share, the website got all it wanted


def test_a_keyword_failed_only_when_every_part_failed() -> None:
    failed = {"status": "FAILURE", "result": {"exc_type": "RuntimeError", "exc_message": "no"}}
    some = combine_parts([
        keyword_progress("a", chunk(0, 2), meta("SUCCESS", 75)),
        keyword_progress("b", chunk(1, 2), failed),
    ])  # fmt: skip
    assert some.state == "SUCCESS" and some.partial and some.error is None
    every = combine_parts([
        keyword_progress("a", chunk(0, 2), failed),
        keyword_progress("b", chunk(1, 2), failed),
    ])  # fmt: skip
    assert every.state == "FAILURE" and every.error == "RuntimeError: no (and 1 more parts)"


def test_the_combined_state() -> None:
    assert combined_state(("PENDING", "PENDING")) == "PENDING"
    assert combined_state(("SUCCESS", "PROGRESS", "FAILURE")) == "PROGRESS"
    assert combined_state(("SUCCESS", "PENDING")) == "PROGRESS"  # under way, a part waits
    assert combined_state(("STARTED", "PENDING")) == "STARTED"
    assert combined_state(("SUCCESS", "RETRY")) == "RETRY"
    assert combined_state(("REVOKED", "REVOKED")) == "REVOKED"
    assert combined_state(("SUCCESS", "REVOKED")) == "SUCCESS"
    assert combined_state(("FAILURE", "FAILURE")) == "FAILURE"


def test_how_long_an_ended_job_took() -> None:
    record = {"job_id": "j", "name": "pets", "output_dir": "/tmp/pets", "tasks": []}
    summary = {"state": "finished", "kept": 600, "elapsed_s": 130.4}
    callback = {"status": "SUCCESS", "result": {"task_id": "cb", "result": summary}}
    done = aggregate_job(record, (), callback)
    assert job_duration(done, 1000.0, 5000.0) == 130.4  # the final step's own figure
    running = aggregate_job(record, (), None)
    assert job_duration(running, 1000.0, 1095.0) == 95.0  # else when it was seen to end
    assert job_duration(running, 1000.0, None) is None
    assert took_text(130.4, 600) == "took 2 min 10 s · 4.6 images/s"
    assert took_text(42, 420) == "took 42 s · 10 images/s"
    assert took_text(3725, 10) == "took 1 h 02 min · 0.0 images/s"
    assert took_text(None, 5) is None
    assert average_rate_text(600, 130.4) == "4.6 avg"
    assert average_rate_text(600, None) == "—"
