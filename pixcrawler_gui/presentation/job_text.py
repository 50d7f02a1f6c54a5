"""How jobs and keywords are put into words and colours in the jobs table and notifications."""

from __future__ import annotations

import time
from datetime import datetime

from celery_core.crawler.dataset.space import SpaceCheck
from celery_core.crawler.types import StorageFault
from celery_core.jobs.state import FINAL_JOB_STATES as FINAL_JOB_STATES
from celery_core.jobs.state import JobProgress, JobState, KeywordProgress
from pixcrawler_gui.presentation.source_text import source_problem_text

GREEN = "#2e9d5b"
AMBER = "#d08a12"
RED = "#d03b3b"
GREY = "#8a8f98"
BLUE = "#2f6fd6"

JOB_STATES: dict[str, tuple[str, str]] = {
    JobState.QUEUED: ("Waiting for a worker", GREY),
    JobState.RUNNING: ("Running", BLUE),
    JobState.FINISHING: ("Writing labels and report", BLUE),
    JobState.CANCELLING: ("Cancelling…", AMBER),
    JobState.FINISHED: ("Finished", GREEN),
    JobState.FINISHED_WITH_PROBLEMS: ("Finished with problems", AMBER),
    JobState.PARTIAL: ("Finished, some keywords short", AMBER),
    JobState.CANCELLED: ("Cancelled", AMBER),
    JobState.FAILED: ("Failed", RED),
    JobState.EXPIRED: ("Unknown: results expired", GREY),
}
KEYWORD_STATES = {
    "PENDING": ("Waiting", GREY),
    "STARTED": ("Starting", BLUE),
    "PROGRESS": ("Running", BLUE),
    "RETRY": ("Retrying after an error", AMBER),
    "SUCCESS": ("Done", GREEN),
    "FAILURE": ("Failed", RED),
    "REVOKED": ("Revoked", AMBER),
}


def job_state_text(progress: JobProgress, reason: str | None = None) -> str:
    text = JOB_STATES.get(progress.state, (progress.state.capitalize(), GREY))[0]
    fault = progress.fault
    if progress.state == "failed" and fault is not None:
        text += f": {fault_text(fault)}"
    elif progress.state == "failed" and (reason or progress.error):
        text += f": {reason or progress.error}"
    elif progress.state == "cancelling" and fault is not None:
        text = f"Stopping: {fault_text(fault)}"
    elif progress.state == JobState.FINISHED_WITH_PROBLEMS:
        problem = problem_text(progress)
        if problem:
            text += f": {problem}"
    return text


def problem_text(progress: JobProgress) -> str | None:
    """Why a job finished with problems: the keywords that got nothing because every one of
    their sources failed, and what to do about it."""
    failed = [k for k in progress.keywords if k.sources_all_failed]
    if not failed:
        return None
    reasons: list[str] = []
    for k in failed:
        reason = source_problem_text(k.source_errors)
        if reason and reason not in reasons:
            reasons.append(reason)
    who = (
        f"{failed[0].category} / {failed[0].keyword}"
        if len(failed) == 1
        else f"{len(failed)} keywords"
    )
    return f"{who} got no images. {' '.join(reasons)}".strip()


def failure_text(progress: JobProgress) -> str | None:
    """Why a job failed, in words, when it says."""
    return fault_text(progress.fault) if progress.fault is not None else progress.error


def size_text(n: int) -> str:
    """Bytes as a person reads free space on a disk: 0 MB, 0.4 MB, 45 MB, 1.3 GB."""
    mb = n / 1_000_000
    if mb >= 1000:
        return f"{mb / 1000:.1f} GB"
    if mb < 0.05:
        return "0 MB"
    return f"{mb:.1f} MB" if mb < 10 else f"{mb:.0f} MB"


def fault_text(fault: StorageFault) -> str:
    """A full disk or a refused folder in plain words, naming where."""
    free = f" ({size_text(fault.free_bytes)} free)" if fault.free_bytes is not None else ""
    if fault.kind == "disk_full":
        if fault.error == "EDQUOT":
            return f"Disk quota used up at {fault.path}{free}"
        return f"Disk full at {fault.path}{free}"
    if fault.error == "EROFS":
        return f"Can't write to {fault.path}: the disk is read-only"
    return f"Can't write to {fault.path}: permission denied"


