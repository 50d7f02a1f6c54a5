"""What the jobs table shows as rows: one per keyword (its work units combined), and how long
an ended job took.

A long URL list or a website is cut into parts (`celery_core.jobs.work_items`) so its work
spreads over the workers; a user asked for one keyword, so the table shows one row with the
parts added up, and lists the parts only in that keyword's details.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from celery_core.crawler.types import Counts
from celery_core.jobs.state import JobProgress, KeywordProgress
from pixcrawler_gui.presentation.job_text import duration_text

_RUNNING = ("PROGRESS", "STARTED")


@dataclass(frozen=True)
class KeywordRow:
    """One keyword as the user asked for it: `combined` is what the row shows, `parts` the
    work units behind it (one when the keyword was not cut up)."""

    combined: KeywordProgress
    parts: tuple[KeywordProgress, ...]

    @property
    def name(self) -> str:
        return f"{self.combined.category} / {self.combined.keyword}"

    @property
    def split(self) -> bool:
        return len(self.parts) > 1


def keyword_rows(keywords: tuple[KeywordProgress, ...]) -> tuple[KeywordRow, ...]:
    """The job's tasks grouped by (category, keyword), in the order first seen."""
    groups: dict[tuple[str, str], list[KeywordProgress]] = {}
    for k in keywords:
        groups.setdefault((k.category, k.keyword), []).append(k)
    return tuple(KeywordRow(combine_parts(parts), tuple(parts)) for parts in groups.values())


def combine_parts(parts: list[KeywordProgress] | tuple[KeywordProgress, ...]) -> KeywordProgress:
    """The parts of one keyword as one: counts and rates summed, the target the keyword's (the
    shared one of a website's parts, the chunks' targets added up for a URL list), the state
    running while any part runs and failed only when every part failed. A keyword that was
    not cut up comes back as it is."""
    if not parts:
        raise ValueError("a keyword has at least one part")
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    counts = Counts()
    for k in parts:
        counts.merge(k.counts)
    shared = max(k.shared_target for k in parts)
    target = shared or sum(k.target for k in parts)
    failed = [k for k in parts if k.state == "FAILURE"]
    state = combined_state(tuple(k.state for k in parts))
    partial = bool(failed) or (any(k.partial for k in parts) and counts.kept < target)
    error = None
    if state == "FAILURE":
        more = f" (and {len(failed) - 1} more parts)" if len(failed) > 1 else ""
        error = f"{failed[0].error or 'failed'}{more}"
    return replace(
        first,
        chunk_index=0,
        chunk_count=len(parts),  # > 1: counts only what the parts keep (no "already had")
        state=state,
        counts=counts,
        target=target,
        shared_target=0,  # the row's target is the keyword's own
        rate=sum(k.rate for k in parts if k.state in _RUNNING),
        elapsed_s=max(k.elapsed_s for k in parts),
        cancelled=any(k.cancelled for k in parts),
        partial=partial and state == "SUCCESS",
        error=error,
        thumbnails=tuple(n for k in parts for n in k.thumbnails),
        fault=next((k.fault for k in parts if k.fault is not None), None),
    )


def combined_state(states: tuple[str, ...]) -> str:
    """One Celery-like state for a keyword's parts: running if any runs (or some are done and
    others wait), retrying if any retries, waiting while all wait, failed only if all failed,
    revoked only if all were, else done."""
    if any(s in _RUNNING for s in states):
        return "PROGRESS" if "PROGRESS" in states else "STARTED"
    if "RETRY" in states:
        return "RETRY"
    if all(s == "PENDING" for s in states):
        return "PENDING"
    if "PENDING" in states:
        return "PROGRESS"  # some parts ended, the others wait for a worker
    if all(s == "FAILURE" for s in states):
        return "FAILURE"
    if all(s == "REVOKED" for s in states):
        return "REVOKED"
    return "SUCCESS"


def part_label(k: KeywordProgress) -> str:
    """A part as its keyword's details list it."""
    kind = "share of the website" if k.shared_target else "URLs"
    return f"Part {k.chunk_index + 1} of {k.chunk_count} ({kind})"


def job_duration(
    progress: JobProgress, submitted_at: float, finished_at: float | None
) -> float | None:
    """How long an ended job took, from submitting to its report: the final step's own figure
    when it wrote one, else when the app saw it end. None while it runs or when unknown."""
    elapsed = progress.summary.get("elapsed_s")
    if isinstance(elapsed, int | float) and elapsed > 0:
        return float(elapsed)
    if finished_at is not None and finished_at > submitted_at:
        return finished_at - submitted_at
    return None


def average_rate(kept: int, seconds: float | None) -> float | None:
    if not seconds or seconds <= 0:
        return None
    return kept / seconds


def took_text(seconds: float | None, kept: int) -> str | None:
    """Like "took 2 min 10 s · 4.6 images/s" for an ended job; None when its duration is unknown."""
    if seconds is None:
        return None
    rate = average_rate(kept, seconds) or 0.0
    per_second = f"{rate:.1f}" if rate < 10 else f"{rate:.0f}"
    return f"took {duration_text(seconds)} · {per_second} images/s"


def average_rate_text(kept: int, seconds: float | None) -> str:
    """The Images/s column of an ended job: its average, marked as one."""
    rate = average_rate(kept, seconds)
    if rate is None:
        return "—"
    return f"{rate:.1f} avg" if rate < 10 else f"{rate:.0f} avg"
