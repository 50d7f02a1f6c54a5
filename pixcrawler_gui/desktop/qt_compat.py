"""A guard against a reference-count bug of PySide6 6.12.0 on Python 3.11.

That release hands back None, True and False from some calls without taking a reference to
them: every Qt function that returns nothing (`setText`, `processEvents`, ...), every empty
QVariant converted to None, and `Signal.emit()`'s result. Each such call takes a reference
from the singleton; after some tens of thousands of calls (seconds of a busy GUI), Python
frees None or a bool and aborts ("none_dealloc", "bool_dealloc"). Python 3.12 made these
objects immortal, and PySide6 6.11 takes its references, so neither crashes.

`guard_singleton_refcounts()` checks for the bug and, only where it shows, gives the affected
singletons a reference count that no run of the app can use up. They are never freed in a
working interpreter, so the extra count changes nothing else.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

_SPARE = 1 << 48  # about 2.8e14 calls: centuries of a busy GUI
_PROBES = 50
_guarded = False


def _leaks(target: object, call: Callable[[], object]) -> bool:
    """Whether `call` takes a reference from `target`; probed with room to spare, so the
    probe itself cannot free the singleton."""
    count = ctypes.c_ssize_t.from_address(id(target))
    count.value += 2 * _PROBES
    before = sys.getrefcount(target)
    for _ in range(_PROBES):
        call()
    leaked = before - sys.getrefcount(target) >= _PROBES // 2
    if not leaked:
        count.value -= 2 * _PROBES
    return leaked


def singletons_leak() -> bool:
    """Whether this PySide6 takes references from None (a call returning nothing) or from
    True (`Signal.emit()`)."""
    from PySide6.QtCore import QObject, Signal

    class Probe(QObject):
        poked = Signal()

    probe = Probe()
    return _leaks(None, lambda: probe.setObjectName("probe")) or _leaks(True, probe.poked.emit)


def guard_singleton_refcounts() -> bool:
    """Apply the guard (once) if this PySide6 needs it; True when it is in place."""
    global _guarded
    if _guarded:
        return True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if not singletons_leak():
        return False
    # All three, whichever the probes caught: the same conversions serve every one of them.
    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += _SPARE
    _guarded = True
    return True
