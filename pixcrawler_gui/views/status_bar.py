"""The window's status bar: broker, result backend and embedded-server state, always visible.

When PixCrawler's own Redis failed for good, a "Details…" button next to it opens what
happened, what to do and the end of the server's log.
"""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QStatusBar, QWidget

from pixcrawler_gui.models.subscriptions import subscribe_for
from pixcrawler_gui.presentation.redis_text import ServerShown, own_server_shown
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
        self.embedded_details = QPushButton("Details…", self)
        self.embedded_details.setObjectName("EmbeddedDetails")
        self.embedded_details.setFlat(True)
        self.embedded_details.setToolTip("What happened to PixCrawler's own Redis, and its log")
        self.embedded_details.clicked.connect(self.show_embedded_details)
        self.embedded_details.hide()
        self._embedded_shown: ServerShown | None = None
        self._endpoints: dict[str, EndpointStatus] = {}
        self.details_box: QMessageBox | None = None
        for widget in (self.embedded, self.embedded_details, self.broker, self.backend):
            self.addPermanentWidget(widget)
        self._labels = {"broker": "Broker", "backend": "Results"}
        for role, indicator in (("broker", self.broker), ("backend", self.backend)):
            name = self._labels[role]
            indicator.show_state(GREY, f"{name}: checking…", f"Checking the {name.lower()}…")
        subscribe_for(self, hub, EndpointStatus, self.on_endpoint)
        subscribe_for(self, hub, EmbeddedServerStatus, self.on_embedded)

    def on_endpoint(self, status: EndpointStatus) -> None:
        self._endpoints[status.role] = status
        indicator = self.broker if status.role == "broker" else self.backend
        name = self._labels[status.role]
        text = f"{name}: {_WORDS[status.state]}"
        # While the app's own Redis is down, its light says why: no need to repeat it here.
        own_down = self._embedded_shown is not None and self._embedded_shown.color == RED
        if status.reason and status.state == EndpointState.DOWN and not own_down:
            text += f" — {_shorten(status.reason)}"
        what = "Task messages (broker)" if status.role == "broker" else "Task results (backend)"
        tooltip = f"{what}: {status.url}\nState: {_WORDS[status.state]}"
        if status.reason:
            tooltip += f"\nReason: {status.reason}"
        if status.state == EndpointState.DOWN:
            tooltip += "\nPixCrawler keeps trying and reconnects by itself."
        indicator.show_state(_COLORS[status.state], text, tooltip)

    def on_embedded(self, status: EmbeddedServerStatus) -> None:
        shown = own_server_shown(status)
        self._embedded_shown = shown
        for endpoint in list(self._endpoints.values()):
            self.on_endpoint(endpoint)  # worded with or without their reason
        self.embedded_details.setVisible(shown is not None and shown.details is not None)
        if shown is None:
            self.embedded.hide()
            return
        self.embedded.show_state(shown.color, shown.text, shown.tooltip)
        self.embedded.show()
        if shown.message:
            self.showMessage(shown.message, shown.message_ms)

    def show_embedded_details(self) -> None:
        """What happened to the app's own Redis, what to do, and the end of its log."""
        shown = self._embedded_shown
        if shown is None or shown.details is None:
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("PixCrawler's own Redis")
        box.setText(shown.text)
        box.setInformativeText(shown.details)
        if shown.log:
            box.setDetailedText("\n".join(shown.log))
        box.setStandardButtons(QMessageBox.StandardButton.Close)
        self.details_box = box
        box.open()


def _shorten(text: str) -> str:
    first = text.split(". ")[0].rstrip(".")
    return first if len(first) <= _SHORT_REASON else first[: _SHORT_REASON - 1] + "…"
