"""Workers this app did not start but sees through Redis: watched, never started or stopped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from pixcrawler_gui.services.events import (
    EventHub,
    Location,
    NodeDetails,
    NodeEvent,
    WorkerChanged,
    WorkerRemoved,
    WorkerSnapshot,
    WorkerState,
)

FORGET_AFTER = 300.0  # an offline remote worker leaves the list after this many seconds


@dataclass
class _Node:
    snapshot: WorkerSnapshot
    last_seen: float
    freq: float


class RemoteWorkers:
    def __init__(
        self,
        hub: EventHub,
        is_local: Callable[[str], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = hub
        self._is_local = is_local
        self._clock = clock
        self._nodes: dict[str, _Node] = {}
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe = [
            hub.subscribe(NodeEvent, self._on_event),
            hub.subscribe(NodeDetails, self._on_details),
        ]

    def nodes(self) -> list[str]:
        return list(self._nodes)

    def snapshots(self) -> list[WorkerSnapshot]:
        return [n.snapshot for n in self._nodes.values()]

    def start(self, check_every: float = 2.0) -> None:
        self._task = asyncio.get_running_loop().create_task(self._expire(check_every))

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _on_event(self, event: NodeEvent) -> None:
        if self._is_local(event.node):
            self._drop(event.node)  # a node we started ourselves after seeing it as remote
            return
        now = self._clock()
        node = self._nodes.get(event.node)
        if node is None:
            node = _Node(
                WorkerSnapshot(
                    worker_id=f"remote:{event.node}",
                    node=event.node,
                    location=Location.REMOTE,
                    state=WorkerState.READY,
                ),
                now,
                event.freq,
            )
            self._nodes[event.node] = node
        node.last_seen, node.freq = now, event.freq
        if event.kind == "offline":
            self._set(node, state=WorkerState.OFFLINE, active_tasks=0, heartbeat_age=None)
            return
        state = WorkerState.BUSY if event.active > 0 else WorkerState.READY
        self._set(
            node,
            state=state,
            active_tasks=event.active,
            processed=event.processed,
            heartbeat_age=None,
        )

    def _on_details(self, details: NodeDetails) -> None:
        node = self._nodes.get(details.node)
        if node is not None:
            self._set(
                node,
                pool=details.pool,
                concurrency=details.concurrency,
                queues=details.queues,
                pid=details.pid,
            )

    async def _expire(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            now = self._clock()
            for name, node in list(self._nodes.items()):
                silent = now - node.last_seen
                if node.snapshot.state == WorkerState.OFFLINE:
                    if silent > FORGET_AFTER:
                        self._drop(name)
                elif silent > max(3 * node.freq, 6.0) + 2.0:
                    # No worker-offline event: the machine or its network went away.
                    self._set(node, state=WorkerState.OFFLINE, heartbeat_age=round(silent))

    def _set(self, node: _Node, **changes: object) -> None:
        new = replace(node.snapshot, **changes)  # type: ignore[arg-type]
        if new != node.snapshot:
            node.snapshot = new
            self._hub.publish(WorkerChanged(new))

    def _drop(self, name: str) -> None:
        node = self._nodes.pop(name, None)
        if node is not None:
            self._hub.publish(WorkerRemoved(node.snapshot.worker_id))
