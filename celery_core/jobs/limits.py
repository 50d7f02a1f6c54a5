"""Limits on what a job file may hold, so that hostile or broken input ends in one line.

A job file comes from anywhere: a colleague, a script, a download. Each check here turns what
would otherwise be a traceback, a hang or a silent surprise into a `ValueError` whose text
says what is wrong: a file too large or nested too deep, a number of thousands of digits, a
`urls_file` that never ends (`/dev/zero`), control characters in a path, two names that
would share one folder, or a dataset folder that is the root or a system folder.
"""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from celery_core.crawler.dataset.names import safe_name

MAX_JOB_BYTES = 10 * 1024 * 1024  # a job with 100,000 inline URLs is about 6 MB
MAX_URLS_FILE_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 32  # the format needs 6 levels; JSON nested deeper is not a job
MAX_NUMBER_DIGITS = 18  # every number in a job fits in a 64-bit integer

# Folders a dataset must never be written into (nor below, for the first group).
_SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32",
                 "/proc", "/sbin", "/sys", "/usr", "/System", "/Library")  # fmt: skip
_SYSTEM_FOLDERS = ("/home", "/Users", "/root", "/var", "/opt", "/srv", "/mnt", "/media", "/tmp")


def read_capped(path: Path, limit: int, what: str) -> str:
    """The text of a regular file of at most `limit` bytes (UTF-8, BOM allowed)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ValueError(f"cannot read {what}: {exc.strerror or exc}") from None
    if not path.is_file():
        raise ValueError(f"{what} ({path}) is not a regular file")
    if info.st_size > limit:
        raise ValueError(f"{what} is {_size(info.st_size)}; at most {_size(limit)} is read")
    with path.open("rb") as handle:
        data = handle.read(limit + 1)  # the file may have grown since stat()
    if len(data) > limit:
        raise ValueError(f"{what} is larger than {_size(limit)}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} is not UTF-8 text (byte {exc.start})") from None


def load_json(text: str) -> Any:
    """Parse JSON text of a job, refusing sizes, depths and numbers no job has."""
    if len(text) > MAX_JOB_BYTES:
        raise ValueError(
            f"the job is {_size(len(text))}; a job may be at most {_size(MAX_JOB_BYTES)}"
        )
    try:
        data = json.loads(text, parse_int=_small_int)
    except json.JSONDecodeError as exc:
        raise ValueError(f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ValueError(f"the JSON is nested more than {MAX_DEPTH} levels deep") from None
    depth = _depth(data)
    if depth > MAX_DEPTH:
        raise ValueError(f"the JSON is nested {depth} levels deep; a job needs far fewer")
    return data


def _small_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number with {len(digits.lstrip('-'))} digits is not a valid value")
    return int(digits)


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:  # deeper than that is refused anyway: stop walking
                todo.extend((child, level + 1) for child in _children(item))
    return deepest


def _children(item: dict[str, Any] | list[Any]) -> Iterable[Any]:
    return item.values() if isinstance(item, dict) else item


def path_text_problem(value: str) -> str | None:
    """Why a path given in a job cannot be used as text, or None."""
    bad = sorted({f"U+{ord(c):04X}" for c in value if unicodedata.category(c) == "Cc"})
    if bad:
        return "contains control characters (" + ", ".join(bad) + ")"
    return None


def dataset_folder_problem(path: Path) -> str | None:
    """Why `path` (absolute) must not hold a dataset, or None."""
    resolved = Path(os.path.abspath(path))
    if resolved.parent == resolved:
        return f"{str(resolved)!r} is the root of a disk; choose a folder for the dataset"
    text = resolved.as_posix()
    for tree in _SYSTEM_TREES:
        if text.startswith("/dev/shm/"):  # memory-backed scratch space users may write to
            break
        if text == tree or text.startswith(tree + "/"):
            return f"{text!r} is inside the system folder {tree}; choose a folder of your own"
    if text in _SYSTEM_FOLDERS or str(resolved) == str(Path.home()):
        return f"{text!r} is a folder shared by many programs; choose a folder inside it"
    if sys.platform == "win32":
        windir = os.environ.get("SYSTEMROOT", r"C:\Windows").lower()
        if str(resolved).lower().startswith(windir):
            return f"{str(resolved)!r} is inside Windows' own folder; choose a folder of your own"
    return None


def folder_key(name: str) -> str:
    """Names with equal keys end up in one folder: same characters once cleaned, in any case
    (macOS and Windows folders ignore case), in either Unicode normal form."""
    return safe_name(unicodedata.normalize("NFC", name)).casefold()


def shared_folders(names: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of different names that would be written into the same folder."""
    first: dict[str, str] = {}
    clashes: list[tuple[str, str]] = []
    for name in names:
        key = folder_key(name)
        if key in first and first[key] != name:
            clashes.append((first[key], name))
        first.setdefault(key, name)
    return clashes


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"
