"""How settings values are written as text, and the checks every text value passes.

One format for lists: comma-separated (`JPEG,PNG`), in files, environment variables, the
settings screen and `pixcrawler settings set`. A JSON list (`["JPEG", "PNG"]`), which files
saved by earlier versions hold, is still read. No text value may hold a control character
(a line break, a tab, NUL, DEL, C1 controls): a line break in a URL is silently dropped by
URL parsers, and in an HTTP header it breaks every request.
"""

from __future__ import annotations

import json
import unicodedata

__all__ = ["check_header_value", "check_no_control", "join_list", "split_list"]

_NAMES = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL"}


def split_list(value: object) -> object:
    """A list field's text as a list: comma-separated, or a JSON list (earlier files)."""
    check_no_control(value)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            decoded = json.loads(text)
        except ValueError:
            raise ValueError(
                f"{text!r} is neither a comma-separated list nor a JSON list"
            ) from None
        if isinstance(decoded, list):
            return [str(item).strip() for item in decoded if str(item).strip()]
    return [part.strip() for part in text.split(",") if part.strip()]


def join_list(items: list[object] | tuple[object, ...]) -> str:
    """A list as the settings files write it: `a,b,c`."""
    return ",".join(str(item) for item in items)


def _control(text: str) -> tuple[int, str] | None:
    for index, char in enumerate(text):
        if unicodedata.category(char) == "Cc":
            return index, _NAMES.get(char, f"the control character U+{ord(char):04X}")
    return None


def check_no_control(value: object) -> object:
    """`value` unchanged; ValueError when a text (or a list's item) holds a control character."""
    texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    for text in texts:
        if isinstance(text, str) and (found := _control(text)) is not None:
            index, name = found
            raise ValueError(
                f"contains {name} at character {index + 1}; settings are one line of text "
                "without tabs or line breaks"
            )
    return value


def check_header_value(value: str) -> str:
    """`value` stripped, if it can be sent as an HTTP header value (RFC 9110 field-value:
    visible ASCII, spaces, and Latin-1 letters), else ValueError saying which character."""
    value = value.strip()
    check_no_control(value)
    for index, char in enumerate(value):
        if ord(char) > 0xFF:
            raise ValueError(
                f"character {index + 1} ({char!r}) cannot be sent in an HTTP header; "
                "use ASCII (or Latin-1) letters"
            )
    return value
