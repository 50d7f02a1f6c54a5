"""Worker supervision: the interface views talk to, and the implementation that runs processes.

Views hold a `Supervisor`; tests of views can hand them a fake one, while integration tests
use `LocalSupervisor` with real worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

from pixcrawler_gui.services.background import TaskSet
from pixcrawler_gui.services.events import (
    EventHub,
    NodeEvent,
    TaskEvent,
    WorkerChanged,
    WorkerRemoved,
    WorkerSnapshot,
    WorkerState,
)
from pixcrawler_gui.services.workers.managed_worker import Launch, ManagedWorker
from pixcrawler_gui.services.workers.restart_policy import RestartPolicy
from pixcrawler_gui.services.workers.worker_command import (
    WorkerSpec,
    next_node_name,
    worker_command,
    worker_environment,
)

LIVENESS_TIMEOUT = 10.0  # a worker beats every 2 s; this many seconds of silence is news
RUNNING_STATES = frozenset(
    {WorkerState.STARTING, WorkerState.READY, WorkerState.BUSY, WorkerState.RESTARTING}
)


class Supervisor(ABC):
    """Add, start, stop, restart and watch the workers of this computer."""

    hub: EventHub

    @abstractmethod
    def workers(self) -> list[WorkerSnapshot]:
        """The local workers, in the order they were added."""

    @abstractmethod
    def log_lines(self, worker_id: str) -> list[str]:
        """What the worker has written so far (the most recent lines)."""

    @abstractmethod
    def suggest_spec(self, pool: str, concurrency: int) -> WorkerSpec:
        """A spec for a new worker, with a node name no other worker uses."""

    @abstractmethod
    def add_worker(self, spec: WorkerSpec, start: bool = True) -> str:
        """Register a worker (and start it); returns its id."""

    @abstractmethod
    def start_worker(self, worker_id: str) -> None: ...

    @abstractmethod
    def stop_worker(self, worker_id: str) -> None: ...

    @abstractmethod
    def restart_worker(self, worker_id: str) -> None: ...

    @abstractmethod
    def remove_worker(self, worker_id: str) -> None:
        """Forget a stopped or failed worker."""

    @abstractmethod
    def is_local(self, node: str) -> bool:
        """Whether `node` is one of the workers this app runs."""

    @abstractmethod
    async def jobs_running(self) -> bool:
        """Whether closing the app now would interrupt work (a local worker is busy)."""

    @abstractmethod
    async def shutdown(self, keep_running: bool = False) -> None:
        """Stop every worker gracefully, or leave them running in the background."""


class LocalSupervisor(Supervisor):
    """Runs `pixcrawler worker` processes with `QProcess` and restarts the ones that crash."""

    def __init__(
        self,
        hub: EventHub,
        executor: Executor,
        policy: RestartPolicy | None = None,
        grace_period: float = 30.0,
        hostname: str | None = None,
        cwd: str | None = None,
        base_env: Mapping[str, str] | None = None,
        include: Sequence[str] = (),
        known_nodes: Callable[[], Sequence[str]] = tuple,
        broker_up: Callable[[], bool] = lambda: True,
    ) -> None:
        self.hub = hub
        # Control commands to a broker that does not answer block for seconds (kombu retries).
        self._broker_up = broker_up
        self.hostname = hostname or socket.gethostname()
        self._executor = executor
        self._policy = policy or RestartPolicy()
        self._grace = grace_period
        self._cwd = cwd
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._include = tuple(include)
        self._known_nodes = known_nodes
        self._workers: dict[str, ManagedWorker] = {}
        self._ids = itertools.count(1)
        self._tasks = TaskSet()
        self._endpoints: tuple[str, str] | None = None
        self._endpoints_ready = asyncio.Event()
        self._control: Any = None  # the Celery app, for control commands
        self._liveness: asyncio.Task[None] | None = None
        hub.subscribe(NodeEvent, self._on_node_event)
        hub.subscribe(TaskEvent, self._on_task_event)

    def configure(self, broker_url: str, result_backend: str, control: Any) -> None:
        """Endpoints and the Celery app to use; workers added before this wait for it."""
        self._endpoints = (broker_url, result_backend)
        self._control = control
        self._endpoints_ready.set()
        if self._liveness is None:
            self._liveness = self._spawn(self._watch_liveness())

    def workers(self) -> list[WorkerSnapshot]:
        return [w.snapshot for w in self._workers.values()]

    def log_lines(self, worker_id: str) -> list[str]:
        worker = self._workers.get(worker_id)
        return list(worker.log) if worker else []

    def suggest_spec(self, pool: str, concurrency: int) -> WorkerSpec:
        taken = [w.spec.name for w in self._workers.values()] + list(self._known_nodes())
        name = next_node_name(taken, self.hostname)
        return WorkerSpec(name=name, pool=pool, concurrency=concurrency, include=self._include)

    def add_worker(self, spec: WorkerSpec, start: bool = True) -> str:
        if any(w.spec.name == spec.name for w in self._workers.values()):
            raise ValueError(f"a worker named {spec.name} already exists")
        worker_id = f"w{next(self._ids)}"
        worker = ManagedWorker(
            worker_id, spec, self.hub, self._launch, self._graceful_stop, self._policy, self._grace
        )
        self._workers[worker_id] = worker
        self.hub.publish(WorkerChanged(worker.snapshot))
        if start:
            worker.start()
        return worker_id

    def start_worker(self, worker_id: str) -> None:
        self._workers[worker_id].start()

    def stop_worker(self, worker_id: str) -> None:
        self._spawn(self._workers[worker_id].stop())

    def restart_worker(self, worker_id: str) -> None:
        worker = self._workers[worker_id]

        async def restart() -> None:
            await worker.stop()
            worker.start()

        self._spawn(restart())

    def remove_worker(self, worker_id: str) -> None:
        worker = self._workers[worker_id]
        if worker.active():
            raise RuntimeError(f"stop {worker.spec.name} before removing it")
        del self._workers[worker_id]
        self.hub.publish(WorkerRemoved(worker_id))

    def is_local(self, node: str) -> bool:
        return any(w.spec.name == node for w in self._workers.values())

    async def jobs_running(self) -> bool:
        running = [w for w in self._workers.values() if w.state in RUNNING_STATES]
        if any(w.state == WorkerState.BUSY for w in running):
            return True
        nodes = [w.spec.name for w in running if w.state == WorkerState.READY]
        if not nodes or self._control is None or not self._broker_up():
            return False  # no broker: nothing can be running that we could interrupt
        # Heartbeats are up to 2 s old: ask the workers themselves before answering.
        loop = asyncio.get_running_loop()
        active = await loop.run_in_executor(self._executor, self._active_tasks, nodes)
        return any(active.values())

    def _active_tasks(self, nodes: list[str]) -> dict[str, list[Any]]:
        try:
            reply = self._control.control.inspect(destination=nodes, timeout=1.0).active()
        except Exception:  # no broker: nothing can be running that we could interrupt
            return {}
        return reply or {}

    async def shutdown(self, keep_running: bool = False, grace: float | None = None) -> None:
        """As `Supervisor.shutdown`; `grace` shortens the wait before a worker is killed (Redis
        is gone: a warm shutdown could neither finish its tasks' reports nor ack them)."""
        if self._liveness is not None:
            self._liveness.cancel()
        if keep_running:
            for worker in self._workers.values():
                worker.detach()
        else:
            await asyncio.gather(*(w.stop(grace) for w in self._workers.values()))
        await self._tasks.close()

    async def _launch(self, spec: WorkerSpec) -> Launch:
        await self._endpoints_ready.wait()
        assert self._endpoints is not None
        broker, backend = self._endpoints
        frozen = bool(getattr(sys, "frozen", False))
        argv = worker_command(spec, sys.executable, frozen=frozen)
        env = worker_environment(self._base_env, broker, backend)
        return Launch(argv=argv, env=env, cwd=self._cwd)

    async def _graceful_stop(self, worker: ManagedWorker) -> None:
        process = worker.process
        if process is None:
            return
        if sys.platform == "win32":
            # Windows ignores terminate() for console programs; ask the worker over the broker.
            if self._control is not None and self._broker_up():
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._executor, self._shutdown_node, worker.spec.name)
        else:
            process.terminate()  # SIGTERM: Celery's warm shutdown

    def _shutdown_node(self, node: str) -> None:
        with contextlib.suppress(Exception):
            self._control.control.shutdown(destination=[node])

    def _on_node_event(self, event: NodeEvent) -> None:
        for worker in self._workers.values():
            if worker.spec.name == event.node:
                worker.on_node_event(event.kind, event.active, event.processed)

    def _on_task_event(self, event: TaskEvent) -> None:
        for worker in self._workers.values():
            if worker.spec.name == event.node:
                worker.on_task_event(event.kind, event.task_id)

    async def _watch_liveness(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            for worker in self._workers.values():
                age = worker.heartbeat_age()
                if worker.state not in (WorkerState.READY, WorkerState.BUSY) or age is None:
                    continue
                silent = round(age) if age > LIVENESS_TIMEOUT else None
                worker.set_heartbeat_age(silent)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return self._tasks.spawn(coro)
