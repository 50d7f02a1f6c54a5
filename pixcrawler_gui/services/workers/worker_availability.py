"""Whether any worker can take the jobs: local or remote, counted from worker events.

Views show a "no worker is running" notice from this; the first count goes out a few seconds
after the app connects, once remote workers have had time to send a heartbeat.
"""

from __future__ import annotations

from pixcrawler_gui.services.events import (
    EventHub,
    WorkerChanged,
    WorkerRemoved,
    WorkersOnline,
    WorkerState,
)

AVAILABLE = frozenset(
    {WorkerState.STARTING, WorkerState.READY, WorkerState.BUSY, WorkerState.RESTARTING}
)


class WorkerAvailability:
    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self._states: dict[str, WorkerState] = {}
        self._announced: int | None = None
        self._ready_to_announce = False
        hub.subscribe(WorkerChanged, self._changed)
        hub.subscribe(WorkerRemoved, self._removed)

    @property
    def count(self) -> int:
        return sum(1 for state in self._states.values() if state in AVAILABLE)

    def announce(self) -> None:
        """Start publishing (the first count now, then each change)."""
        self._ready_to_announce = True
        self._publish()

    def _changed(self, event: WorkerChanged) -> None:
        self._states[event.snapshot.worker_id] = event.snapshot.state
        self._publish()

    def _removed(self, event: WorkerRemoved) -> None:
        self._states.pop(event.worker_id, None)
        self._publish()

    def _publish(self) -> None:
        count = self.count
        if self._ready_to_announce and count != self._announced:
            self._announced = count
            self._hub.publish(WorkersOnline(count))
