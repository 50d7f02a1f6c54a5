"""What PixCrawler records about its embedded Redis server, and the files in its folder.

`server.json` holds everything needed to reach and verify the live server (including its
password), so it is written atomically and readable by its owner only.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from celery_core.settings.envfile import atomic_write_text
from celery_core.settings.redis_urls import mask_url

STATE_FILE = "server.json"
CONF_FILE = "server.conf"
LOG_FILE = "server.log"
LOCK_FILE = "lock"
SERVER_LOCK_FILE = "server.lock"
AOF_NAME = "pixcrawler.aof"
_LOG_KEEP_BYTES = 5 * 1024 * 1024


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started, reused or stopped; `str()` says why."""


@dataclass(frozen=True)
class ServerInfo:
    """How to reach a running embedded server. The password never appears in `repr()`."""

    host: str
    port: int
    password: str = field(repr=False)
    pid: int
    binary: str
    data_dir: str
    version: str = ""

    def url(self, db: int = 0) -> str:
        return f"redis://:{quote(self.password, safe='')}@{self.host}:{self.port}/{db}"

    def masked_url(self, db: int = 0) -> str:
        return mask_url(self.url(db))


def read_state(directory: Path) -> dict[str, Any] | None:
    """The state file's content if it is complete and well-formed, else None."""
    try:
        data = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    ints = all(isinstance(data.get(k), int) for k in ("pid", "port"))
    strs = all(isinstance(data.get(k), str) for k in ("host", "password", "binary"))
    if not (ints and strs):
        return None
    users = data.get("users")
    data["users"] = [u for u in users if isinstance(u, int)] if isinstance(users, list) else []
    owner = data.get("owner_pid")
    data["owner_pid"] = owner if isinstance(owner, int) else None
    return data


def write_state(directory: Path, state: dict[str, Any]) -> None:
    atomic_write_text(directory / STATE_FILE, json.dumps(state, indent=2) + "\n", private=True)


def info_from_state(state: dict[str, Any], directory: Path) -> ServerInfo:
    return ServerInfo(
        host=state["host"],
        port=state["port"],
        password=state["password"],
        pid=state["pid"],
        binary=state["binary"],
        data_dir=str(directory),
        version=str(state.get("version", "")),
    )


def write_conf(directory: Path, password: str) -> Path:
    """The config file passed to the server: only the password, kept off the command line."""
    path = directory / CONF_FILE
    text = (
        "# Rewritten by PixCrawler each time it starts its Redis server; holds the password\n"
        "# so that it stays off the command line, which every user of this computer can read.\n"
        f'requirepass "{password}"\n'
    )
    atomic_write_text(path, text, private=True)
    return path


def make_private_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        with contextlib.suppress(OSError):
            directory.chmod(0o700)


def rotate_log(path: Path) -> None:
    """Keep one older log once it grows past a few megabytes."""
    with contextlib.suppress(OSError):
        if path.stat().st_size > _LOG_KEEP_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))


def log_tail(path: Path, offset: int, password: str, lines: int = 15) -> str:
    """The last lines the server logged after `offset`, with the password masked."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    # A config error makes Redis echo the offending line, which may be the password's.
    text = text.replace(password, "***")
    return "\n".join(text.strip().splitlines()[-lines:]) or "(the log is empty)"


def remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
