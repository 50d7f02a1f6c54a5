"""Settings amounts in words and tracebacks folded in worker logs."""

from __future__ import annotations

from pixcrawler_gui.presentation.readable_text import (
    FOLD_MARK,
    fold_tracebacks,
    readable_amount,
    readable_bytes,
    readable_seconds,
)


def test_seconds_read_as_days_hours_and_minutes() -> None:
    assert readable_seconds(604_800) == "7 days"
    assert readable_seconds(3_600) == "1 hour"
    assert readable_seconds(5_400) == "1 hour 30 min"
    assert readable_seconds(125) == "2 min 5 s"
    assert readable_seconds(90_061) == "about 1 day 1 hour"
    assert readable_seconds(59) == ""  # a plain number says it already


def test_bytes_read_as_kb_mb_gb() -> None:
    assert readable_bytes(20_971_520) == "20 MB"
    assert readable_bytes(1536) == "about 1.5 KB"
    assert readable_bytes(1024**3) == "1 GB"
    assert readable_bytes(500) == ""
    assert readable_amount(2048, "megabytes") == "2 GB"
    assert readable_amount(604_800, "seconds") == "7 days"
    assert readable_amount(604_800, None) == ""


LOG = [
    "[12:00:01] ready",
    "Traceback (most recent call last):",
    '  File "x.py", line 1, in <module>',
    "    boom()",
    "ValueError: boom",
    "[12:00:02] still running",
]


def test_a_traceback_folds_to_its_exception_line() -> None:
    shown, pending = fold_tracebacks(LOG)
    assert pending == []
    assert shown[0] == "[12:00:01] ready"
    assert shown[1].startswith(FOLD_MARK + "ValueError: boom")
    assert "3 lines folded" in shown[1]
    assert shown[2] == "[12:00:02] still running"


def test_a_traceback_arriving_in_parts_waits_for_its_end() -> None:
    shown, pending = fold_tracebacks(LOG[:3])
    assert shown == ["[12:00:01] ready"] and pending == LOG[1:3]
    shown, pending = fold_tracebacks(pending + LOG[3:])
    assert shown[0].startswith(FOLD_MARK + "ValueError") and pending == []
