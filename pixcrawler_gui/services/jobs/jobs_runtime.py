"""The job side of a running app, next to `AppServices`: the job service with its watcher and
history, and the thumbnail loader the gallery uses.

Start lists the history at once (no Redis needed), then waits for the app's endpoints and
follows jobs there; when the settings move the result backend elsewhere it follows jobs
there instead. Shutdown comes before `AppServices.shutdown`: the watcher's tasks first, then
its client, then the history's writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery_core.redis_server.connection import effective_settings
from celery_core.settings.redis_urls import mask_url
from pixcrawler_gui.services.background import cancel_and_wait
from pixcrawler_gui.services.events import EmbeddedServerStatus, EndpointStatus, OwnServerState
from pixcrawler_gui.services.jobs.history import History
from pixcrawler_gui.services.jobs.job_service import JobService
from pixcrawler_gui.services.jobs.thumbnail_loader import ThumbnailLoader
from pixcrawler_gui.services.jobs.watcher import JobWatcher
from pixcrawler_gui.services.runtime import AppServices

log = logging.getLogger(__name__)

_CLOSE_TIMEOUT_S = 10.0


class JobsRuntime:
    def __init__(
        self,
        services: AppServices,
        history_path: Path | None = None,
        poll_interval: float = 10.0,
    ) -> None:
        self.services = services
        self.hub = services.hub
        self.history = History(history_path)
        self.poll_interval = poll_interval
        watcher = JobWatcher(self.hub, poll_interval=poll_interval)
        self.service = JobService(self.hub, services.executor, self.history, watcher)
        self.loader = ThumbnailLoader(services.executor, lambda: self.service.watcher.client)
        self._app: Any = None
        self._backend_url: str | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._unsubscribe_own: Callable[[], None] | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self.started = asyncio.Event()

    async def start(self) -> None:
        await self.service.load_history()
        await self.services.started.wait()
        await self._connect()
        self._unsubscribe = self.hub.subscribe(EndpointStatus, self._on_endpoint)
        self._unsubscribe_own = self.hub.subscribe(EmbeddedServerStatus, self._on_own_server)
        self.started.set()

    def _on_own_server(self, status: EmbeddedServerStatus) -> None:
        if status.state == OwnServerState.RUNNING and status.restarts:
            self.service.watcher.reconnect_now()  # back on the same port: follow jobs again

    async def _connect(self) -> None:
        endpoints = self.services.endpoints
        if endpoints is None:
            return
        loop = asyncio.get_running_loop()
        settings = effective_settings(self.services.settings, endpoints)
        from celery_core.worker.app import create_app

        app = await loop.run_in_executor(
            self.services.executor, lambda: create_app(settings, follow_results=False)
        )
        old, self._app = self._app, app
        self._backend_url = endpoints.result_backend
        if old is None:
            await self.service.start(app, endpoints.result_backend)
        else:
            await self.service.reconnect(app, endpoints.result_backend)
            await self._close_app(old)

    def _on_endpoint(self, status: EndpointStatus) -> None:
        endpoints = self.services.endpoints
        if status.role != "backend" or endpoints is None or self._backend_url is None:
            return
        if mask_url(endpoints.result_backend) == mask_url(self._backend_url):
            return
        if self._reconnect is None or self._reconnect.done():
            log.info("the result backend moved to %s", mask_url(endpoints.result_backend))
            self._reconnect = asyncio.ensure_future(self._connect())

    async def shutdown(self) -> None:
        for unsubscribe in (self._unsubscribe, self._unsubscribe_own):
            if unsubscribe is not None:
                unsubscribe()
        self._unsubscribe = self._unsubscribe_own = None
        if self._reconnect is not None:
            await cancel_and_wait(self._reconnect)
        await self.service.stop()
        app, self._app = self._app, None
        await self._close_app(app)

    async def _close_app(self, app: Any) -> None:
        if app is None:
            return
        loop = asyncio.get_running_loop()
        # Bounded: a broker connection that hangs while closing must not hold up the exit.
        with contextlib.suppress(Exception):
            closing = loop.run_in_executor(self.services.executor, app.close)
            await asyncio.wait_for(closing, _CLOSE_TIMEOUT_S)
