"""Broker and backend status in the status bar follow a real Redis going away and coming back."""

from __future__ import annotations

from typing import Any

import qasync

from pixcrawler_gui.services.events import EndpointState, EndpointStatus
from pixcrawler_gui.services.runtime import AppServices
from pixcrawler_gui.views.main_window import MainWindow
from tests.integration.gui.conftest import run, screenshot, wait_for
from tests.support.redis_proc import RedisProcess


def test_status_bar_shows_redis_down_then_recovers_by_itself(
    loop: qasync.QEventLoop,
    qtbot: Any,
    services: AppServices,
    window: MainWindow,
    redis_proc: RedisProcess,
) -> None:
    seen: list[EndpointStatus] = []
    services.hub.subscribe(EndpointStatus, seen.append)
    run(loop, qtbot, services.start())
    broker, backend = window.status.broker.text, window.status.backend.text
    wait_for(qtbot, lambda: broker.text() == "Broker: connected", timeout=20)
    wait_for(qtbot, lambda: backend.text() == "Results: connected", timeout=20)

    redis_proc.stop()
    wait_for(qtbot, lambda: broker.text().startswith("Broker: down"), timeout=20)
    wait_for(qtbot, lambda: backend.text().startswith("Results: down"), timeout=20)
    assert "connection refused" in broker.text()
    assert "keeps trying" in window.status.broker.toolTip()
    assert redis_proc.password not in window.status.broker.toolTip()
    states = [s.state for s in seen if s.role == "broker"]
    assert EndpointState.RECONNECTING in states  # one quick retry before "down"
    screenshot(window, "05-status-redis-down")

    redis_proc.start()  # same port and password
    wait_for(qtbot, lambda: broker.text() == "Broker: connected", timeout=30)
    wait_for(qtbot, lambda: backend.text() == "Results: connected", timeout=30)
    screenshot(window, "06-status-redis-back")
