"""Worker crashes in words: the notice on the Workers page, the line in a job's details, and
whether a crash is worth a desktop notification (a repeated crash, or the supervisor giving up).
"""

from __future__ import annotations

import signal as signals
import time
from datetime import datetime
from typing import Literal

from pixcrawler_gui.services.events import WorkerCrashed
from pixcrawler_gui.services.jobs.job_events import TasksHandedBack

AlertLevel = Literal["info", "warning", "error"]
REPEAT_WINDOW_S = 300.0  # a second crash within this many seconds is a repeated crash


def signal_name(number: int) -> str:
    """`9` -> `SIGKILL` (the name this computer gives the signal)."""
    try:
        return signals.Signals(number).name
    except ValueError:
        return "an unknown signal"


_SIGNAL_HINTS = {
    "SIGKILL": "something outside PixCrawler ended the worker at once: another program "
    "(kill -9), or the system when memory ran short",
    "SIGSEGV": "the worker crashed inside Python or a library it uses",
    "SIGABRT": "the worker aborted itself after an internal error",
    "SIGBUS": "the worker crashed inside Python or a library it uses",
}


def signal_hint(signal: int | None) -> str | None:
    """What a signal usually means, for someone who never met one: "Signal 9 (SIGKILL) means
    ..."."""
    if signal is None:
        return None
    name = signal_name(signal)
    hint = _SIGNAL_HINTS.get(name)
    return f"Signal {signal} ({name}) means {hint}." if hint else None


def stop_text(exit_code: int | None, signal: int | None) -> str:
    """How a process ended, to follow its name: "was killed by signal 9 (SIGKILL)"."""
    if signal is not None:
        return f"was killed by signal {signal} ({signal_name(signal)})"
    if exit_code is not None:
        return f"exited with code {exit_code}"
    return "stopped without an exit code"


def clock_text(at: float, now: float | None = None) -> str:
    """A time of day, with the day when it was not today: "01:09", "yesterday 23:50"."""
    moment = datetime.fromtimestamp(at)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    if moment.date() == today:
        return f"{moment:%H:%M}"
    if (today - moment.date()).days == 1:
        return f"yesterday {moment:%H:%M}"
    return f"{moment:%d %b %H:%M}"


def tasks_text(count: int) -> str:
    return f"{count} task{'s' * (count != 1)}"


def _gap_text(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


def crash_notice(event: WorkerCrashed, now: float | None = None) -> str:
    """A few sentences for the Workers page: what stopped, how, when, and what became of it
    and of its tasks."""
    head = f"{event.node} {stop_text(event.exit_code, event.signal)} at {clock_text(event.at, now)}"
    if event.restarted:
        head += " and was restarted."
    else:
        head += (
            f". It crashed {event.crashes_in_a_row} times in a row, so PixCrawler no longer "
            "restarts it."
        )
    count = event.tasks_handed_back
    if count == 0:
        return f"{head} It was not working on any task."
    where = "to run again" if event.restarted else "for another worker to run"
    were = "was" if count == 1 else "were"
    return f"{head} {tasks_text(count)} it had taken {were} handed back to the queue, {where}."


def handed_back_text(event: TasksHandedBack, job_ended: bool, now: float | None = None) -> str:
    """The line in a job's details: its tasks went back to the queue after a worker crash."""
    count = len(event.task_ids)
    were = "was" if count == 1 else "were"
    they = ("it" if count == 1 else "they") + (
        " ran again" if job_ended else " will run again, usually within half a minute"
    )
    return (
        f"{tasks_text(count)} {were} handed back to the queue after worker {event.node} "
        f"{stop_text(event.exit_code, event.signal)} at {clock_text(event.at, now)}; {they}."
    )


def crash_alert(
    event: WorkerCrashed,
    last_alert_at: float | None = None,
    window: float = REPEAT_WINDOW_S,
    now: float | None = None,
) -> tuple[str, str, AlertLevel] | None:
    """A desktop notification for a crash, or None when the Workers page is enough.

    The supervisor giving up always notifies. A crash within `window` seconds of the same
    worker's previous one notifies too, at most once per `window` (`last_alert_at`: when this
    worker last raised one), so a worker crashing in a loop does not flood the desktop.
    """
    how = f"{stop_text(event.exit_code, event.signal)} at {clock_text(event.at, now)}"
    handed = event.tasks_handed_back
    tasks = f" {tasks_text(handed)} went back to the queue." if handed else ""
    if not event.restarted:
        return (
            f"Worker stopped for good: {event.node}",
            f"It crashed {event.crashes_in_a_row} times in a row; the last time it {how}. "
            f"PixCrawler no longer restarts it.{tasks} The Workers page shows its log.",
            "error",
        )
    previous = event.previous_crash_at
    if previous is None or event.at - previous > window:
        return None
    if last_alert_at is not None and event.at - last_alert_at <= window:
        return None
    return (
        f"Worker keeps crashing: {event.node}",
        f"It {how}, {_gap_text(event.at - previous)} after its previous crash, and was "
        f"restarted.{tasks} The Workers page shows its log.",
        "warning",
    )
