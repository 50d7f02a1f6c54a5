"""Talking to a running embedded server: is it ours (and which pid), and shutting it down."""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from celery_core.redis_server.process import process_alive, signal_process, wait_gone
from celery_core.redis_server.state import ServerInfo

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.02


@dataclass(frozen=True)
class Identity:
    """What a server says about itself once it accepted our password."""

    pid: int
    version: str


def client(info: ServerInfo, timeout: float) -> redis.Redis:
    """A client that fails at once instead of retrying: callers poll with their own deadline."""
    return redis.Redis(
        host=info.host,
        port=info.port,
        password=info.password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def probe(info: ServerInfo, timeout: float = 1.0) -> Identity | None:
    """Pid and version of the server answering AUTH + PING with `info`'s password, or None."""
    conn = client(info, timeout)
    try:
        conn.ping()
        details = conn.info("server")
    except (redis.RedisError, OSError):
        return None
    finally:
        conn.close()
    try:
        pid = int(details["process_id"])
    except (KeyError, TypeError, ValueError):
        return None
    if "valkey_version" in details:
        return Identity(pid, f"valkey {details['valkey_version']}")
    return Identity(pid, f"redis {details.get('redis_version', '?')}")


def wait_answer(info: ServerInfo, deadline: float) -> Identity | None:
    """Poll until the server answers, its process ends, or the deadline passes."""
    while time.monotonic() < deadline and process_alive(info.pid):
        found = probe(info, timeout=0.5)
        if found is not None:
            return found
        time.sleep(POLL_INTERVAL)
    return None


def shutdown(info: ServerInfo, popen: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SHUTDOWN (the server syncs its append-only file), then SIGTERM/SIGKILL if it lingers."""
    conn = client(info, timeout)
    try:
        conn.shutdown()
    except redis.RedisError as exc:
        log.warning("the Redis server pid %d refused SHUTDOWN (%s); terminating it", info.pid, exc)
        signal_process(info.pid)
    finally:
        conn.close()
    if wait_exit(info.pid, popen, timeout):
        return
    log.warning("the Redis server pid %d did not exit within %s s; killing it", info.pid, timeout)
    signal_process(info.pid, hard=True)
    wait_exit(info.pid, popen, 5.0)


def wait_exit(pid: int, popen: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    """Wait for the process to end (reaping it when it is our child); False on timeout."""
    if popen is not None and popen.pid == pid:
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    return wait_gone(pid, timeout)
