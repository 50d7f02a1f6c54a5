"""The local workers the app starts when it opens, remembered in `<config dir>/workers.json`.

A first run has no file: one worker with the settings' pool and concurrency starts, so a
person who never opens the Workers page can still crawl. Afterwards the file follows what
the person adds and removes; an empty list means "start none" (a team whose workers run on
other machines). A damaged file is set aside with a warning, never silently overwritten.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pixcrawler_gui.services.events import EventHub, WorkerChanged, WorkerRemoved, WorkerSnapshot
from pixcrawler_gui.services.workers.worker_command import DEFAULT_QUEUES, POOLS

log = logging.getLogger(__name__)

FILE_NAME = "workers.json"


@dataclass(frozen=True)
class SavedWorker:
    pool: str
    concurrency: int
    queues: tuple[str, ...] = DEFAULT_QUEUES

    def to_dict(self) -> dict[str, object]:
        return {"pool": self.pool, "concurrency": self.concurrency, "queues": list(self.queues)}

    @classmethod
    def from_dict(cls, data: object) -> SavedWorker:
        if not isinstance(data, dict):
            raise ValueError("each worker must be an object")
        pool, concurrency, queues = data.get("pool"), data.get("concurrency"), data.get("queues")
        if pool not in POOLS:
            raise ValueError(f"pool {pool!r} is not one of {', '.join(POOLS)}")
        if not isinstance(concurrency, int) or not 1 <= concurrency <= 1024:
            raise ValueError(f"concurrency {concurrency!r} is not a number from 1 to 1024")
        if queues is None:
            queues = list(DEFAULT_QUEUES)
        if (
            not isinstance(queues, list)
            or not queues
            or not all(isinstance(q, str) and q for q in queues)
        ):
            raise ValueError("queues must be a non-empty list of names")
        return cls(str(pool), concurrency, tuple(queues))


class WorkerRoster:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[SavedWorker] | None:
        """The saved workers, or None when nothing was ever saved (or the file was unusable)."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read %s: %s", self.path, exc)
            return None
        try:
            data = json.loads(raw)
            items = data.get("workers") if isinstance(data, dict) else None
            if not isinstance(items, list):
                raise ValueError('expected {"workers": [...]}')
            return [SavedWorker.from_dict(item) for item in items]
        except ValueError as exc:
            kept = self.path.with_name(self.path.name + ".invalid")
            with contextlib.suppress(OSError):
                os.replace(self.path, kept)
            log.warning("%s is not a worker list (%s); set aside as %s", self.path, exc, kept.name)
            return None

    def expects_workers(self) -> bool:
        """Whether opening the app starts a local worker: yes unless the file says "none" (an
        empty list). Reads without setting a damaged file aside (load() does that)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return True  # no file (a first run) or an unusable one: one worker starts
        items = data.get("workers") if isinstance(data, dict) else None
        return not isinstance(items, list) or bool(items)

    def save(self, workers: Sequence[SavedWorker]) -> None:
        """Write the list atomically: a crash leaves the old file or the new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"workers": [w.to_dict() for w in workers]}, indent=2) + "\n"
        fd, temp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


class RosterKeeper:
    """Saves the roster whenever a local worker is added or removed."""

    def __init__(
        self, hub: EventHub, roster: WorkerRoster, workers: Callable[[], list[WorkerSnapshot]]
    ) -> None:
        self._roster = roster
        self._workers = workers
        self._saved: list[SavedWorker] | None = None
        self._unsubscribe = [
            hub.subscribe(WorkerChanged, self._changed),
            hub.subscribe(WorkerRemoved, self._changed),
        ]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def _changed(self, _event: object) -> None:
        current = [
            SavedWorker(s.pool, s.concurrency or 1, s.queues or DEFAULT_QUEUES)
            for s in self._workers()
        ]
        if current == self._saved:
            return
        try:
            self._roster.save(current)
        except OSError as exc:
            log.warning("cannot save the worker list to %s: %s", self._roster.path, exc)
            return
        self._saved = current
