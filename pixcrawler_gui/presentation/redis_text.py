"""Redis going away, in words and colours: PixCrawler's own server in the status bar (light,
line, tooltip and passing message, for each state the keeper reports), and jobs paused while
Redis cannot be reached."""

from __future__ import annotations

import math
import signal as signals
from dataclasses import dataclass

from pixcrawler_gui.presentation.job_text import AMBER, GREEN, RED
from pixcrawler_gui.services.events import EmbeddedServerStatus, OwnServerState

# A job that has not ended, while the app cannot reach Redis: its workers cannot report (or
# take work), so no rate or time left is true. It goes back to its own state by itself.
JOB_PAUSED = "Paused: waiting for Redis"
KEYWORD_PAUSED = "Paused"
PAUSED_COLOR = AMBER
PAUSED_WHY = (
    "Redis does not answer, so workers can neither report progress nor take work. The job "
    "goes on by itself once Redis answers again; what it saved stays."
)

_COMES_BACK = (
    "PixCrawler is starting it again on the same port, with the data it had: workers and "
    "jobs wait, then go on by themselves."
)


@dataclass(frozen=True)
class ServerShown:
    """What the status bar shows about the server."""

    color: str
    text: str
    tooltip: str
    message: str | None = None  # a passing line in the status bar, when something happened
    message_ms: int = 20_000  # how long it stays (0: until the next one)
    details: str | None = None  # what happened and what to do, for a "Details…" window
    log: tuple[str, ...] = ()  # the end of the server's log, shown there too


def own_server_shown(status: EmbeddedServerStatus) -> ServerShown | None:
    """The status bar's view of the server; None when there is nothing to show (stopped)."""
    state = status.state
    if state == OwnServerState.RUNNING:
        return _running(status)
    if state in (OwnServerState.DOWN, OwnServerState.RESTARTING):
        return _down(status)
    if state == OwnServerState.FAILED:
        return _failed(status)
    if state == OwnServerState.UNAVAILABLE:
        return ServerShown(RED, "No Redis", status.error or "No Redis server answers.")
    return None


def ended_text(status: EmbeddedServerStatus, explain: bool = True) -> str:
    """How the server's process ended: "was ended by SIGKILL", "exited with code 1"."""
    if status.signal is not None:
        name = _signal_name(status.signal)
        outside = " (ended from outside PixCrawler)" if name == "SIGKILL" and explain else ""
        return f"was ended by {name}{outside}"
    if status.exit_code is not None:
        return f"exited with code {status.exit_code}"
    return "stopped"


def _running(status: EmbeddedServerStatus) -> ServerShown:
    text = f"Own Redis on port {status.port}"
    tooltip = (
        f"PixCrawler started its own Redis server ({status.version or 'redis'}) on "
        f"127.0.0.1:{status.port}, because nothing answered at {status.replaces}.\n"
        "It stops when the app closes."
    )
    if status.restarts:
        times = "once" if status.restarts == 1 else f"{status.restarts} times"
        tooltip += (
            f"\nIt stopped unexpectedly and was started again {times}, on the same port with "
            "its data."
        )
        return ServerShown(
            GREEN,
            text,
            tooltip,
            f"PixCrawler's own Redis is running again on port {status.port}: jobs go on by "
            "themselves.",
            10_000,
        )
    message = None
    if status.replaces:
        message = f"Started PixCrawler's own Redis: nothing answered at {status.replaces}"
    return ServerShown(GREEN, text, tooltip, message)


def _down(status: EmbeddedServerStatus) -> ServerShown:
    when = "restarting…"
    if status.state == OwnServerState.DOWN and status.restart_in and status.restart_in >= 1:
        when = f"restarting in {math.ceil(status.restart_in)} s"
    why = f"could not start: {status.error}" if status.error else ended_text(status)
    tooltip = f"PixCrawler's own Redis server (port {status.port}) {why}.\n{_COMES_BACK}"
    if status.crashes_in_a_row > 1:
        tooltip += f"\nIt stopped {status.crashes_in_a_row} times in a row."
    if status.state == OwnServerState.DOWN:
        short = "could not start" if status.error else ended_text(status, explain=False)
        message = f"PixCrawler's own Redis {short}: starting it again…"
        return ServerShown(RED, f"Own Redis stopped: {when}", tooltip, message, 0)
    return ServerShown(RED, f"Own Redis stopped: {when}", tooltip)


def _failed(status: EmbeddedServerStatus) -> ServerShown:
    times = status.crashes_in_a_row
    why = f"could not start: {status.error}" if status.error else ended_text(status)
    what = (
        f"PixCrawler's own Redis server (port {status.port}) stopped {times} times in a row "
        f"and is not started again. The last time it {why}."
    )
    todo = (
        "Jobs are paused until a Redis answers; what they saved stays. Quit and reopen "
        "PixCrawler to try again, or set another Redis in Settings."
    )
    lines = [what]
    if status.last_lines:
        lines += ["", "The end of its log:", *status.last_lines, ""]
    lines.append(todo)
    return ServerShown(
        RED,
        "Own Redis failed: not restarted",
        "\n".join(lines),
        f"PixCrawler's own Redis stopped {times} times in a row: not started again.",
        0,
        details=f"{what}\n\n{todo}",
        log=status.last_lines,
    )


def _signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"signal {number}"
