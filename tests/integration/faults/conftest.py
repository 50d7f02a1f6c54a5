"""Fault tests drive the desktop app as the Qt tests do: the same loop, services, window and
leak checks (tests/integration/gui/conftest.py), then break something on purpose."""

from __future__ import annotations

from tests.integration.gui.conftest import (
    loop,
    main_thread_gc,
    no_leaks,
    services,
    settings,
    ui_state,
    window,
)
from tests.integration.gui.jobs_fixtures import image_site, jobs_session, submitter

__all__ = [
    "image_site",
    "jobs_session",
    "loop",
    "main_thread_gc",
    "no_leaks",
    "services",
    "settings",
    "submitter",
    "ui_state",
    "window",
]
