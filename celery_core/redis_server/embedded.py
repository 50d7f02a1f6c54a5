"""PixCrawler's own Redis server, for computers where none is installed or running.

One server per folder (`<data dir>/redis/` by default). It listens on 127.0.0.1 only, on a
free port, requires a random password and keeps its data in an append-only file there.
Files in that folder:

- `server.json` (mode 0600): pid, port, password, binary, owner and users of the live server;
- `server.conf` (0600): the password, handed over outside the command line (which every
  user of the computer can read);
- `server.log`: the server's own log;
- `lock`: held by a process while it decides whether to reuse, start or stop the server;
- `server.lock`: held by the server process itself for as long as it runs (POSIX), so a
  second server never opens the same files, even if `server.json` was deleted.

Ownership: the process that starts a server, or takes over one whose starter has died,
shuts it down in `stop()` unless other live processes that registered in `start()` still
use it; the server then keeps running and the next `start()` takes it over.

A server that died (killed, crashed) is started again by `restart()` on the same port with
the same password and folder, so its clients reconnect with the URLs they have and find
their data in the append-only file. The desktop app watches its server and calls it.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from celery_core.redis_server.binary import RedisBinaryNotFound, find_server_binary
from celery_core.redis_server.control import Identity, probe, shutdown, wait_answer
from celery_core.redis_server.locks import folder_lock, maybe_ours, stop_orphan
from celery_core.redis_server.process import FileLock, free_port, process_alive, signal_process
from celery_core.redis_server.state import (
    AOF_NAME,
    LOG_FILE,
    SERVER_LOCK_FILE,
    STATE_FILE,
    EmbeddedRedisError,
    ServerInfo,
    info_from_state,
    log_tail,
    make_private_dir,
    read_state,
    remove_file,
    rotate_log,
    write_conf,
    write_state,
)
from celery_core.settings.file_settings import data_dir

__all__ = [
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "RedisBinaryNotFound",
    "ServerInfo",
    "find_server_binary",
    "running_server",
    "server_dir",
    "shutdown_server",
]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
_PORT_ATTEMPTS = 3
_POLL = 0.02
_TAIL_BYTES = 64 * 1024


def server_dir(directory: Path | None = None) -> Path:
    """The embedded server's folder: `directory`, else `<data dir>/redis`, made absolute."""
    base = directory if directory is not None else data_dir() / "redis"
    return Path(base).expanduser().resolve()


