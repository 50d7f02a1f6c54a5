"""Worker events from Redis: a Celery event receiver in a thread, feeding the event loop.

Every worker sharing the broker, on this computer or another, sends `worker-online`,
`worker-heartbeat` (every 2 s) and `worker-offline`, and task events (a worker took, started
or finished a task: which tasks a crashed worker held). The receiver runs in its own thread
because kombu's consumer blocks; each event crosses to the loop with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from celery import Celery

from celery_core.settings.redis_urls import mask_secrets
from pixcrawler_gui.services.background import TaskSet
from pixcrawler_gui.services.events import (
    ClusterLink,
    EventHub,
    NodeDetails,
    NodeEvent,
    TaskEvent,
    TaskEventKind,
)

log = logging.getLogger(__name__)

_KINDS = {"worker-online": "online", "worker-heartbeat": "heartbeat", "worker-offline": "offline"}
_TASK_KINDS: dict[str, TaskEventKind] = {
    "task-received": "received",
    "task-started": "started",
    **{f"task-{end}": "ended" for end in ("succeeded", "failed", "retried", "rejected", "revoked")},
}


class ClusterMonitor:
    def __init__(
        self,
        hub: EventHub,
        executor: Executor,
        is_local: Callable[[str], bool],
        reconnect_delay: float = 2.0,
    ) -> None:
        self._hub = hub
        self._executor = executor
        self._is_local = is_local
        self._reconnect_delay = reconnect_delay
        self._app: Celery | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._receiver: Any = None
        self._described: set[str] = set()
        self._tasks = TaskSet()
        self._unsubscribe: Callable[[], None] | None = None
        self.connected = False

    def start(self, app: Celery) -> None:
        self._app = app
        self._loop = asyncio.get_running_loop()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._receive, name="celery-events", daemon=True)
        self._thread.start()
        self._unsubscribe = self._hub.subscribe(NodeEvent, self._on_node_event)

    async def stop(self) -> None:
        self._stopping.set()
        receiver = self._receiver
        if receiver is not None:
            receiver.should_stop = True
        await self._tasks.close()
        thread, self._thread = self._thread, None
        if thread is not None:
            # The consumer notices should_stop within its 1 s drain interval.
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, thread.join, 10.0)
            if thread.is_alive():
                log.warning("the Celery event receiver did not stop within 10 s")
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def forget(self, node: str) -> None:
        """Ask for a node's pool and queues again the next time it shows up."""
        self._described.discard(node)

    # -- receiver thread -----------------------------------------------------------------------

    def _receive(self) -> None:
        assert self._app is not None
        while not self._stopping.is_set():
            try:
                with self._app.connection_for_read() as conn:
                    # One attempt (kombu would sleep 2 s before a second): this loop paces
                    # the retries, and a stop does not wait for a sleep.
                    conn.ensure_connection(max_retries=0)
                    handlers = {name: self._on_event for name in _KINDS}
                    handlers.update({name: self._on_task_event for name in _TASK_KINDS})
                    handlers["*"] = _ignore
                    receiver = self._app.events.Receiver(conn, handlers=handlers)
                    self._receiver = receiver
                    if self._stopping.is_set():
                        return
                    self._post(ClusterLink(True))
                    receiver.capture(limit=None, timeout=None, wakeup=True)
            except Exception as exc:  # kombu raises many types for a lost broker
                if self._stopping.is_set():
                    return
                self._post(ClusterLink(False, mask_secrets(str(exc)) or type(exc).__name__))
            finally:
                self._receiver = None
            self._stopping.wait(self._reconnect_delay)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = _KINDS.get(str(event.get("type")))
        node = event.get("hostname")
        if kind is None or not isinstance(node, str):
            return
        self._post(
            NodeEvent(
                node=node,
                kind=kind,  # type: ignore[arg-type]
                active=_int(event.get("active")),
                processed=_int(event.get("processed")),
                freq=float(event.get("freq") or 2.0),
                timestamp=float(event.get("timestamp") or 0.0),
            )
        )

    def _on_task_event(self, event: dict[str, Any]) -> None:
        kind = _TASK_KINDS.get(str(event.get("type")))
        node, task_id = event.get("hostname"), event.get("uuid")
        if kind is None or not isinstance(node, str) or not isinstance(task_id, str):
            return
        self._post(TaskEvent(node=node, kind=kind, task_id=task_id))

    def _post(self, event: object) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if isinstance(event, ClusterLink):
            self.connected = event.connected
        with contextlib.suppress(RuntimeError):  # the loop closed under us at exit
            loop.call_soon_threadsafe(self._hub.publish, event)

    # -- details of nodes seen for the first time ----------------------------------------------

    def _on_node_event(self, event: NodeEvent) -> None:
        if event.kind == "offline":
            self._described.discard(event.node)
            return
        if event.node in self._described or self._is_local(event.node):
            return
        self._described.add(event.node)
        self._tasks.spawn(self._describe(event.node))

    async def _describe(self, node: str) -> None:
        loop = asyncio.get_running_loop()
        details = await loop.run_in_executor(self._executor, self._inspect, node)
        if details is not None:
            self._hub.publish(details)
        else:
            self._described.discard(node)

    def _inspect(self, node: str) -> NodeDetails | None:
        assert self._app is not None
        try:
            inspect = self._app.control.inspect(destination=[node], timeout=1.0)
            stats = (inspect.stats() or {}).get(node) or {}
            queues = (inspect.active_queues() or {}).get(node) or []
        except Exception:
            return None
        if not stats:
            return None
        pool = stats.get("pool") or {}
        implementation = str(pool.get("implementation", ""))
        return NodeDetails(
            node=node,
            pool=_pool_name(implementation),
            concurrency=_int(pool.get("max-concurrency")) or None,
            queues=tuple(str(q.get("name")) for q in queues if isinstance(q, dict)),
            pid=_int(stats.get("pid")) or None,
        )


def _ignore(event: dict[str, Any]) -> None:
    return None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


_POOL_MODULES = {"thread": "threads"}


def _pool_name(implementation: str) -> str:
    """`celery.concurrency.prefork:TaskPool` -> `prefork`, named as `--pool` names it."""
    module = implementation.split(":", 1)[0].rsplit(".", 1)[-1]
    return _POOL_MODULES.get(module, module)
