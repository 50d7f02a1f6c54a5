"""Is the broker up? Is the result backend? Checked with async PINGs, never on the GUI's time.

While an endpoint answers it is checked every few seconds; once it stops answering the checks
back off (1, 2, 4 ... seconds up to a cap) and it recovers by itself when Redis comes back.
`check_now()` cuts the wait short, when something else saw Redis go or come back (the app's
own server ended, or started again).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.backoff import NoBackoff
from redis.retry import Retry

from celery_core.settings.redis_urls import mask_secrets, mask_url, url_has_password
from pixcrawler_gui.services.events import (
    ConnectionCheck,
    EndpointState,
    EndpointStatus,
    EventHub,
    Role,
)


def _client(url: str, timeout: float) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _target(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def describe_failure(exc: BaseException, url: str, timeout: float) -> str:
    """A few words on why `url` did not answer, passwords masked."""
    if isinstance(exc, rex.AuthenticationError):
        if url_has_password(url):
            return "authentication failed: the password was refused"
        return "authentication failed: the server requires a password"
    if isinstance(exc, rex.TimeoutError | TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, rex.BusyLoadingError):
        return "the server is still loading its data"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused at {_target(url)}"
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name {urlsplit(url).hostname!r}"
        cause = cause.__cause__ or cause.__context__
    text = mask_secrets(str(exc))
    if "Connect call failed" in text or "Error 111" in text:
        return f"connection refused at {_target(url)}"
    if "without any password configured" in text:
        return "authentication failed: the URL has a password but the server has none"
    return text or type(exc).__name__


async def ping(client: aioredis.Redis, url: str, timeout: float) -> str | None:
    """None when the server answers PING, else the reason it did not."""
    try:
        async with asyncio.timeout(timeout + 1.0):
            await client.ping()
    except (rex.RedisError, OSError, TimeoutError, ValueError) as exc:
        return describe_failure(exc, url, timeout)
    return None


async def check_connection(role: Role, url: str, timeout: float = 3.0) -> ConnectionCheck:
    """One PING to `url` with a fresh connection, for the settings screen's "Test connection"."""
    started = time.perf_counter()
    try:
        client = _client(url, timeout)
    except ValueError as exc:
        return ConnectionCheck(
            role, mask_url(url), False, f"invalid URL: {mask_secrets(str(exc))}", 0.0
        )
    try:
        reason = await ping(client, url, timeout)
    finally:
        await client.aclose()
    return ConnectionCheck(
        role, mask_url(url), reason is None, reason, time.perf_counter() - started
    )


class BrokerStatusMonitor:
    """Publishes an `EndpointStatus` for the broker and the backend each time theirs changes."""

    def __init__(
        self,
        hub: EventHub,
        interval: float = 3.0,
        first_retry: float = 1.0,
        max_backoff: float = 8.0,
        timeout: float = 2.0,
    ) -> None:
        self._hub = hub
        self._interval = interval
        self._first_retry = first_retry
        self._max_backoff = max_backoff
        self._timeout = timeout
        self._tasks: list[asyncio.Task[None]] = []
        self._clients: list[aioredis.Redis] = []
        self._wake = asyncio.Event()
        self.last: dict[Role, EndpointStatus] = {}

    def check_now(self, lost: str | None = None) -> None:
        """Ping both endpoints at once instead of at the next turn. `lost`: the server is known
        to be gone (why, in a few words): connected endpoints say so before their ping does."""
        if lost is not None:
            for status in list(self.last.values()):
                if status.state == EndpointState.CONNECTED:
                    self._publish(
                        EndpointStatus(status.role, status.url, EndpointState.RECONNECTING, lost)
                    )
        self._wake.set()

    def start(self, broker_url: str, result_backend: str) -> None:
        loop = asyncio.get_running_loop()
        endpoints: tuple[tuple[Role, str], ...] = (
            ("broker", broker_url),
            ("backend", result_backend),
        )
        for role, url in endpoints:
            client = _client(url, self._timeout)
            self._clients.append(client)
            task = loop.create_task(self._watch(role, url, client), name=f"{role} status")
            self._tasks.append(task)

    async def stop(self) -> None:
        # Tasks first: closing a client under a running PING raises in the task instead.
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in self._clients:
            with contextlib.suppress(Exception):
                await client.aclose()
        self._tasks.clear()
        self._clients.clear()

    async def restart(self, broker_url: str, result_backend: str) -> None:
        await self.stop()
        self.start(broker_url, result_backend)

    async def _watch(self, role: Role, url: str, client: aioredis.Redis) -> None:
        shown = mask_url(url)
        self._publish(EndpointStatus(role, shown, EndpointState.CHECKING))
        failures = 0
        while True:
            reason = await ping(client, url, self._timeout)
            if reason is None:
                failures = 0
                self._publish(EndpointStatus(role, shown, EndpointState.CONNECTED))
                await self._nap(self._interval)
                continue
            failures += 1
            was_up = self.last[role].state == EndpointState.CONNECTED
            if was_up:
                # One quick retry before calling it down: a blip should not turn the bar red.
                self._publish(EndpointStatus(role, shown, EndpointState.RECONNECTING, reason))
                await asyncio.sleep(min(0.5, self._first_retry))
                continue
            delay = min(self._max_backoff, self._first_retry * 2 ** min(failures - 1, 16))
            self._publish(EndpointStatus(role, shown, EndpointState.DOWN, reason, delay))
            await self._nap(delay)

    async def _nap(self, seconds: float) -> None:
        """Sleep until the next check, or until `check_now()`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        # Both watchers wake on the same event: clear it once they had a chance to see it.
        asyncio.get_running_loop().call_soon(self._wake.clear)

    def _publish(self, status: EndpointStatus) -> None:
        previous = self.last.get(status.role)
        self.last[status.role] = status
        if previous is None or _key(previous) != _key(status):
            self._hub.publish(status)


def _key(status: EndpointStatus) -> tuple[object, ...]:
    return (status.state, status.reason, status.retry_in)
