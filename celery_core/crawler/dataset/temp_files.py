"""Temp files of images being written: named after their writer, removed once it is gone.

An image is written to a temp name and then linked to its numbered name, so a crash can
leave a temp file behind. Its name carries a tag of the computer and the id of the process
writing it: a later crawl of the folder on the same computer removes it as soon as that
process no longer runs, while temp files of other computers (a shared folder) are removed
only when old, since a temp file normally lives for milliseconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import sys
import time
from pathlib import Path

TEMP_PREFIX = ".tmp-"
TEMP_MAX_AGE_S = 120.0

_WRITER = hashlib.sha1(socket.gethostname().encode("utf-8")).hexdigest()[:8]
_TEMP_NAME = re.compile(rf"^{re.escape(TEMP_PREFIX)}([0-9a-f]{{8}})-(\d+)-")


def temp_name(ext: str) -> str:
    """`.tmp-<computer tag>-<pid>-<random>.<ext>`"""
    return f"{TEMP_PREFIX}{_WRITER}-{os.getpid()}-{secrets.token_hex(4)}.{ext}"


def writer_gone(name: str) -> bool:
    """Whether the temp file's writer was a process of this computer that no longer runs."""
    match = _TEMP_NAME.match(name)
    if match is None or match.group(1) != _WRITER or sys.platform == "win32":
        return False  # not ours to judge (and os.kill cannot probe a process on Windows)
    pid = int(match.group(2))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it runs, under another user
    return False


def remove_stray_temp_files(folder: Path, older_than: float = TEMP_MAX_AGE_S) -> int:
    """Delete the temp files in `folder` whose writer is gone or that are old; returns how many."""
    removed = 0
    cutoff = time.time() - older_than
    for name in os.listdir(folder):
        if not name.startswith(TEMP_PREFIX):
            continue
        try:
            if writer_gone(name) or (folder / name).stat().st_mtime <= cutoff:
                (folder / name).unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed
