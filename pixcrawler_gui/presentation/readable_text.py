"""Numbers and logs in the words a person reads: settings amounts with their unit (604800 s
is "7 days", 20971520 bytes "20 MB") and worker logs with each traceback folded to one line."""

from __future__ import annotations

from collections.abc import Iterable

_TIME_STEPS = ((86_400, "day"), (3_600, "hour"), (60, "min"), (1, "s"))
_BYTE_STEPS = ((1024**4, "TB"), (1024**3, "GB"), (1024**2, "MB"), (1024, "KB"))
TRACEBACK_START = "Traceback (most recent call last):"
FOLD_MARK = "▸ "  # the one line a folded traceback becomes starts with this


def readable_amount(value: float, unit: str | None) -> str:
    """`value` in `unit` ("seconds", "bytes" or "megabytes") as a person says it; "" when the
    raw number says it just as well (no unit, under a minute or a kilobyte)."""
    if unit == "seconds":
        return readable_seconds(value)
    if unit == "bytes":
        return readable_bytes(value)
    if unit == "megabytes":
        return readable_bytes(value * 1024**2)
    return ""


def readable_seconds(value: float) -> str:
    """7 days, 1 hour 30 min, 2 min 5 s; "" below a minute (the number is plain then)."""
    if value < 60:
        return ""
    rest = round(value)
    parts = []
    for size, name in _TIME_STEPS:
        count, rest = divmod(rest, size)
        if count:
            plural = "s" if count > 1 and name in ("day", "hour") else ""
            parts.append(f"{count} {name}{plural}")
    return " ".join(parts[:2]) if len(parts) <= 2 else "about " + " ".join(parts[:2])


def readable_bytes(value: float) -> str:
    """20 MB, 1.5 GB; "" below a kilobyte."""
    for size, name in _BYTE_STEPS:
        if value >= size:
            amount = value / size
            text = f"{amount:.0f}" if amount == int(amount) or amount >= 100 else f"{amount:.1f}"
            return ("" if amount == int(amount) else "about ") + f"{text} {name}"
    return ""


def fold_tracebacks(lines: Iterable[str]) -> tuple[list[str], list[str]]:
    """The lines with each Python traceback (from its "Traceback" line to the exception line
    that ends it) replaced by one line: the exception, marked as folded with the count.

    Returns (lines to show, the start of a traceback not ended yet): a log arriving in parts
    passes the second back in front of the next part."""
    out: list[str] = []
    block: list[str] | None = None
    for line in lines:
        if block is None:
            if line.lstrip().startswith(TRACEBACK_START):
                block = [line]
            else:
                out.append(line)
            continue
        block.append(line)
        if line[:1] not in (" ", "\t", "") and not line.lstrip().startswith(TRACEBACK_START):
            out.append(_folded(block))
            block = None
    return out, block or []


def _folded(block: list[str]) -> str:
    hidden = len(block) - 1
    return f"{FOLD_MARK}{block[-1].strip()}  [traceback of {hidden} lines folded]"
