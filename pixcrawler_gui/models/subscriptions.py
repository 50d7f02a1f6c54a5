"""Event subscriptions that end with the Qt object that made them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from PySide6.QtCore import QObject

from pixcrawler_gui.services.events import EventHub

E = TypeVar("E")


def subscribe_for(
    owner: QObject, hub: EventHub, kind: type[E], callback: Callable[[E], None]
) -> None:
    """Deliver `kind` events to `callback` until `owner` is destroyed."""
    unsubscribe = hub.subscribe(kind, callback)
    # A closure without `owner`: the Python wrapper may be gone when `destroyed` fires.
    owner.destroyed.connect(lambda *_: unsubscribe())
