"""Reading and rewriting `.env` files without losing what a person wrote in them.

`save()` must change only the keys it was asked to change: comments, blank lines,
unknown keys and the order of lines all survive, and the file is replaced
atomically so a crash never leaves it half-written.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_./:@%+,\-*?=]*$")


def format_value(value: object) -> str:
    """Render a settings value the way pydantic-settings reads it back."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | tuple | dict):
        text = json.dumps(value)
    elif value is None:
        text = ""
    else:
        text = str(value)
    if _SAFE_VALUE.match(text):
        return text
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def read_keys(path: Path) -> dict[str, int]:
    """Map each key defined in `path` to its line number (last definition wins)."""
    found: dict[str, int] = {}
    if not path.exists():
        return found
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        match = _LINE.match(line)
        if match:
            found[match.group(1)] = number
    return found


def update_env_file(
    path: Path,
    changes: Mapping[str, object],
    removals: frozenset[str] = frozenset(),
    private: bool = False,
) -> None:
    """Set `changes` (KEY -> value) and drop `removals` in `path`, atomically.

    Lines that define other keys, comments and blank lines are kept as they were.
    With `private`, the file is made readable by its owner only (it holds a password).
    """
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    pending = dict(changes)
    out: list[str] = []
    for line in lines:
        match = _LINE.match(line)
        key = match.group(1) if match else None
        if key is not None and key in removals:
            continue
        if key is not None and key in pending:
            out.append(f"{key}={format_value(pending.pop(key))}")
            continue
        out.append(line)
    for key, value in pending.items():
        out.append(f"{key}={format_value(value)}")
    text = "\n".join(out) + ("\n" if out else "")
    atomic_write_text(path, text, private=private)


def atomic_write_text(path: Path, text: str, private: bool = False) -> None:
    """Write `text` to `path` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existing_mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    mode = 0o600 if private else existing_mode
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
