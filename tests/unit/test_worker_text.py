"""Worker crashes in words, and which crashes pop up a desktop notification."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from pixcrawler_gui.presentation.worker_text import (
    REPEAT_WINDOW_S,
    clock_text,
    crash_alert,
    crash_notice,
    handed_back_text,
    signal_hint,
    stop_text,
)
from pixcrawler_gui.services.events import WorkerCrashed
from pixcrawler_gui.services.jobs.job_events import TasksHandedBack

AT = datetime(2025, 3, 14, 1, 9, 30).timestamp()
NODE = "pixcrawler-local-1@desk"


def _crash(**changes: object) -> WorkerCrashed:
    event = WorkerCrashed(
        worker_id="w1",
        node=NODE,
        at=AT,
        exit_code=None,
        signal=9,
        restarted=True,
        restart_in=1.0,
        crashes_in_a_row=1,
        previous_crash_at=None,
        tasks_handed_back=2,
        task_ids=("a", "b"),
    )
    return replace(event, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exit_code", "signal", "text"),
    [
        (None, 9, "was killed by signal 9 (SIGKILL)"),
        (None, 15, "was killed by signal 15 (SIGTERM)"),
        (1, None, "exited with code 1"),
        (None, None, "stopped without an exit code"),
    ],
)
def test_how_a_worker_stopped(exit_code: int | None, signal: int | None, text: str) -> None:
    assert stop_text(exit_code, signal) == text


def test_times_of_day_name_the_day_only_when_it_was_not_today() -> None:
    assert clock_text(AT, now=AT + 3600) == "01:09"
    assert clock_text(AT, now=AT + 86400) == "yesterday 01:09"
    assert clock_text(AT, now=AT + 10 * 86400) == "14 Mar 01:09"


def test_notice_of_a_crash_with_a_restart_and_tasks_handed_back() -> None:
    assert crash_notice(_crash(), now=AT) == (
        f"{NODE} was killed by signal 9 (SIGKILL) at 01:09 and was restarted. 2 tasks it had "
        "taken were handed back to the queue, to run again."
    )


def test_notice_of_an_idle_worker_and_of_one_given_up_on() -> None:
    idle = crash_notice(_crash(tasks_handed_back=0, task_ids=()), now=AT)
    assert idle.endswith("and was restarted. It was not working on any task.")
    given_up = crash_notice(
        _crash(exit_code=1, signal=None, restarted=False, crashes_in_a_row=4,
               tasks_handed_back=1, task_ids=("a",)),
        now=AT,
    )  # fmt: skip
    assert given_up == (
        f"{NODE} exited with code 1 at 01:09. It crashed 4 times in a row, so PixCrawler no "
        "longer restarts it. 1 task it had taken was handed back to the queue, for another "
        "worker to run."
    )


def test_job_line_says_how_many_tasks_went_back_and_whether_they_still_run() -> None:
    event = TasksHandedBack("job1", NODE, AT, None, 9, ("a", "b"))
    assert handed_back_text(event, job_ended=False, now=AT) == (
        f"2 tasks were handed back to the queue after worker {NODE} was killed by signal 9 "
        "(SIGKILL) at 01:09; they will run again, usually within half a minute."
    )
    one = TasksHandedBack("job1", NODE, AT, 1, None, ("a",))
    assert handed_back_text(one, job_ended=True, now=AT).endswith(
        "exited with code 1 at 01:09; it ran again."
    )


def test_a_signal_is_explained_when_it_has_a_usual_meaning() -> None:
    assert signal_hint(9) == (
        "Signal 9 (SIGKILL) means something outside PixCrawler ended the worker at once: "
        "another program (kill -9), or the system when memory ran short."
    )
    assert signal_hint(None) is None and signal_hint(1) is None  # SIGHUP: no usual meaning


def test_a_single_crash_does_not_pop_up() -> None:
    assert crash_alert(_crash()) is None
    long_ago = _crash(previous_crash_at=AT - REPEAT_WINDOW_S - 1)
    assert crash_alert(long_ago) is None


def test_a_second_crash_within_minutes_pops_up_once_per_window() -> None:
    again = _crash(previous_crash_at=AT - 40, crashes_in_a_row=2)
    alert = crash_alert(again, now=AT)
    assert alert is not None
    title, message, level = alert
    assert (title, level) == (f"Worker keeps crashing: {NODE}", "warning")
    assert message == (
        "It was killed by signal 9 (SIGKILL) at 01:09, 40 s after its previous crash, and was "
        "restarted. 2 tasks went back to the queue. The Workers page shows its log."
    )
    # A third crash right after: the user was told a minute ago.
    assert crash_alert(_crash(previous_crash_at=AT - 20), last_alert_at=AT - 60) is None
    assert crash_alert(_crash(previous_crash_at=AT - 20), last_alert_at=AT - 400) is not None


def test_giving_up_always_pops_up_as_an_error() -> None:
    gave_up = _crash(exit_code=1, signal=None, restarted=False, restart_in=None,
                     crashes_in_a_row=5, previous_crash_at=AT - 8)  # fmt: skip
    alert = crash_alert(gave_up, last_alert_at=AT - 10, now=AT)
    assert alert is not None
    title, message, level = alert
    assert (title, level) == (f"Worker stopped for good: {NODE}", "error")
    assert message.startswith(
        "It crashed 5 times in a row; the last time it exited with code 1 at 01:09. "
    )
