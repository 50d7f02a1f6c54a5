"""Typed events that services hand to views, and the hub that delivers them.

Views decide how to word and colour things; an event carries facts (states, numbers, reasons
from the system), never text laid out for a particular widget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeVar

log = logging.getLogger(__name__)

Role = Literal["broker", "backend"]
E = TypeVar("E")


class EndpointState(StrEnum):
    CHECKING = "checking"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DOWN = "down"


@dataclass(frozen=True)
class EndpointStatus:
    """The broker or the result backend answered, or did not (`reason` says why)."""

    role: Role
    url: str  # masked
    state: EndpointState
    reason: str | None = None
    retry_in: float | None = None


class OwnServerState(StrEnum):
    RUNNING = "running"  # answering on its port
    DOWN = "down"  # its process ended unexpectedly; it starts again in `restart_in` seconds
    RESTARTING = "restarting"  # starting again now, on the same port with the same password
    FAILED = "failed"  # it ended too often in a row, or cannot start: not started again
    STOPPED = "stopped"  # stopped with the app
    UNAVAILABLE = "unavailable"  # no Redis at all, and none could be started (`error`)


@dataclass(frozen=True)
class EmbeddedServerStatus:
    """PixCrawler's own Redis server: started (because `replaces` did not answer), down and
    being started again, failed, or stopped."""

    state: OwnServerState
    port: int | None = None
    version: str = ""
    replaces: str | None = None  # masked URL of the configured server that was down
    error: str | None = None  # why it could not start, or why no Redis is available
    restarts: int = 0  # times it was started again after ending unexpectedly
    crashes_in_a_row: int = 0  # as the restart policy counts them
    restart_in: float | None = None  # seconds until it starts again (DOWN)
    exit_code: int | None = None  # how its process ended, when known (None: a signal did)
    signal: int | None = None  # the signal that ended it (POSIX), when one did
    down_since: float | None = None  # wall-clock time (time.time()) it was seen to end
    last_lines: tuple[str, ...] = ()  # the end of its log, passwords masked (FAILED)

    @property
    def running(self) -> bool:
        return self.state == OwnServerState.RUNNING


class WorkerState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    STOPPING = "stopping"
    CRASHED = "crashed"
    RESTARTING = "restarting"
    STOPPED = "stopped"
    FAILED = "failed"
    OFFLINE = "offline"  # a remote worker that stopped sending heartbeats


class Location(StrEnum):
    LOCAL = "local"  # started and supervised by this app
    REMOTE = "remote"  # seen through Redis, started elsewhere


@dataclass(frozen=True)
class WorkerSnapshot:
    """Everything known about one worker at one moment."""

    worker_id: str
    node: str
    location: Location
    state: WorkerState
    pool: str = ""
    concurrency: int | None = None
    queues: tuple[str, ...] = ()
    pid: int | None = None
    active_tasks: int = 0
    processed: int | None = None
    restart_in: float | None = None  # seconds until the next start (state RESTARTING)
    restarts: int = 0
    exit_code: int | None = None
    error: str | None = None  # why the worker crashed or failed, from its own output
    last_lines: tuple[str, ...] = ()  # tail of the log when it failed
    heartbeat_age: float | None = None  # seconds since the last heartbeat, when known


@dataclass(frozen=True)
class WorkerChanged:
    snapshot: WorkerSnapshot


@dataclass(frozen=True)
class WorkerRemoved:
    worker_id: str


@dataclass(frozen=True)
class WorkersOnline:
    """How many workers, here or elsewhere, can take crawl tasks now (or are starting)."""

    count: int


@dataclass(frozen=True)
class WorkerLog:
    worker_id: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class NodeEvent:
    """A Celery event about a worker node (heartbeat, online, offline), from Redis."""

    node: str
    kind: Literal["online", "heartbeat", "offline"]
    active: int = 0
    processed: int = 0
    freq: float = 2.0
    timestamp: float = 0.0


TaskEventKind = Literal["received", "started", "ended"]


@dataclass(frozen=True)
class TaskEvent:
    """A Celery event about one task on one worker node, from Redis: the worker took the task
    (received: reserved or about to run), started it, or is done with it (succeeded, failed,
    retried, rejected or revoked)."""

    node: str
    kind: TaskEventKind
    task_id: str


@dataclass(frozen=True)
class WorkerCrashed:
    """A local worker stopped without being asked to.

    The tasks it held (running or taken ahead) go back to their queue and run again
    (docs/task-results.md): `tasks_handed_back` counts them, `task_ids` names those the app
    saw it take (Celery task events), so jobs can be matched.
    """

    worker_id: str
    node: str
    at: float  # wall-clock time (time.time()) the app saw it stop
    exit_code: int | None  # None when a signal ended it
    signal: int | None  # the signal that killed it (POSIX), when one did
    restarted: bool  # the supervisor starts it again; False: it gave up (the worker failed)
    restart_in: float | None  # seconds until that restart
    crashes_in_a_row: int  # as the restart policy counts them
    previous_crash_at: float | None  # this worker's crash before this one, if any
    tasks_handed_back: int
    task_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeDetails:
    """What `inspect().stats()` / `active_queues()` said about a node."""

    node: str
    pool: str
    concurrency: int | None
    queues: tuple[str, ...]
    pid: int | None = None


@dataclass(frozen=True)
class ClusterLink:
    """Whether the event receiver is connected to the broker."""

    connected: bool
    reason: str | None = None


@dataclass(frozen=True)
class ConnectionCheck:
    """The result of a "Test connection" for one URL."""

    role: Role
    url: str  # masked
    ok: bool
    reason: str | None
    seconds: float
    # What was tested instead of the URL as typed, in words, when the app uses another one:
    # "PixCrawler's own Redis on port 40123 (nothing answers at localhost:6379)".
    used: str | None = None


@dataclass
class EventHub:
    """Delivers events to subscribers, on the thread that publishes (always the GUI thread)."""

    _subscribers: list[tuple[type[Any], Callable[[Any], None]]] = field(default_factory=list)

    def subscribe(self, kind: type[E], callback: Callable[[E], None]) -> Callable[[], None]:
        """Call `callback` with each event of `kind`; returns a function that unsubscribes."""
        entry: tuple[type[Any], Callable[[Any], None]] = (kind, callback)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    def publish(self, event: object) -> None:
        for kind, callback in list(self._subscribers):
            if isinstance(event, kind):
                try:
                    callback(event)
                except Exception:  # one broken subscriber must not starve the others
                    log.exception("event subscriber failed on %r", event)
