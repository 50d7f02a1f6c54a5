"""Python's cyclic garbage collector, run on the GUI thread only.

Qt objects often end up in reference cycles (a signal connected to a lambda that captures
its sender is one), and such garbage is freed only when the cyclic collector runs. Left
automatic, the collector runs in whichever thread happens to allocate: an executor thread,
the Celery event receiver. A QObject destroyed there (a socket notifier, a timer) leaves the
GUI thread's Qt state pointing at freed memory, and the app crashes later, somewhere else.
So the automatic collector is switched off and a timer on the GUI thread collects instead,
generation by generation, with the interpreter's own thresholds.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class MainThreadGC(QObject):
    def __init__(self, interval_ms: int = 500, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect)

    def start(self) -> None:
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self.collect()
        if self._was_enabled:
            gc.enable()

    def collect(self) -> None:
        """What the automatic collector would have done by now, here."""
        first, second, third = self._thresholds
        young, middle, old = gc.get_count()
        if young < first:
            return
        if middle < second:
            gc.collect(0)
        elif old < third:
            gc.collect(1)
        else:
            gc.collect(2)
