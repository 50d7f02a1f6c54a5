"""The Settings window: environment selector, generated form, connection test, save."""

from __future__ import annotations

import asyncio
from typing import Protocol

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from celery_core.settings.file_settings import (
    ENVIRONMENTS,
    Environment,
    SettingsError,
    active_environment,
)
from pixcrawler_gui.services.background import TaskSet
from pixcrawler_gui.services.events import ConnectionCheck, Role
from pixcrawler_gui.services.settings_editor import SaveOutcome, SettingsEditor
from pixcrawler_gui.views.settings.settings_form import SettingsForm
from pixcrawler_gui.views.style import GREEN, RED, label

BROKER_KEY = "CelerySettings.broker_url"
BACKEND_KEY = "CelerySettings.result_backend"
ENV_HELP = {
    "dev": "dev — this computer, for trying things out",
    "staging": "staging — a shared test setup",
    "prod": "prod — the real thing",
}


class SettingsActions(Protocol):
    async def test_connection(self, role: Role, url: str) -> ConnectionCheck: ...

    def settings_saved(self, outcome: SaveOutcome) -> None:
        """Apply saved settings to the running app (it reconnects if the URLs changed)."""

    def running_workers(self) -> int: ...

    def restart_running_workers(self) -> int: ...


class SettingsDialog(QDialog):
    saved = Signal()  # after the settings were written

    def __init__(
        self, editor: SettingsEditor, actions: SettingsActions, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings — PixCrawler")
        self.editor = editor
        self._actions = actions
        self._tasks = TaskSet()

        self.environment = QComboBox(self)
        for env in ENVIRONMENTS:
            self.environment.addItem(ENV_HELP.get(env, env), env)
        self.environment.setCurrentIndex(self.environment.findData(editor.env))
        self.file_label = label("", "Description", self)
        self.active_note = label("", "Badge", self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Environment", self))
        top.addWidget(self.environment)
        top.addSpacing(12)
        top.addWidget(self.file_label, 1)

        # What in the files no field below can show or correct (a line naming no setting, a
        # real environment variable), and that saving turns unreadable lines into comments.
        self.problems = QFrame(self)
        self.problems.setObjectName("Banner")
        self.problems_text = label("", "BannerText", self.problems)
        problems_row = QHBoxLayout(self.problems)
        problems_row.setContentsMargins(10, 6, 10, 6)
        problems_row.addWidget(self.problems_text, 1)
        self.problems.hide()

        self.form = SettingsForm(editor, self)
        self._add_connection_test()

        self.banner = QFrame(self)
        self.banner.setObjectName("Banner")
        self.banner_text = label("", "BannerText", self.banner)
        self.restart_button = QPushButton("Restart workers now", self.banner)
        self.restart_button.clicked.connect(self._restart_workers)
        banner_row = QHBoxLayout(self.banner)
        banner_row.setContentsMargins(10, 6, 10, 6)
        banner_row.addWidget(self.banner_text, 1)
        banner_row.addWidget(self.restart_button)
        self.banner.hide()

        self.save_button = QPushButton("Save", self)
        self.save_button.setDefault(True)
        self.close_button = QPushButton("Close", self)
        self.save_button.clicked.connect(self.save)
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.active_note, 1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.close_button)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.problems)
        layout.addWidget(self.form, 1)
        layout.addWidget(self.banner)
        layout.addLayout(buttons)

        self.environment.currentIndexChanged.connect(self._environment_changed)
        self.form.edited.connect(self._update)
        self.resize(940, 640)
        self._saved: SaveOutcome | None = None
        self._show_problems()
        self._update()

    def _add_connection_test(self) -> None:
        page = self.form.page_layout(BROKER_KEY)
        self.test_button = QPushButton("Test connection", self)
        self.test_button.setToolTip(
            "Send a PING to the broker and the result backend the app uses: as typed, or "
            "PixCrawler's own Redis when the app runs on it"
        )
        self.test_result = label("", "TestResult", self)
        self.test_result.setTextFormat(self.test_result.textFormat().RichText)
        row = QHBoxLayout()
        row.addWidget(self.test_button)
        row.addWidget(self.test_result, 1)
        page.insertLayout(page.count() - 1, row)
        self.test_button.clicked.connect(self.test_connection)

    # -- actions -------------------------------------------------------------------------------

    def test_connection(self) -> None:
        self.test_button.setEnabled(False)
        self.test_button.setText("Testing…")
        self.test_result.setText("Connecting…")
        self._tasks.spawn(self._test())

    async def _test(self) -> None:
        urls: list[tuple[Role, str]] = [
            ("broker", str(self.editor.value(BROKER_KEY))),
            ("backend", str(self.editor.value(BACKEND_KEY))),
        ]
        try:
            results = await asyncio.gather(*(self._actions.test_connection(r, u) for r, u in urls))
        finally:
            self.test_button.setEnabled(True)
            self.test_button.setText("Test connection")
        self.test_result.setText("<br>".join(_describe(check) for check in results))

    def save(self) -> None:
        if not self.editor.can_save():
            return
        try:
            outcome = self.editor.save()
        except (SettingsError, OSError) as exc:
            QMessageBox.warning(self, "Settings not saved", str(exc))
            return
        self._saved = outcome
        self.form.reload()
        self._show_problems()
        self._update()
        self._actions.settings_saved(outcome)
        self.saved.emit()

    def _restart_workers(self) -> None:
        count = self._actions.restart_running_workers()
        self._saved = None
        self.banner_text.setText(f"Restarting {count} worker(s) with the new settings.")
        self.restart_button.hide()

    def _environment_changed(self) -> None:
        env: Environment = self.environment.currentData()
        if env == self.editor.env:
            return
        if self.editor.dirty():
            answer = QMessageBox.question(
                self,
                "Discard changes?",
                f"Your changes to the {self.editor.env} settings are not saved. Discard them?",
            )
            if answer != QMessageBox.StandardButton.Yes:
                self.environment.setCurrentIndex(self.environment.findData(self.editor.env))
                return
        self.editor.load(env)
        self._saved = None
        self.form.reload()
        self._show_problems()
        self._update()

    # -- display -------------------------------------------------------------------------------

    def _show_problems(self) -> None:
        """Open on the first field marked, and say what no field can show."""
        first = self.form.first_marked()
        if first is not None:
            self.form.show_page_of(first)
        lines = [problem.describe() for problem in self.editor.notes()]
        if self.editor.repairs():
            lines.append(
                "Saving keeps the lines PixCrawler cannot read as comments, so the file loads "
                "cleanly; correct any marked field first."
            )
        self.problems_text.setText("\n".join(lines))
        self.problems.setVisible(bool(lines))

    def _update(self) -> None:
        self.save_button.setEnabled(self.editor.can_save())
        self.file_label.setText(f"Settings file: {self.editor.file_for()}")
        active = active_environment()[0]
        if self.editor.env != active:
            self.active_note.setText(
                f"PixCrawler runs with the “{active}” settings now; these apply when it starts "
                f"with PIXCRAWLER_ENV={self.editor.env}."
            )
        elif self.editor.errors():
            count = len(set(self.editor.errors().values()))
            self.active_note.setText(f"Fix {count} problem{'s' if count > 1 else ''} to save.")
        else:
            self.active_note.setText("")
        self._update_banner()

    def _update_banner(self) -> None:
        pending = self.editor.pending_restarts()
        running = self._actions.running_workers()
        if self.editor.dirty():
            titles = [f.info.title for f in pending.get("worker", [])]
            if titles and running:
                self._banner(
                    "Workers must restart to use: " + _join(titles) + ". "
                    "You can restart them after saving.",
                    restart=False,
                )
            else:
                self.banner.hide()
            return
        saved = self._saved
        if saved is None or not (saved.changed or saved.files):
            self.banner.hide()
            return
        needs_worker = saved.needing("worker")
        if needs_worker and running and self.editor.env == active_environment()[0]:
            workers = (
                "1 running worker still uses"
                if running == 1
                else (f"{running} running workers still use")
            )
            self._banner(
                f"Saved. {workers} the old values of "
                f"{_join([f.info.title for f in needs_worker])}.",
                restart=True,
            )
        else:
            self._banner(f"Saved to {', '.join(str(p) for p in saved.files)}.", restart=False)

    def _banner(self, text: str, restart: bool) -> None:
        self.banner_text.setText(text)
        self.restart_button.setVisible(restart)
        self.banner.show()

    def done(self, result: int) -> None:
        self._tasks.cancel()
        super().done(result)


def _describe(check: ConnectionCheck) -> str:
    name = "Broker" if check.role == "broker" else "Result backend"
    used = f" — {_escape(check.used)}" if check.used else ""
    if check.ok:
        where = _escape(check.used) if check.used else _escape(check.url)
        return (
            f"<span style='color:{GREEN}'>●</span> {name}: answered in "
            f"{check.seconds * 1000:.0f} ms ({where})"
        )
    return f"<span style='color:{RED}'>●</span> {name}: {_escape(check.reason or 'failed')}{used}"


def _join(items: list[str]) -> str:
    return ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
