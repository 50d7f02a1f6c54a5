"""A stand-in for the running app, for tests of views that need no processes or Redis."""

from __future__ import annotations

from dataclasses import replace

from celery_core.settings.celery_settings import CelerySettings
from celery_core.settings.crawler_settings import CrawlerSettings
from celery_core.settings.file_settings import FileSettings
from pixcrawler_gui.services.events import (
    ConnectionCheck,
    EventHub,
    Location,
    Role,
    WorkerChanged,
    WorkerRemoved,
    WorkerSnapshot,
    WorkerState,
)
from pixcrawler_gui.services.redis.broker_status import check_connection
from pixcrawler_gui.services.settings_editor import SaveOutcome
from pixcrawler_gui.services.workers.supervisor import Supervisor
from pixcrawler_gui.services.workers.worker_command import WorkerSpec, next_node_name


class FakeSupervisor(Supervisor):
    """Keeps snapshots in memory; state changes are made by the test through `set_state`."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        self._workers: dict[str, WorkerSnapshot] = {}
        self.calls: list[tuple[str, str]] = []
        self.busy = False
        self.shutdowns: list[bool] = []

    def workers(self) -> list[WorkerSnapshot]:
        return list(self._workers.values())

    def log_lines(self, worker_id: str) -> list[str]:
        return [f"log of {worker_id}"]

    def suggest_spec(self, pool: str, concurrency: int) -> WorkerSpec:
        taken = [s.node for s in self._workers.values()]
        return WorkerSpec(next_node_name(taken, "testhost"), pool, concurrency)

    def add_worker(self, spec: WorkerSpec, start: bool = True) -> str:
        worker_id = f"w{len(self._workers) + 1}"
        snapshot = WorkerSnapshot(
            worker_id=worker_id,
            node=spec.name,
            location=Location.LOCAL,
            state=WorkerState.STARTING if start else WorkerState.STOPPED,
            pool=spec.pool,
            concurrency=spec.concurrency,
            queues=spec.queues,
        )
        self._workers[worker_id] = snapshot
        self.hub.publish(WorkerChanged(snapshot))
        return worker_id

    def set_state(self, worker_id: str, state: WorkerState, **changes: object) -> None:
        snapshot = replace(self._workers[worker_id], state=state, **changes)  # type: ignore[arg-type]
        self._workers[worker_id] = snapshot
        self.hub.publish(WorkerChanged(snapshot))

    def start_worker(self, worker_id: str) -> None:
        self.calls.append(("start", worker_id))

    def stop_worker(self, worker_id: str) -> None:
        self.calls.append(("stop", worker_id))

    def restart_worker(self, worker_id: str) -> None:
        self.calls.append(("restart", worker_id))

    def remove_worker(self, worker_id: str) -> None:
        self.calls.append(("remove", worker_id))
        del self._workers[worker_id]
        self.hub.publish(WorkerRemoved(worker_id))

    def is_local(self, node: str) -> bool:
        return any(s.node == node for s in self._workers.values())

    async def jobs_running(self) -> bool:
        return self.busy

    async def shutdown(self, keep_running: bool = False) -> None:
        self.shutdowns.append(keep_running)


class FakeBackend:
    """What MainWindow needs, without Redis: connection tests still use real sockets."""

    def __init__(self) -> None:
        self.hub = EventHub()
        self.supervisor = FakeSupervisor(self.hub)
        self.saved: list[SaveOutcome] = []
        self.restarts = 0
        self.starting_worker = False

    def worker_defaults(self) -> tuple[str, int]:
        return "prefork", 2

    def expects_local_workers(self) -> bool:
        return self.starting_worker

    def settings_classes(self) -> list[type[FileSettings]]:
        return [CelerySettings, CrawlerSettings]

    async def test_connection(self, role: Role, url: str) -> ConnectionCheck:
        return await check_connection(role, url, timeout=1.0)

    def settings_saved(self, outcome: SaveOutcome) -> None:
        self.saved.append(outcome)

    def running_workers(self) -> int:
        return sum(1 for s in self.supervisor.workers() if s.state == WorkerState.READY)

    def restart_running_workers(self) -> int:
        self.restarts += 1
        return self.running_workers()
