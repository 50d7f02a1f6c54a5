"""Folder names made from category and keyword names: valid on every OS, unable to escape.

Kept apart from the dataset writer so that checking a job file (which must know which names
would share a folder) does not load the image libraries.
"""

from __future__ import annotations

import re
import unicodedata

_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
_UNSAFE_CHARS = re.compile(r'[<>:"/\\|?*]')
_MAX_NAME = 100


def safe_name(text: str, fallback: str = "_") -> str:
    """A folder name from a category or keyword, valid on every OS and unable to escape.

    Path separators and characters Windows forbids become "_", control characters go,
    ".." cannot survive (no name made only of dots), and reserved device names get a "_".
    """
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = _UNSAFE_CHARS.sub("_", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    text = re.sub(r"\.{2,}", ".", text)
    if text.split(".")[0].upper() in _WINDOWS_RESERVED:
        text = "_" + text
    text = text[:_MAX_NAME].rstrip(" .")
    return text or fallback