def space_text(check: SpaceCheck) -> str | None:
    """The warning for a job that will clearly not fit on its disk; None when it will. (A job
    with less than the floor left is refused: `jobs.control.NotEnoughSpace` says so.)"""
    if check.fits:
        return None
    free = size_text(check.free_bytes)
    each = f"{max(1, round(check.typical_bytes / 1000))} KB"
    return (
        f"Only {free} free at {check.path}: {check.images} images need about "
        f"{size_text(check.needed_bytes)} (at {each} each), so only about "
        f"{check.images_that_fit} will fit. The job stops when the disk is full."
    )


def job_state_color(state: str) -> str:
    return JOB_STATES.get(state, ("", GREY))[1]


def keyword_state(k: KeywordProgress) -> tuple[str, str]:
    text, color = KEYWORD_STATES.get(k.state, (k.state.capitalize(), GREY))
    if k.state == "SUCCESS":
        if k.cancelled:
            text, color = "Cancelled", AMBER
        elif k.partial:
            text, color = "Done, short of the target", AMBER
    if k.fault is not None:
        text, color = f"Stopped: {fault_text(k.fault)}", RED
    elif k.sources_all_failed:
        # Nothing came because every source failed: a failure, with the reason in words.
        text, color = f"Failed: {source_problem_text(k.source_errors)}", RED
    elif k.state == "FAILURE" and k.error:
        text += f": {k.error}"
    elif k.source_errors and k.state in ("SUCCESS", "PROGRESS"):
        text += f" ({len(k.source_errors)} source problem{'s' * (len(k.source_errors) > 1)})"
    return text, color


def keyword_name(k: KeywordProgress) -> str:
    part = f" (part {k.chunk_index + 1} of {k.chunk_count})" if k.chunk_count > 1 else ""
    return f"{k.category} / {k.keyword}{part}"


def keyword_progress_text(k: KeywordProgress) -> str:
    if k.shared_target:
        return f"{k.counts.kept} of {k.shared_target}, shared"
    return f"{k.in_folder} of {k.target}"


def job_progress_text(p: JobProgress) -> str:
    return f"{p.in_folder} of {p.target}"


def already_had_text(kept: int, already_had: int) -> str:
    """A re-run tops a folder up: say how much of it was there before."""
    return f"{kept} new, {already_had} already in the folder from an earlier run"


def shared_target_text(k: KeywordProgress) -> str | None:
    """Why a website's part can keep more or fewer than the others, or None."""
    if not k.shared_target:
        return None
    return (
        f"The {k.chunk_count} parts of this website share its {k.shared_target} images: "
        "each takes the next picture found, so one part may keep more than another."
    )


def rate_text(rate: float, running: bool) -> str:
    if not running or rate <= 0:
        return "—"
    return f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def when_text(timestamp: float, now: float | None = None) -> str:
    moment = datetime.fromtimestamp(timestamp)
    today = datetime.fromtimestamp(now or time.time()).date()
    if moment.date() == today:
        return f"Today {moment:%H:%M}"
    if (today - moment.date()).days == 1:
        return f"Yesterday {moment:%H:%M}"
    return f"{moment:%d %b %Y %H:%M}"


def counts_text(p: JobProgress) -> str:
    """One line for a notification or a summary."""
    c = p.counts
    parts = [f"{c.kept} image{'s' * (c.kept != 1)} kept"]
    if p.already_had:
        parts.append(f"{p.already_had} already in the folder")
    if c.duplicates:
        parts.append(f"{c.duplicates} duplicate{'s' * (c.duplicates != 1)} dropped")
    if c.invalid:
        parts.append(f"{c.invalid} unusable")
    if c.failed:
        parts.append(f"{c.failed} failed download{'s' * (c.failed != 1)}")
    return ", ".join(parts)
