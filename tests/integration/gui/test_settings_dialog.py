"""The settings screen: generated widgets, inline errors, saving one key, connection tests."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import qasync
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox

from pixcrawler_gui.services.events import WorkerState
from pixcrawler_gui.views.main_window import MainWindow
from pixcrawler_gui.views.settings.setting_widgets import IntBinding, SecretBinding, TextBinding
from pixcrawler_gui.views.settings.settings_dialog import BACKEND_KEY, BROKER_KEY, SettingsDialog
from pixcrawler_gui.views.settings.settings_form import FieldRow
from tests.integration.gui.conftest import screenshot, wait_for
from tests.integration.gui.fakes import FakeBackend
from tests.support.redis_proc import RedisProcess, free_port

SOFT = "CelerySettings.task_soft_time_limit"
RETRIES = "CelerySettings.task_max_retries"
ENV_FILE_TEXT = (
    "# written by hand: keep this comment\n"
    "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=3\n"
    "\n"
    "PIXCRAWLER_CELERY_RESULT_EXPIRES=3600\n"
    "SOMETHING_ELSE=kept as it is\n"
)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def main_window(
    loop: qasync.QEventLoop, qtbot: Any, backend: FakeBackend, ui_state: QSettings
) -> Iterator[MainWindow]:
    window = MainWindow(backend, ui_state)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.finish_close()
    window.deleteLater()


def _open(window: MainWindow, qtbot: Any) -> SettingsDialog:
    dialog = window.open_settings()
    qtbot.waitExposed(dialog)
    return dialog


def _spin(row: FieldRow) -> QSpinBox:
    return cast(IntBinding, row.binding).spin


def _edit(row: FieldRow) -> QLineEdit:
    return cast(TextBinding, row.binding).edit


def _type(qtbot: Any, edit: QLineEdit, text: str) -> None:
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, text)


def test_widgets_follow_the_field_types(main_window: MainWindow, qtbot: Any) -> None:
    dialog = _open(main_window, qtbot)
    rows = dialog.form.rows
    assert isinstance(rows["CelerySettings.task_acks_late"].binding.widget, QCheckBox)
    spin = rows[RETRIES].binding.widget
    assert isinstance(spin, QSpinBox) and (spin.minimum(), spin.maximum()) == (0, 20)
    combo = rows["CelerySettings.worker_pool"].binding.widget
    assert isinstance(combo, QComboBox)
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "auto",
        "prefork",
        "threads",
        "solo",
    ]
    binding = cast(SecretBinding, rows[BROKER_KEY].binding)
    broker = binding.edit
    assert broker.echoMode() == QLineEdit.EchoMode.Normal  # no password: nothing to hide
    _type(qtbot, broker, "redis://:s3cret-pw@db.example:6379/0")
    assert broker.echoMode() == QLineEdit.EchoMode.Password  # passwords masked
    assert binding.preview.text() == "Connects to redis://:***@db.example:6379/0"
    screenshot(dialog, "07-settings-connection")
    qtbot.mouseClick(binding.reveal, Qt.MouseButton.LeftButton)
    assert broker.echoMode() == QLineEdit.EchoMode.Normal
    assert binding.preview.isHidden()
    assert rows[SOFT].description.text().startswith("After this many seconds")
    assert "CrawlerSettings.max_per_host" in rows  # every settings class given is generated
    assert rows["CrawlerSettings.max_retry_wait"].container.isHidden()  # advanced: hidden
    dialog.form.show_advanced.setChecked(True)
    assert not rows["CrawlerSettings.max_retry_wait"].container.isHidden()
    dialog.form.show_page_of("CrawlerSettings.connect_timeout")
    screenshot(dialog, "07b-settings-crawler-connection-advanced")


def test_soft_limit_above_hard_limit_is_shown_inline_and_blocks_save(
    main_window: MainWindow, qtbot: Any, isolated_dirs: Path
) -> None:
    dialog = _open(main_window, qtbot)
    dialog.form.show_page_of(SOFT)
    row = dialog.form.rows[SOFT]
    _type(qtbot, _spin(row).lineEdit(), "2000")
    assert row.error.isVisible()
    assert "must be lower than “Hard time limit”" in row.error.text()
    assert not dialog.save_button.isEnabled()
    screenshot(dialog, "08-settings-inline-error")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert not (isolated_dirs / "config" / ".env.dev").exists()

    _type(qtbot, _spin(row).lineEdit(), "2")  # below the field's minimum of 5
    assert "between 5 and 604,800" in row.error.text()
    assert not dialog.save_button.isEnabled()
    _type(qtbot, _spin(row).lineEdit(), "900")
    assert not row.error.isVisible()
    assert dialog.save_button.isEnabled()


def test_bad_broker_url_is_refused_as_typed(main_window: MainWindow, qtbot: Any) -> None:
    dialog = _open(main_window, qtbot)
    row = dialog.form.rows[BROKER_KEY]
    _type(qtbot, _edit(row), "http://localhost:6379/0")
    assert row.error.isVisible() and "'http' is not supported" in row.error.text()
    assert not dialog.save_button.isEnabled()


def test_valid_change_writes_only_that_key_and_offers_a_worker_restart(
    main_window: MainWindow, qtbot: Any, backend: FakeBackend, isolated_dirs: Path
) -> None:
    env_file = isolated_dirs / "config" / ".env.dev"
    env_file.parent.mkdir(parents=True)
    env_file.write_text(ENV_FILE_TEXT)
    worker = backend.supervisor.add_worker(backend.supervisor.suggest_spec("solo", 1))
    backend.supervisor.set_state(worker, WorkerState.READY)
    dialog = _open(main_window, qtbot)
    dialog.form.show_page_of(RETRIES)
    row = dialog.form.rows[RETRIES]
    assert _spin(row).value() == 3
    _type(qtbot, _spin(row).lineEdit(), "5")
    assert dialog.banner.isVisible() and "Workers must restart" in dialog.banner_text.text()
    assert dialog.save_button.isEnabled()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

    assert env_file.read_text() == ENV_FILE_TEXT.replace("RETRIES=3", "RETRIES=5")
    assert [f.key for f in backend.saved[0].changed] == [RETRIES]
    assert not dialog.save_button.isEnabled()  # nothing left to save
    assert dialog.restart_button.isVisible()
    assert "still uses the old values of Retries on transient errors" in dialog.banner_text.text()
    screenshot(dialog, "09-settings-saved-restart-offer")
    qtbot.mouseClick(dialog.restart_button, Qt.MouseButton.LeftButton)
    assert backend.restarts == 1


def test_environment_variable_overrides_are_shown(
    main_window: MainWindow, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIXCRAWLER_CELERY_TASK_MAX_RETRIES", "7")
    dialog = _open(main_window, qtbot)
    row = dialog.form.rows[RETRIES]
    assert _spin(row).value() == 7
    assert not _spin(row).isEnabled()
    assert not row.override.isHidden()
    assert "PIXCRAWLER_CELERY_TASK_MAX_RETRIES" in row.override.text()


def test_environment_selector_edits_that_environment_file(
    main_window: MainWindow, qtbot: Any, isolated_dirs: Path
) -> None:
    dialog = _open(main_window, qtbot)
    dialog.environment.setCurrentIndex(dialog.environment.findData("prod"))
    assert dialog.file_label.text().endswith(".env.prod")
    assert "PIXCRAWLER_ENV=prod" in dialog.active_note.text()
    _type(qtbot, _spin(dialog.form.rows[RETRIES]).lineEdit(), "9")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    config = isolated_dirs / "config"
    assert (config / ".env.prod").read_text() == "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=9\n"
    assert not (config / ".env.dev").exists()


def test_connection_test_reports_failures_without_freezing_the_window(
    main_window: MainWindow, qtbot: Any, redis_proc: RedisProcess
) -> None:
    dialog = _open(main_window, qtbot)
    dialog.form.show_page_of(BROKER_KEY)
    dead = free_port()
    with socket.socket() as silent:  # accepts connections, never answers: a hung server
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        _type(qtbot, _edit(dialog.form.rows[BROKER_KEY]), f"redis://127.0.0.1:{dead}/0")
        _type(qtbot, _edit(dialog.form.rows[BACKEND_KEY]), f"redis://127.0.0.1:{port}/1")
        ticks: list[int] = []
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(1))
        timer.start(50)
        qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
        assert dialog.test_button.text() == "Testing…"
        wait_for(qtbot, lambda: dialog.test_button.text() == "Test connection", timeout=15)
        timer.stop()
    text = dialog.test_result.text()
    assert f"connection refused at 127.0.0.1:{dead}" in text
    assert "timed out after 1 s" in text
    assert len(ticks) >= 10  # the event loop kept running during the 1 s timeout
    screenshot(dialog, "10-settings-test-connection-failed")

    _type(qtbot, _edit(dialog.form.rows[BROKER_KEY]), redis_proc.url(0))
    _type(qtbot, _edit(dialog.form.rows[BACKEND_KEY]), redis_proc.url(1))
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: dialog.test_result.text().count("answered in") == 2, timeout=15)
    assert redis_proc.password not in dialog.test_result.text()
    assert os.environ.get("PIXCRAWLER_CELERY_BROKER_URL") is None


NETWORKS_KEY = "CrawlerSettings.allowed_networks"


def test_a_network_typed_as_its_help_says_survives_save_and_reopen(
    main_window: MainWindow, qtbot: Any
) -> None:
    """The field's own example (127.0.0.0/8) saved, loaded strictly, and shown again."""
    from celery_core.settings.crawler_settings import CrawlerSettings
    from celery_core.settings.file_settings import env_files

    dialog = _open(main_window, qtbot)
    dialog.form.show_page_of(NETWORKS_KEY)
    edit = _edit(dialog.form.rows[NETWORKS_KEY])
    assert edit.placeholderText() == "Comma-separated, e.g. 127.0.0.0/8, 192.168.1.0/24"
    _type(qtbot, edit, "127.0.0.0/8")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    dialog.close()
    text = env_files("dev")[1].read_text()
    assert text == "PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS=127.0.0.0/8\n"
    assert CrawlerSettings.load().allowed_networks == ["127.0.0.0/8"]  # strict: loads back

    again = _open(main_window, qtbot)
    again.form.show_page_of(NETWORKS_KEY)
    row = again.form.rows[NETWORKS_KEY]
    assert _edit(row).text() == "127.0.0.0/8"
    assert not row.error.isVisible() and not again.problems.isVisible()
    screenshot(again, "settings-networks-after-save-and-reopen")
