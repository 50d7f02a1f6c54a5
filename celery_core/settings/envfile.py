"""Reading and rewriting `.env` files without losing what a person wrote in them.

`save()` must change only the keys it was asked to change: comments, blank lines,
unknown keys and the order of lines all survive, and the file is replaced
atomically so a crash never leaves it half-written. Bytes that are not UTF-8 survive as
they were, unless the caller names their line as unreadable: such a line is kept as a comment
(or replaced, when it was meant to set a key being written).
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from celery_core.settings.values import join_list

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_./:@%+,\-*?=]*$")
_KEY_START = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)")


def format_value(value: object) -> str:
    """Render a settings value the way pydantic-settings reads it back; a list comma-separated
    (`JPEG,PNG`, see `celery_core.settings.values`)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | tuple):
        text = join_list(value)
    elif isinstance(value, dict):
        text = json.dumps(value)
    elif value is None:
        text = ""
    else:
        text = str(value)
    if _SAFE_VALUE.match(text):
        return text
    # python-dotenv expands ${NAME} even between single quotes and has no escape for it; a
    # variable with an empty name never exists, so ${:-$} reads back as a plain "$".
    text = text.replace("${", "${:-$}{")
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def read_keys(path: Path) -> dict[str, int]:
    """Map each key defined in `path` to its line number (last definition wins)."""
    found: dict[str, int] = {}
    if not path.exists():
        return found
    for number, line in enumerate(read_lines(path)):
        match = _LINE.match(line)
        if match:
            found[match.group(1)] = number
    return found


def read_lines(path: Path) -> list[str]:
    """The lines of `path` (split as python-dotenv counts them); bytes that are not UTF-8 are
    kept as surrogate escapes, so writing the lines back gives the same bytes."""
    data = path.read_bytes()
    return [raw.decode("utf-8", "surrogateescape") for raw in data.splitlines()]


def update_env_file(
    path: Path,
    changes: Mapping[str, object],
    removals: frozenset[str] = frozenset(),
    private: bool = False,
    unreadable: Mapping[int, str] | None = None,
) -> None:
    """Set `changes` (KEY -> value) and drop `removals` in `path`, atomically.

    Lines that define other keys, comments and blank lines are kept as they were.
    With `private`, the file is made readable by its owner only (it holds a password).
    `unreadable` maps 0-based line numbers to why no load can read them: such a line becomes
    a comment holding its text, or the new value when it was meant to set a key in `changes`.
    """
    lines = read_lines(path) if path.exists() else []
    unreadable = unreadable or {}
    written: set[str] = set()
    out: list[str] = []
    for index, line in enumerate(lines):
        if index in unreadable:
            start = _KEY_START.match(line)
            if start is not None and start.group(1) in changes:
                key = start.group(1)
                out.append(f"{key}={format_value(changes[key])}")
                written.add(key)
            else:
                text = line.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                out.append(f"# PixCrawler could not read this line ({unreadable[index]}): {text}")
            continue
        match = _LINE.match(line)
        key = match.group(1) if match else None
        if key is not None and key in removals:
            continue
        if key is not None and key in changes:
            out.append(f"{key}={format_value(changes[key])}")
            written.add(key)
            continue
        out.append(line)
    for key, value in changes.items():
        if key not in written:
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
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
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
