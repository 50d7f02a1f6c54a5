"""Which Redis the app uses: the configured one if it answers, else PixCrawler's own.

`ping()` explains in a few words why a Redis cannot be used. `resolve_endpoints()` falls
back to the embedded server (see `embedded_redis`) only when the configured broker is on
this computer and nothing listens there; a server that answers but refuses the password is
reported, never silently replaced.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from celery_core.redis_server.binary import RedisBinaryNotFound
from celery_core.redis_server.embedded import EmbeddedRedis, EmbeddedRedisError, ServerInfo
from celery_core.settings.celery_settings import CelerySettings
from celery_core.settings.redis_urls import is_local_url, mask_secrets, mask_url, url_has_password

__all__ = [
    "Endpoints",
    "RedisUnavailable",
    "effective_settings",
    "ping",
    "resolve_endpoints",
    "url_db",
]

HOW_TO_START = (
    "Run `pixcrawler redis` to start PixCrawler's own server, install redis-server or "
    "valkey-server, or set PIXCRAWLER_CELERY_BROKER_URL to a Redis that is running."
)


class RedisUnavailable(RuntimeError):
    """No usable Redis; `str()` says why and what to do, with passwords masked."""


@dataclass(frozen=True)
class Endpoints:
    """The URLs the app and its workers use, and the embedded server behind them, if any."""

    broker_url: str
    result_backend: str
    embedded: ServerInfo | None

    def __repr__(self) -> str:
        return (
            f"Endpoints(broker_url={mask_url(self.broker_url)!r}, "
            f"result_backend={mask_url(self.result_backend)!r}, embedded={self.embedded!r})"
        )


@dataclass(frozen=True)
class _Check:
    reason: str | None
    nothing_listens: bool = False


def ping(url: str, timeout: float = 2.0) -> str | None:
    """None if the server at `url` answers PING (authenticating as the URL says), else why not."""
    return _check(url, timeout).reason


def _target(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 6379}"


def _connect_problem(url: str, timeout: float) -> _Check | None:
    """Try a plain connection first: the socket errors say precisely what is wrong."""
    parts = urlsplit(url)
    target = _target(url)
    try:
        if parts.scheme == "unix":
            if not Path(parts.path).exists():
                return _Check(f"no socket at {parts.path}", nothing_listens=True)
            family = getattr(socket, "AF_UNIX", None)
            if family is None:
                return _Check("unix sockets are not supported on this system")
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(parts.path)
        else:
            address = (parts.hostname or "localhost", parts.port or 6379)
            with socket.create_connection(address, timeout):
                pass
    except ConnectionRefusedError:
        return _Check(f"connection refused at {target}", nothing_listens=True)
    except socket.gaierror:
        return _Check(f"cannot resolve the host name {parts.hostname!r}")
    except TimeoutError:
        return _Check(f"timed out after {timeout} s connecting to {target}")
    except OSError as exc:
        return _Check(f"cannot connect to {target}: {exc.strerror or exc}")
    return None


def _check(url: str, timeout: float) -> _Check:
    problem = _connect_problem(url, timeout)
    if problem is not None:
        return problem
    try:
        client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        return _Check(f"invalid URL: {mask_secrets(str(exc))}")
    try:
        client.ping()
    except redis.AuthenticationError:
        if not url_has_password(url):
            return _Check("authentication failed: the server requires a password")
        return _Check("authentication failed: the password was refused")
    except redis.TimeoutError:
        return _Check(f"timed out after {timeout} s")
    except redis.BusyLoadingError:
        return _Check("the server is still loading its data")
    except redis.RedisError as exc:
        return _Check(_describe(exc))
    except OSError as exc:  # TLS handshake failures and the like
        return _Check(mask_secrets(str(exc)) or type(exc).__name__)
    finally:
        client.close()
    return _Check(None)


def _describe(exc: Exception) -> str:
    text = mask_secrets(str(exc))
    if "without any password configured" in text:
        return "authentication failed: the URL has a password but the server has none"
    return text or type(exc).__name__


def url_db(url: str, default: int) -> int:
    """The database number in a Redis URL (`/3`, or `?db=3` for unix sockets), else `default`."""
    parts = urlsplit(url)
    path = parts.path.strip("/") if parts.scheme != "unix" else ""
    if path.isdigit():
        return int(path)
    query = parse_qs(parts.query).get("db", [""])[0]
    return int(query) if query.isdigit() else default


def resolve_endpoints(
    settings: CelerySettings,
    allow_embedded: bool = True,
    directory: Path | None = None,
    timeout: float = 2.0,
) -> tuple[Endpoints, EmbeddedRedis | None]:
    """The URLs to use, and the embedded server the caller must `stop()` on exit (or None).

    The configured broker if it answers; else, for a broker on this computer with nothing
    listening, the embedded server (reused if running, started otherwise), with the broker on
    the configured database number (default 0) and a local result backend on its own
    (default 1). Raises RedisUnavailable saying what to do in every other case.
    """
    broker, backend = settings.broker_url, settings.result_backend
    check = _check(broker, timeout)
    if check.reason is None:
        return Endpoints(broker, backend, None), None
    shown = mask_url(broker)
    local = is_local_url(broker)
    if not local:
        raise RedisUnavailable(
            f"Cannot use the Redis broker at {shown}: {check.reason}. Check that this server "
            f"runs and is reachable from here, or set PIXCRAWLER_CELERY_BROKER_URL to another."
        )
    if not check.nothing_listens:
        raise RedisUnavailable(
            f"The Redis at {shown} answers but cannot be used: {check.reason}. Fix "
            f"PIXCRAWLER_CELERY_BROKER_URL (for example its password), or stop that server so "
            f"PixCrawler can start its own."
        )
    if not allow_embedded:
        raise RedisUnavailable(f"No Redis at {shown} ({check.reason}). {HOW_TO_START}")
    server = EmbeddedRedis(directory)
    try:
        info = server.start()
    except (RedisBinaryNotFound, EmbeddedRedisError) as exc:
        raise RedisUnavailable(
            f"No Redis at {shown} ({check.reason}), and PixCrawler could not start its own: {exc}"
        ) from exc
    broker_url = info.url(url_db(broker, 0))
    backend_url = info.url(url_db(backend, 1)) if is_local_url(backend) else backend
    endpoints = Endpoints(broker_url, backend_url, info)
    return endpoints, (server if server.owned else None)


def effective_settings(settings: CelerySettings, endpoints: Endpoints) -> CelerySettings:
    """`settings` pointed at `endpoints` (validated copy; the saved settings are untouched)."""
    return settings.updated(
        broker_url=endpoints.broker_url, result_backend=endpoints.result_backend
    )
