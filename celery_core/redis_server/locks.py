"""The two locks that keep one embedded server per folder.

`lock` is held by a PixCrawler process while it decides whether to reuse, start or stop the
server, so two processes starting at once end up with one server. `server.lock` is held by
the server process itself (it inherits the descriptor) for as long as it runs, so a second
server never opens the same files, even when `server.json` was deleted. Windows has no
inherited lock; there a server that accepts connections on its recorded port counts as alive.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from celery_core.redis_server.process import FileLock, process_alive, signal_process
from celery_core.redis_server.state import (
    LOCK_FILE,
    SERVER_LOCK_FILE,
    EmbeddedRedisError,
    ServerInfo,
)

log = logging.getLogger(__name__)

_LOCK_GRACE = 10.0  # extra wait for the folder lock: another process may be mid-start


@contextlib.contextmanager
def folder_lock(directory: Path, timeout: float) -> Iterator[FileLock]:
    """Hold the folder's decision lock, waiting for another process's start or stop."""
    lock = FileLock(directory / LOCK_FILE)
    try:
        lock.acquire(timeout + _LOCK_GRACE)
    except TimeoutError as exc:
        raise EmbeddedRedisError(
            f"another PixCrawler process keeps {directory} busy; try again ({exc})"
        ) from exc
    try:
        yield lock
    finally:
        lock.release()


def server_lock_busy(directory: Path) -> bool:
    """Whether a server process holds the folder's server lock (POSIX only)."""
    holder = FileLock(directory / SERVER_LOCK_FILE)
    try:
        return not holder.try_acquire()
    finally:
        holder.release()


def maybe_ours(directory: Path, info: ServerInfo) -> bool:
    """Whether a live process that does not answer yet is our server, still loading its data."""
    if sys.platform == "win32":
        try:
            socket.create_connection((info.host, info.port), timeout=0.5).close()
        except OSError:
            return False
        return True
    else:
        return server_lock_busy(directory)


def stop_orphan(directory: Path, server_lock: FileLock, deadline: float) -> None:
    """A server without a usable state file still holds the folder: SIGTERM it and wait.

    On success `server_lock` is held by this process, ready to hand to a new server.
    """
    text = server_lock.read_text().strip()
    pid = int(text) if text.isdigit() else 0
    if pid and process_alive(pid):
        log.warning("stopping an earlier Redis server (pid %d) left without a state file", pid)
        signal_process(pid)  # Redis syncs its append-only file on SIGTERM
    try:
        server_lock.acquire(max(deadline - time.monotonic(), 1.0))
    except TimeoutError:
        raise EmbeddedRedisError(
            f"a Redis server (pid {pid or 'unknown'}) still uses {directory} and did not stop; "
            f"stop it and try again"
        ) from None
