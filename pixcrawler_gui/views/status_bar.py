"""The window's status bar: broker, result backend and embedded-server state, always visible."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QStatusBar, QWidget

from pixcrawler_gui.models.subscriptions import subscribe_for
from pixcrawler_gui.services.events import (
    EmbeddedServerStatus,
    EndpointState,
    EndpointStatus,
    EventHub,
)
from pixcrawler_gui.views.style import AMBER, GREEN, GREY, RED, dot_icon

_COLORS = {
    EndpointState.CHECKING: GREY,
    EndpointState.CONNECTED: GREEN,
    EndpointState.RECONNECTING: AMBER,
    EndpointState.DOWN: RED,
}
_WORDS = {
    EndpointState.CHECKING: "checking…",
    EndpointState.CONNECTED: "connected",
    EndpointState.RECONNECTING: "reconnecting…",
    EndpointState.DOWN: "down",
}
_SHORT_REASON = 70


class Indicator(QWidget):
    """A coloured light and a line of text."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.light = QLabel(self)
        self.text = QLabel(self)
        self.text.setObjectName(f"{name}Text")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.setSpacing(6)
        layout.addWidget(self.light)
        layout.addWidget(self.text)

    def show_state(self, color: str, text: str, tooltip: str) -> None:
        self.light.setPixmap(dot_icon(color).pixmap(12, 12))
        self.text.setText(text)
        self.setToolTip(tooltip)


class StatusBar(QStatusBar):
    def __init__(self, hub: EventHub, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.broker = Indicator("BrokerStatus", self)
        self.backend = Indicator("BackendStatus", self)
        self.embedded = Indicator("EmbeddedStatus", self)
        self.embedded.hide()
        for widget in (self.embedded, self.broker, self.backend):
            self.addPermanentWidget(widget)
        self._labels = {"broker": "Broker", "backend": "Results"}
        for role, indicator in (("broker", self.broker), ("backend", self.backend)):
            name = self._labels[role]
            indicator.show_state(GREY, f"{name}: checking…", f"Checking the {name.lower()}…")
        subscribe_for(self, hub, EndpointStatus, self.on_endpoint)
        subscribe_for(self, hub, EmbeddedServerStatus, self.on_embedded)

    def on_endpoint(self, status: EndpointStatus) -> None:
        indicator = self.broker if status.role == "broker" else self.backend
        name = self._labels[status.role]
        text = f"{name}: {_WORDS[status.state]}"
        if status.reason and status.state == EndpointState.DOWN:
            text += f" — {_shorten(status.reason)}"
        what = "Task messages (broker)" if status.role == "broker" else "Task results (backend)"
        tooltip = f"{what}: {status.url}\nState: {_WORDS[status.state]}"
        if status.reason:
            tooltip += f"\nReason: {status.reason}"
        if status.state == EndpointState.DOWN:
            tooltip += "\nPixCrawler keeps trying and reconnects by itself."
        indicator.show_state(_COLORS[status.state], text, tooltip)

    def on_embedded(self, status: EmbeddedServerStatus) -> None:
        if status.running:
            self.embedded.show_state(
                GREEN,
                f"Own Redis on port {status.port}",
                f"PixCrawler started its own Redis server ({status.version or 'redis'}) on "
                f"127.0.0.1:{status.port}, because nothing answered at {status.replaces}.\n"
                "It stops when the app closes.",
            )
            self.embedded.show()
            self.showMessage(
                f"Started PixCrawler's own Redis: nothing answered at {status.replaces}", 20_000
            )
        elif status.error:
            self.embedded.show_state(RED, "No Redis", status.error)
            self.embedded.show()
        else:
            self.embedded.hide()


def _shorten(text: str) -> str:
    first = text.split(". ")[0].rstrip(".")
    return first if len(first) <= _SHORT_REASON else first[: _SHORT_REASON - 1] + "…"
