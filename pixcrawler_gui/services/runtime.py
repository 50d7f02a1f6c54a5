"""The services of a running app, wired together, with a start and an orderly shutdown.

Start: resolve the endpoints in a thread (start the embedded Redis if the local one is
down, and keep it running: `OwnRedisKeeper`), then start the status checks, the event
receiver and worker supervision.
Shutdown: background tasks first, then the workers, then clients, then the embedded server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from celery_core.redis_server.connection import (
    Endpoints,
    RedisUnavailable,
    effective_settings,
    ping,
    resolve_endpoints,
)
from celery_core.redis_server.embedded import EmbeddedRedis
from celery_core.settings.celery_settings import CelerySettings
from celery_core.settings.file_settings import FileSettings, SettingsError
from celery_core.settings.redis_urls import mask_url, url_target
from pixcrawler_gui.services.background import TaskSet
from pixcrawler_gui.services.cluster.cluster_monitor import ClusterMonitor
from pixcrawler_gui.services.cluster.remote_workers import RemoteWorkers
from pixcrawler_gui.services.events import (
    ConnectionCheck,
    EmbeddedServerStatus,
    EndpointState,
    EndpointStatus,
    EventHub,
    OwnServerState,
    Role,
)
from pixcrawler_gui.services.redis.broker_status import BrokerStatusMonitor, check_connection
from pixcrawler_gui.services.redis.own_server import OWN_REDIS_POLICY, OwnRedisKeeper
from pixcrawler_gui.services.settings_editor import SaveOutcome
from pixcrawler_gui.services.workers.restart_policy import RestartPolicy
from pixcrawler_gui.services.workers.supervisor import RUNNING_STATES, LocalSupervisor
from pixcrawler_gui.services.workers.worker_availability import WorkerAvailability
from pixcrawler_gui.services.workers.worker_command import NODE_PREFIX
from pixcrawler_gui.services.workers.worker_roster import FILE_NAME, RosterKeeper, WorkerRoster

log = logging.getLogger(__name__)
_ROLE_FIELDS: dict[str, str] = {"broker": "broker_url", "backend": "result_backend"}

# Workers get this long to stop on Quit while Redis does not answer: a warm shutdown could not
# report or acknowledge their tasks anyway (Redis keeps the messages; they run again later).
GRACE_WITHOUT_REDIS_S = 1.0


@dataclass(frozen=True)
class RuntimeOptions:
    """Knobs tests and the packaged app turn; the defaults suit a desktop."""

    allow_embedded: bool = True
    embedded_dir: Path | None = None
    worker_cwd: str | None = None
    worker_include: tuple[str, ...] = ()
    worker_env: dict[str, str] | None = None
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    redis_restart_policy: RestartPolicy = OWN_REDIS_POLICY  # the app's own Redis server
    grace_period: float = 30.0
    status_interval: float = 3.0
    status_max_backoff: float = 8.0
    # Start the remembered local workers (one on a first run) once Redis answers.
    autostart_workers: bool = True
    roster_path: Path | None = None  # default: workers.json in the config dir
    # How long remote workers get to show up (one heartbeat) before "no worker" is said.
    availability_delay: float = 3.0


class AppServices:
    def __init__(self, settings: CelerySettings, options: RuntimeOptions | None = None) -> None:
        self.options = options or RuntimeOptions()
        self.settings = settings
        self.hub = EventHub()
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pixcrawler-io")
        self.endpoints: Endpoints | None = None
        self.celery: Any = None
        self._embedded: EmbeddedRedis | None = None
        self._keeper: OwnRedisKeeper | None = None
        self.started = asyncio.Event()
        self.status = BrokerStatusMonitor(
            self.hub,
            interval=self.options.status_interval,
            max_backoff=self.options.status_max_backoff,
        )
        self.remote = RemoteWorkers(self.hub, self._is_local)
        self.supervisor = LocalSupervisor(
            self.hub,
            self.executor,
            policy=self.options.restart_policy,
            grace_period=self.options.grace_period,
            cwd=self.options.worker_cwd,
            base_env=self.options.worker_env,
            include=self.options.worker_include,
            known_nodes=self.remote.nodes,
            broker_up=lambda: not self.redis_gone(),
        )
        self.cluster = ClusterMonitor(self.hub, self.executor, self._is_local)
        self._closed = False
        self._tasks = TaskSet()
        self._broker_answered = False
        self._roster: RosterKeeper | None = None
        self.availability = WorkerAvailability(self.hub)
        self.hub.subscribe(EmbeddedServerStatus, self._on_own_server)

    def _on_own_server(self, status: EmbeddedServerStatus) -> None:
        # The keeper saw the server end (or come back) before a ping could: check at once, so
        # the broker and results lights never say "connected" about a server that is gone.
        own = self.endpoints.embedded if self.endpoints is not None else None
        if own is None or own.port != status.port:
            return  # the app uses another Redis now
        if status.state in (OwnServerState.DOWN, OwnServerState.FAILED):
            self.status.check_now(lost="PixCrawler's own Redis stopped")
        elif status.state == OwnServerState.RUNNING:
            self.status.check_now()

    def _is_local(self, node: str) -> bool:
        return self.supervisor.is_local(node)

    async def start(self) -> None:
        await self._connect(self.settings)
        self.remote.start()
        if self.options.autostart_workers:
            await self._start_saved_workers()
        self._spawn(self._announce_availability())
        self.started.set()

    async def _announce_availability(self) -> None:
        await asyncio.sleep(self.options.availability_delay)
        self.availability.announce()

    async def _start_saved_workers(self) -> None:
        from celery_core.settings.file_settings import config_dir

        roster = WorkerRoster(self.options.roster_path or config_dir() / FILE_NAME)
        loop = asyncio.get_running_loop()
        saved = await loop.run_in_executor(self.executor, roster.load)
        self._roster = RosterKeeper(self.hub, roster, self.supervisor.workers)
        if not self._broker_answered:
            return  # no Redis: the workers could only crash; Add worker stays at hand
        ours = await loop.run_in_executor(self.executor, self._own_nodes_online)
        if ours:
            # Left running in the background last time: they show up as they are.
            log.info("workers of this computer already run: %s", ", ".join(sorted(ours)))
            return
        if saved is None:
            pool, concurrency = self.worker_defaults()
            self.supervisor.add_worker(self.supervisor.suggest_spec(pool, concurrency))
            return
        for worker in saved:
            spec = self.supervisor.suggest_spec(worker.pool, worker.concurrency)
            self.supervisor.add_worker(replace(spec, queues=worker.queues))

    def expects_local_workers(self) -> bool:
        """Whether start() will start a worker of this computer (if Redis answers): the
        window says "Starting a worker…" instead of "No workers yet" meanwhile."""
        from celery_core.settings.file_settings import config_dir

        if not self.options.autostart_workers:
            return False
        return WorkerRoster(self.options.roster_path or config_dir() / FILE_NAME).expects_workers()

    def _own_nodes_online(self) -> set[str]:
        """This computer's app-started workers that answer a ping (left running earlier)."""
        if self.celery is None:
            return set()
        host = self.supervisor.hostname
        try:
            replies = self.celery.control.ping(timeout=0.5) or []
        except Exception:
            return set()
        nodes = {node for reply in replies for node in reply}
        return {n for n in nodes if n.startswith(NODE_PREFIX) and n.endswith(f"@{host}")}

    async def _connect(self, settings: CelerySettings) -> None:
        loop = asyncio.get_running_loop()
        endpoints = await self._resolve(settings)
        effective = effective_settings(settings, endpoints)
        from celery_core.worker.app import create_app

        self.celery = await loop.run_in_executor(self.executor, create_app, effective)
        self.endpoints = endpoints
        self.supervisor.configure(endpoints.broker_url, endpoints.result_backend, self.celery)
        self.status.start(endpoints.broker_url, endpoints.result_backend)
        self.cluster.start(self.celery)

    async def _resolve(self, settings: CelerySettings) -> Endpoints:
        loop = asyncio.get_running_loop()
        options = self.options
        try:
            endpoints, server = await loop.run_in_executor(
                self.executor,
                lambda: resolve_endpoints(settings, options.allow_embedded, options.embedded_dir),
            )
        except RedisUnavailable as exc:
            # Watch the configured URLs anyway: the status recovers when that Redis comes up.
            self.hub.publish(EmbeddedServerStatus(OwnServerState.UNAVAILABLE, error=str(exc)))
            self.hub.publish(
                EndpointStatus(
                    "broker", mask_url(settings.broker_url), EndpointState.DOWN, str(exc)
                )
            )
            self._broker_answered = False
            return Endpoints(settings.broker_url, settings.result_backend, None)
        self._broker_answered = True
        if server is not None:
            await self._keep_own_server(server, mask_url(settings.broker_url))
        elif endpoints.embedded is not None:
            info = endpoints.embedded
            if self._keeper is None or self._keeper.server.info.port != info.port:
                # Another PixCrawler process's server, joined: that process looks after it.
                self.hub.publish(
                    EmbeddedServerStatus(
                        OwnServerState.RUNNING,
                        port=info.port,
                        version=info.version,
                        replaces=mask_url(settings.broker_url),
                    )
                )
        else:
            reason = await loop.run_in_executor(self.executor, ping, endpoints.result_backend)
            if reason is not None:
                log.warning("result backend %s: %s", mask_url(endpoints.result_backend), reason)
        return endpoints

    async def _keep_own_server(self, server: EmbeddedRedis, replaces: str) -> None:
        """Watch the server this app started, and start it again if it dies."""
        if self._keeper is not None:
            await self._keeper.stop()
        self._embedded = server
        self._keeper = OwnRedisKeeper(
            self.hub, server, replaces, policy=self.options.redis_restart_policy
        )
        self._keeper.start()

    async def apply_settings(self, settings: CelerySettings) -> bool:
        """Use new settings; True when the endpoints changed (the app reconnected)."""
        old = self.settings
        self.settings = settings
        if (old.broker_url, old.result_backend) == (settings.broker_url, settings.result_backend):
            return False
        await self.cluster.stop()
        await self.status.stop()
        await self._close_celery()
        await self._connect(settings)
        return True

    # -- what the window asks of the running app -----------------------------------------------

    def worker_defaults(self) -> tuple[str, int]:
        """Pool and concurrency for a new worker, from the settings."""
        return self.settings.resolved_pool, min(self.settings.resolved_concurrency, 64)

    def settings_classes(self) -> list[type[FileSettings]]:
        """The settings the settings screen edits."""
        classes: list[type[FileSettings]] = [CelerySettings]
        try:
            from celery_core.settings.crawler_settings import CrawlerSettings
        except ImportError:
            return classes
        return [*classes, CrawlerSettings]

    async def test_connection(self, role: Role, url: str) -> ConnectionCheck:
        """PING what the app uses for `url`: the URL as typed, unless it is the saved one and
        the app runs on its own Redis instead (nothing answered there), which is then tested
        and named in `used`."""
        effective = self._effective_url(role, url)
        if effective is None:
            return await check_connection(role, url)
        info = self.endpoints.embedded if self.endpoints is not None else None
        own, configured = await asyncio.gather(
            check_connection(role, effective), check_connection(role, url, timeout=1.0)
        )
        target = url_target(url)
        if configured.ok:
            why = f"{target} answers now; the app moves to it when it restarts"
        else:
            why = f"nothing answers at {target}"
        port = info.port if info is not None else "?"
        return replace(own, used=f"PixCrawler's own Redis on port {port} ({why})")

    def _effective_url(self, role: Role, url: str) -> str | None:
        """The URL the app uses instead of `url`, or None when it uses `url` itself."""
        endpoints = self.endpoints
        if endpoints is None or endpoints.embedded is None:
            return None
        configured = self.settings.broker_url if role == "broker" else self.settings.result_backend
        used = endpoints.broker_url if role == "broker" else endpoints.result_backend
        try:
            typed = self.settings.updated(**{_ROLE_FIELDS[role]: url})
        except SettingsError:
            return None  # not a URL: the check says so
        same = getattr(typed, _ROLE_FIELDS[role]) == configured
        return used if same and used != configured else None

    def settings_saved(self, outcome: SaveOutcome) -> None:
        """Saved settings of the current environment apply at once (reconnecting if needed)."""
        if outcome.files and any(f.owner is CelerySettings for f in outcome.changed):
            self._spawn(self._reload_settings())

    async def _reload_settings(self) -> None:
        loop = asyncio.get_running_loop()
        # Leniently, as at start: a value still refused keeps its default (the window's
        # banner says which), and the rest of what was saved applies.
        loaded = await loop.run_in_executor(self.executor, CelerySettings.load_lenient)
        for problem in loaded.problems:
            log.warning("settings: %s", problem.log_line())
        await self.apply_settings(loaded.settings)

    def running_workers(self) -> int:
        return sum(1 for s in self.supervisor.workers() if s.state in RUNNING_STATES)

    def restart_running_workers(self) -> int:
        """Restart the local workers that run, so they pick up new settings; returns how many."""
        count = 0
        for snapshot in self.supervisor.workers():
            if snapshot.state in RUNNING_STATES:
                self.supervisor.restart_worker(snapshot.worker_id)
                count += 1
        return count

    async def shutdown(self, keep_workers: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        redis_gone = self.redis_gone()
        await self._tasks.close()
        await self.remote.stop()
        await self.cluster.stop()
        await self.status.stop()
        grace = GRACE_WITHOUT_REDIS_S if redis_gone else None
        await self.supervisor.shutdown(keep_running=keep_workers, grace=grace)
        if self._roster is not None:
            self._roster.close()
        await self._close_celery()
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            await keeper.stop()
        server, self._embedded = self._embedded, None
        if server is not None and not keep_workers:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(Exception):
                await loop.run_in_executor(self.executor, server.stop)
            self.hub.publish(EmbeddedServerStatus(OwnServerState.STOPPED))
        self.executor.shutdown(wait=True, cancel_futures=True)

    def redis_gone(self) -> bool:
        """Whether the broker does not answer now, as the status checks and the own server's
        keeper last found."""
        broker = self.status.last.get("broker")
        if broker is not None and broker.state in (EndpointState.DOWN, EndpointState.RECONNECTING):
            return True
        own = self._keeper.last if self._keeper is not None else None
        return own is not None and not own.running

    async def _close_celery(self) -> None:
        app, self.celery = self.celery, None
        if app is not None:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(Exception):
                await loop.run_in_executor(self.executor, app.close)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(coro)
