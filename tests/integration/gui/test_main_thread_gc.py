"""Cyclic garbage, Qt objects included, is freed on the GUI thread, never in a worker thread."""

from __future__ import annotations

import gc
import threading
from typing import Any

from PySide6.QtCore import QTimer

from pixcrawler_gui.desktop.main_thread_gc import MainThreadGC


class _Cycle:
    """Garbage only the cyclic collector can free; notes the thread that freed it."""

    freed_in: list[str] = []

    def __init__(self) -> None:
        self.me = self
        self.timer = QTimer()  # what must never be destroyed off the GUI thread
        self.timer.start(60_000)

    def __del__(self) -> None:
        _Cycle.freed_in.append(threading.current_thread().name)


_KEEP: list[list[object]] = []


def _allocate_a_lot() -> None:
    # Far more container allocations than the youngest generation's threshold: with the
    # automatic collector on, a collection runs right here, in this thread.
    _KEEP.extend([] for _ in range(50_000))


def test_cycles_made_on_the_gui_thread_are_freed_there(
    qtbot: Any, main_thread_gc: MainThreadGC
) -> None:
    gc.collect()
    _Cycle.freed_in.clear()
    _Cycle()  # dropped at once: cyclic garbage
    worker = threading.Thread(target=_allocate_a_lot, name="busy-worker")
    worker.start()
    worker.join()
    try:
        assert _Cycle.freed_in == []  # nothing was collected in the worker thread
        qtbot.waitUntil(lambda: _Cycle.freed_in == ["MainThread"], timeout=5000)
    finally:
        _KEEP.clear()


def test_stopping_gives_the_automatic_collector_back(
    qapp: Any, main_thread_gc: MainThreadGC
) -> None:
    main_thread_gc.stop()
    try:
        assert gc.isenabled()
        collector = MainThreadGC(parent=qapp)
        collector.start()
        assert not gc.isenabled()
        collector.stop()
        assert gc.isenabled()
    finally:
        main_thread_gc.start()