class EmbeddedRedis:
    """Start or reuse the server for one folder; `stop()` shuts it down if this object owns it."""

    def __init__(self, directory: Path | None = None, binary: Path | None = None) -> None:
        self.directory = server_dir(directory)
        self._binary = Path(binary).absolute() if binary is not None else None
        self._info: ServerInfo | None = None
        self._owned = False
        self._popen: subprocess.Popen[bytes] | None = None
        # restart() and stop() may run on different threads: one at a time, so a server
        # started again is never left behind by a stop() that read the old one.
        self._busy = threading.RLock()

    @property
    def owned(self) -> bool:
        """True if this object started the server (or took over one whose starter died)."""
        return self._owned

    @property
    def info(self) -> ServerInfo:
        if self._info is None:
            raise EmbeddedRedisError("the embedded Redis server has not been started")
        return self._info

    @property
    def state_file(self) -> Path:
        return self.directory / STATE_FILE

    @property
    def log_file(self) -> Path:
        return self.directory / LOG_FILE

    def running(self) -> bool:
        """Whether the server process is still alive (a child that ended is reaped here)."""
        return self._info is not None and _alive(self._info.pid, self._popen)

    @property
    def exit_code(self) -> int | None:
        """How the server this object started ended (negative: the signal that ended it);
        None while it runs, or when another process started it."""
        popen = self._popen
        return None if popen is None else popen.poll()

    def log_lines(self, count: int = 15) -> list[str]:
        """The server's last log lines, the password masked (empty before `start()`)."""
        if self._info is None:
            return []
        try:
            size = self.log_file.stat().st_size
        except OSError:
            return []
        tail = log_tail(self.log_file, max(0, size - _TAIL_BYTES), self._info.password, count)
        return tail.splitlines()

    def start(self, timeout: float = 10.0) -> ServerInfo:
        """Reuse the live server recorded in the folder, or start a new one; return its info."""
        if self._info is not None:
            return self._info
        make_private_dir(self.directory)
        with folder_lock(self.directory, timeout):
            deadline = time.monotonic() + timeout
            info = self._reuse(deadline) or self._launch(deadline, timeout)
        self._info = info
        return info

    def restart(self, timeout: float = 10.0) -> ServerInfo:
        """Start the server again after it stopped: the same port, password and folder.

        Clients keep their URLs and reconnect by themselves; the append-only file brings the
        data back. A server another process already started again there is joined instead.
        Raises EmbeddedRedisError when it cannot start (another program took the port, the
        data cannot be read...), with the server's last log lines.
        """
        with self._busy:
            old = self.info
            if self.running():
                return old
            self._popen = None
            make_private_dir(self.directory)
            with folder_lock(self.directory, timeout):
                deadline = time.monotonic() + timeout
                state = read_state(self.directory)
                if state is not None and (state["port"], state["password"]) != (
                    old.port,
                    old.password,
                ):
                    state = None  # about another server: start ours on its port again
                info = None
                if state is not None and state["pid"] != old.pid:
                    info = self._reuse(deadline)  # another process started it again first
                if info is None:
                    users = state["users"] if state is not None else ()
                    info = self._launch(deadline, timeout, previous=old, users=users)
            self._info = info
            return info

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down (persisting its data) if owned and unused elsewhere; idempotent."""
        with self._busy:
            self._stop(timeout)

    def _stop(self, timeout: float) -> None:
        info, owned, popen = self._info, self._owned, self._popen
        self._info, self._owned, self._popen = None, False, None
        if info is None:
            return
        with folder_lock(self.directory, timeout):
            state = read_state(self.directory)
            if state is not None and state["pid"] != info.pid:
                state = None  # the record is about another server: leave it alone
            me = os.getpid()
            others = [u for u in state["users"] if u != me and process_alive(u)] if state else []
            if owned and not others:
                if _alive(info.pid, popen):
                    shutdown(info, popen, timeout)
                if state is not None:
                    remove_file(self.state_file)
            elif state is not None:
                state["users"] = others
                if owned:
                    state["owner_pid"] = None  # the next start() takes it over
                    log.info("Redis server left running for %d other process(es)", len(others))
                write_state(self.directory, state)

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _reuse(self, deadline: float) -> ServerInfo | None:
        state = read_state(self.directory)
        if state is None:
            return None
        recorded = info_from_state(state, self.directory)
        found = probe(recorded)
        if found is None and process_alive(recorded.pid) and maybe_ours(self.directory, recorded):
            # Our server, still loading its data: wait for it instead of starting a second one.
            found = wait_answer(recorded, deadline)
            if found is None:
                raise EmbeddedRedisError(
                    f"the Redis server (pid {recorded.pid}) in {self.directory} is running but "
                    f"does not answer; see {self.log_file}, or stop that process and try again"
                )
        if found is None:
            log.info("removing the record of a Redis server that is gone (pid %d)", recorded.pid)
            remove_file(self.state_file)
            return None
        info = replace(recorded, pid=found.pid, version=found.version)
        me = os.getpid()
        owner = state["owner_pid"]
        self._owned = owner is None or (owner != me and not process_alive(owner))
        users = {u for u in state["users"] if u != me and process_alive(u)} | {me}
        state.update(pid=info.pid, users=sorted(users), owner_pid=me if self._owned else owner)
        write_state(self.directory, state)
        how = "taking over" if self._owned else "reusing"
        log.info("%s the Redis server pid %d on %s:%d", how, info.pid, info.host, info.port)
        return info

    def _launch(
        self,
        deadline: float,
        timeout: float,
        previous: ServerInfo | None = None,
        users: Iterable[int] = (),
    ) -> ServerInfo:
        """A new server; with `previous`, on its port with its password (a restart)."""
        binary = self._binary or find_server_binary()
        server_lock = FileLock(self.directory / SERVER_LOCK_FILE)
        try:
            if sys.platform != "win32" and not server_lock.try_acquire():
                stop_orphan(self.directory, server_lock, deadline)
            password = previous.password if previous else secrets.token_urlsafe(24)
            conf = write_conf(self.directory, password)
            rotate_log(self.log_file)
            for _attempt in range(1 if previous else _PORT_ATTEMPTS):
                port = previous.port if previous else free_port(HOST)
                target = ServerInfo(HOST, port, password, 0, str(binary), str(self.directory))
                popen, offset = self._spawn(target, conf, server_lock)
                if server_lock.held:
                    server_lock.write_text(f"{popen.pid}\n")  # lets a later start stop an orphan
                found = self._wait_ready(popen, target, deadline, offset, timeout)
                if found is not None:
                    break
            else:
                if previous:
                    raise EmbeddedRedisError(
                        f"port {port} is in use by another program: {binary} cannot start "
                        "there again (its clients know only that port)"
                    )
                raise EmbeddedRedisError(f"no free port for {binary} after {_PORT_ATTEMPTS} tries")
            if server_lock.held and found.pid != popen.pid:
                server_lock.write_text(f"{found.pid}\n")
        finally:
            server_lock.detach()  # the server inherited the lock and keeps it while it runs
        self._popen = popen
        self._owned = True
        me = os.getpid()
        others = {u for u in users if u != me and process_alive(u)}
        state = {
            "pid": found.pid,
            "host": HOST,
            "port": port,
            "password": password,
            "binary": str(binary),
            "version": found.version,
            "data_dir": str(self.directory),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "owner_pid": me,
            "users": sorted(others | {me}),
        }
        write_state(self.directory, state)
        log.info(
            "started its own server%s, %s (pid %d), on %s:%d",
            " again" if previous else "",
            found.version,
            found.pid,
            HOST,
            port,
        )
        return info_from_state(state, self.directory)

    def _spawn(
        self, target: ServerInfo, conf: Path, server_lock: FileLock
    ) -> tuple[subprocess.Popen[bytes], int]:
        args = [
            target.binary,
            str(conf),
            *("--bind", target.host, "--port", str(target.port), "--protected-mode", "yes"),
            *("--dir", str(self.directory), "--logfile", str(self.log_file)),
            *("--appendonly", "yes", "--appendfilename", AOF_NAME),
            # A plain command log instead of an RDB preamble: data written by Valkey 9 stays
            # readable by Redis 7 and the other way round, whichever binary is found next.
            *("--aof-use-rdb-preamble", "no", "--save", "", "--daemonize", "no"),
        ]
        extra: dict[str, Any] = {}
        if sys.platform == "win32":
            extra["creationflags"] = (
                subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
            )
        else:
            # Own session: a Ctrl+C in the terminal reaches us, and we shut the server down.
            extra["start_new_session"] = True
            if server_lock.held:
                extra["pass_fds"] = (server_lock.fileno(),)
        with open(self.log_file, "ab") as out:
            offset = out.tell()
            popen = subprocess.Popen(
                args,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                **extra,
            )
        return popen, offset

    def _wait_ready(
        self,
        popen: subprocess.Popen[bytes],
        target: ServerInfo,
        deadline: float,
        offset: int,
        timeout: float,
    ) -> Identity | None:
        password = target.password
        while True:
            code = popen.poll()
            if code is not None:
                tail = log_tail(self.log_file, offset, password)
                if "Address already in use" in tail:
                    return None  # another program took the port first; try a new one
                raise EmbeddedRedisError(
                    f"{target.binary} exited with code {code} while starting:\n{tail}"
                )
            found = probe(target, timeout=0.5)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                signal_process(popen.pid, hard=True)
                popen.wait()
                tail = log_tail(self.log_file, offset, password)
                raise EmbeddedRedisError(
                    f"{target.binary} did not answer on {target.host}:{target.port} within "
                    f"{timeout} s:\n{tail}"
                )
            time.sleep(_POLL)


def running_server(directory: Path | None = None) -> ServerInfo | None:
    """The live server recorded in the folder, checked with its password; None if there is none."""
    folder = server_dir(directory)
    state = read_state(folder)
    if state is None:
        return None
    info = info_from_state(state, folder)
    if not process_alive(info.pid):
        return None
    found = probe(info, timeout=1.0)
    return None if found is None else replace(info, pid=found.pid, version=found.version)


def shutdown_server(directory: Path | None = None, timeout: float = 10.0) -> bool:
    """Shut down whatever server runs in the folder, whoever uses it; True if one was running."""
    folder = server_dir(directory)
    if not folder.is_dir():
        return False
    with folder_lock(folder, timeout):
        deadline = time.monotonic() + timeout
        stopped = False
        state = read_state(folder)
        if state is not None:
            info = info_from_state(state, folder)
            found = probe(info)
            if found is not None:
                shutdown(replace(info, pid=found.pid), None, timeout)
                stopped = True
            remove_file(folder / STATE_FILE)
        server_lock = FileLock(folder / SERVER_LOCK_FILE)
        try:
            if sys.platform != "win32" and not server_lock.try_acquire():
                stop_orphan(folder, server_lock, deadline)
                stopped = True
        finally:
            server_lock.release()
        return stopped


def _alive(pid: int, popen: subprocess.Popen[bytes] | None) -> bool:
    if popen is not None and popen.pid == pid:
        return popen.poll() is None
    return process_alive(pid)
