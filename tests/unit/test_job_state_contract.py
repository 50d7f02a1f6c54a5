"""Issue 12: one typed contract for a job's state; failure shown as failure."""

from __future__ import annotations

import pytest

from celery_core.crawler.types import Counts, StorageFault
from celery_core.jobs.state import (
    FINAL_JOB_STATES,
    RUNNING_JOB_STATES,
    SUCCEEDED_JOB_STATES,
    JobState,
    TaskReport,
    aggregate_job,
    keyword_progress,
)
from pixcrawler_gui.cli import EXIT_FAILED, EXIT_OK, EXIT_PROBLEMS
from pixcrawler_gui.cli.crawl import exit_code
from pixcrawler_gui.presentation import job_text
from pixcrawler_gui.presentation.source_text import source_problem_text

OFFLINE = ["bing: dns_error", "duckduckgo: dns_error"]


def test_job_state_reads_the_stored_strings() -> None:
    assert JobState("finished") is JobState.FINISHED
    assert JobState.PARTIAL == "partial"
    assert JobState.parse("no-such-state") is JobState.FAILED  # never shown as success
    assert FINAL_JOB_STATES.isdisjoint(RUNNING_JOB_STATES)
    assert SUCCEEDED_JOB_STATES < FINAL_JOB_STATES
    assert JobState.FINISHED_WITH_PROBLEMS in FINAL_JOB_STATES - SUCCEEDED_JOB_STATES


@pytest.mark.parametrize(
    ("errors", "words"),
    [
        (OFFLINE, "Couldn't reach Bing or DuckDuckGo: is this computer online?"),
        (["bing: connection_error"], "Couldn't reach Bing: is this computer online?"),
        (["bing: blocked"], "Bing asked for a captcha"),
        (["duckduckgo: no_results"], "DuckDuckGo found no images for this keyword"),
        (["bing: markup_changed"], "update PixCrawler"),
        (["google: timeout"], "Google didn't answer in time"),
        (["bing: http_503"], "Bing had a server error (HTTP 503): try again later"),
        (["website: robots_disallowed"], "The website forbids crawling in its robots.txt"),
    ],
)
def test_source_problems_in_plain_words(errors: list[str], words: str) -> None:
    text = source_problem_text(errors)
    assert text is not None and words in text
    assert "_" not in text  # no codes shown to a user


def test_no_source_problem_is_no_text() -> None:
    assert source_problem_text([]) is None


def test_task_report_round_trips_through_meta() -> None:
    fault = StorageFault("disk_full", "/data", 100, "ENOSPC", 1.0)
    report = TaskReport(
        job_id="j",
        category="c",
        keyword="k",
        chunk_index=1,
        chunk_count=3,
        counts=Counts(found=4, kept=2, source_errors=["bing: timeout"]),
        target=10,
        elapsed_s=1.234,
        rate=0.5,
        thumbnails=(1, 2),
        partial=True,
        fault=fault,
    )
    back = TaskReport.from_meta(report.to_meta())
    assert back == TaskReport.from_meta(back.to_meta())
    assert back.counts.kept == 2 and back.counts.source_errors == ["bing: timeout"]
    assert back.thumbnails == (1, 2) and back.partial and back.fault == fault
    assert back.elapsed_s == 1.23
    # An older or damaged record reads with defaults.
    assert TaskReport.from_meta({"target": "x"}, default_target=7).target == 7


def _ended(counts: Counts) -> dict[str, object]:
    result = {"category": "animals", "keyword": "cats", "counts": counts.to_dict(), "target": 300}
    return {"status": "SUCCESS", "result": {"task_id": "t1", "result": result}}


def _item() -> dict[str, object]:
    return {"category": "animals", "keyword": "cats", "target": 300}


def test_keyword_whose_every_source_failed_is_a_failure() -> None:
    k = keyword_progress("t1", _item(), _ended(Counts(source_errors=OFFLINE)))
    assert k.sources_all_failed
    text, color = job_text.keyword_state(k)
    assert color == job_text.RED
    assert "Couldn't reach Bing or DuckDuckGo: is this computer online?" in text
    # A source that failed beside one that delivered is no failure of the keyword.
    some = keyword_progress("t1", _item(), _ended(Counts(found=5, kept=3, source_errors=OFFLINE)))
    assert not some.sources_all_failed
    assert job_text.keyword_state(some)[1] == job_text.GREEN


def test_job_finished_with_problems_is_amber_and_exits_4() -> None:
    k = keyword_progress("t1", _item(), _ended(Counts(source_errors=OFFLINE)))
    done = {"task_id": "cb", "result": {"state": "finished_with_problems"}}
    callback = {"status": "SUCCESS", "result": done}
    job = aggregate_job({"job_id": "j", "name": "pets"}, (k,), callback)
    assert job.state is JobState.FINISHED_WITH_PROBLEMS and job.finished
    assert job_text.job_state_color(job.state) == job_text.AMBER
    text = job_text.job_state_text(job)
    assert text.startswith("Finished with problems: animals / cats got no images.")
    assert "is this computer online?" in text
    assert exit_code(job.state) == EXIT_PROBLEMS
    assert exit_code(JobState.FINISHED) == exit_code(JobState.PARTIAL) == EXIT_OK
    assert exit_code(JobState.CANCELLED) == exit_code(JobState.FAILED) == EXIT_FAILED
