"""The main window: navigation on the left, a page per area, the connection status below."""

from __future__ import annotations

import asyncio
from typing import Protocol

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QWindow,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from celery_core.settings.file_settings import FileSettings
from pixcrawler_gui.desktop import error_dialogs
from pixcrawler_gui.desktop.icon import app_icon
from pixcrawler_gui.services.events import EventHub
from pixcrawler_gui.services.settings_editor import SettingsEditor, settings_problems
from pixcrawler_gui.services.workers.supervisor import Supervisor
from pixcrawler_gui.views.close_dialog import CloseChoice, ask_close
from pixcrawler_gui.views.crawl_form.form_parts import dropped_file
from pixcrawler_gui.views.job_pages import JobPages, JobsBackend
from pixcrawler_gui.views.jobs.notifications import (
    Notifier,
    TrayNotifier,
    WorkerCrashNotifications,
)
from pixcrawler_gui.views.settings.problems_banner import SettingsProblemsBanner
from pixcrawler_gui.views.settings.settings_dialog import SettingsActions, SettingsDialog
from pixcrawler_gui.views.status_bar import StatusBar
from pixcrawler_gui.views.style import STYLE_SHEET
from pixcrawler_gui.views.workers.workers_panel import WorkersPanel

GEOMETRY_KEY = "main_window/geometry"
STATE_KEY = "main_window/state"


class WindowBackend(SettingsActions, Protocol):
    """What the window needs from the running app (a fake one in view tests)."""

    @property
    def hub(self) -> EventHub: ...

    @property
    def supervisor(self) -> Supervisor: ...

    def worker_defaults(self) -> tuple[str, int]: ...

    def expects_local_workers(self) -> bool:
        """Whether the app is about to start a worker of this computer."""
        ...

    def settings_classes(self) -> list[type[FileSettings]]: ...


class MainWindow(QMainWindow):
    close_requested = Signal(bool)  # keep the workers running in the background?

    def __init__(
        self,
        backend: WindowBackend,
        ui_state: QSettings,
        jobs: JobsBackend | None = None,
        parent: QWidget | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("PixCrawler")
        self.setStyleSheet(STYLE_SHEET)
        self.backend = backend
        self.ui_state = ui_state
        self._close_approved = False
        self._remember_geometry = True
        self._close_task: asyncio.Task[None] | None = None
        self._painted = asyncio.Event()
        self.settings_dialog: SettingsDialog | None = None
        self.page_keys: list[str] = []

        self.nav = QListWidget(self)
        self.nav.setObjectName("Navigation")
        self.nav.setFixedWidth(200)
        self.nav.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.pages = QStackedWidget(self)
        self.settings_button = QPushButton("Settings…", self)
        self.settings_button.clicked.connect(self.open_settings)
        side = QWidget(self)
        side.setObjectName("Sidebar")
        side_column = QVBoxLayout(side)
        side_column.setContentsMargins(0, 0, 0, 0)
        side_column.setSpacing(0)
        side_column.addWidget(self.nav, 1)
        footer = QWidget(side)
        footer.setObjectName("SidebarFooter")
        footer_row = QVBoxLayout(footer)
        footer_row.setContentsMargins(12, 8, 12, 12)
        footer_row.addWidget(self.settings_button)
        side_column.addWidget(footer)
        central = QWidget(self)
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        row.addWidget(side)
        # Settings that could not be used, above every page (see refresh_settings_problems).
        self.settings_banner = SettingsProblemsBanner(central)
        self.settings_banner.open_settings.connect(self.open_settings)
        main_column = QVBoxLayout()
        main_column.setContentsMargins(0, 0, 0, 0)
        main_column.setSpacing(0)
        main_column.addWidget(self.settings_banner)
        main_column.addWidget(self.pages, 1)
        row.addLayout(main_column, 1)
        self.setCentralWidget(central)
        self.refresh_settings_problems()

        self.workers_panel = WorkersPanel(
            backend.supervisor,
            backend.hub,
            backend.worker_defaults,
            self,
            starting=backend.expects_local_workers(),
        )
        self.add_page("workers", "Workers", self.workers_panel)
        self.job_pages: JobPages | None = None
        if jobs is not None:
            self.job_pages = JobPages(jobs, self.show_page, self, notifier)
            self.add_page("crawl", "New crawl", self.job_pages.form)
            self.add_page("jobs", "Jobs", self.job_pages.jobs)
            self.add_page("gallery", "Gallery", self.job_pages.gallery)
            self.job_pages.jobs.start_worker.connect(self.workers_panel.start_local_worker)
            self.setAcceptDrops(True)
        # One notifier (one tray icon) for the whole window: the job pages' when they exist.
        self.notifier: Notifier = (
            self.job_pages.notifier
            if self.job_pages is not None
            else notifier or TrayNotifier(app_icon(), self)
        )
        self.crash_notifications = WorkerCrashNotifications(backend.hub, self.notifier, self)
        self.nav.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.nav.setCurrentRow(0)
        first_run = self.ui_state.value(GEOMETRY_KEY) is None

        self.status = StatusBar(backend.hub, self)
        self.setStatusBar(self.status)
        self._build_menu()
        self._restore_geometry()
        self.installEventFilter(self)
        if first_run and self.job_pages is not None:
            self.show_page("crawl")  # nothing crawled yet: start where a crawl is described

    # -- pages ---------------------------------------------------------------------------------

    def add_page(self, key: str, title: str, widget: QWidget, enabled: bool = True) -> None:
        """Add an area to the navigation (the crawl form, jobs and gallery come this way)."""
        if key in self.page_keys:
            index = self.page_keys.index(key)
            old = self.pages.widget(index)
            self.pages.insertWidget(index, widget)
            if old is not None:
                self.pages.removeWidget(old)
                old.deleteLater()
            item = self.nav.item(index)
        else:
            self.page_keys.append(key)
            self.pages.addWidget(widget)
            item = QListWidgetItem(title)
            self.nav.addItem(item)
        item.setText(title)
        item.setData(Qt.ItemDataRole.UserRole, key)
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        item.setFlags(flags if enabled else Qt.ItemFlag.NoItemFlags)
        item.setToolTip("" if enabled else "Coming in a later version")

    def show_page(self, key: str) -> None:
        self.nav.setCurrentRow(self.page_keys.index(key))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.job_pages is not None and dropped_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_file(event)
        if self.job_pages is not None and path is not None:
            event.acceptProposedAction()
            self.job_pages.import_file(path)

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        if self.job_pages is not None:
            import_action = QAction("&Import job file…", self)
            import_action.setShortcut(QKeySequence.StandardKey.Open)
            import_action.triggered.connect(self._import_job)
            file_menu.addAction(import_action)
            file_menu.addSeparator()
        settings = QAction("&Settings…", self)
        settings.setShortcut(QKeySequence.StandardKey.Preferences)
        settings.triggered.connect(self.open_settings)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(settings)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About PixCrawler", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    def _import_job(self) -> None:
        if self.job_pages is not None:
            self.show_page("crawl")
            self.job_pages.form.choose_import()

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About PixCrawler",
            "<b>PixCrawler Desktop</b><br>Turns keywords into clean, deduplicated, labelled "
            "image datasets, with workers on this computer or many."
            f"<p>Log file: {error_dialogs.log_file()}</p>",
        )

    def open_settings(self) -> SettingsDialog:
        if self.settings_dialog is not None:
            self.settings_dialog.raise_()
            return self.settings_dialog
        editor = SettingsEditor(self.backend.settings_classes())
        dialog = SettingsDialog(editor, self.backend, self)
        dialog.finished.connect(self._settings_closed)
        dialog.saved.connect(self.refresh_settings_problems)
        self.settings_dialog = dialog
        dialog.open()
        return dialog

    def _settings_closed(self) -> None:
        if self.settings_dialog is not None:
            self.settings_dialog.deleteLater()
        self.settings_dialog = None
        self.refresh_settings_problems()

    def refresh_settings_problems(self) -> None:
        """Show (or clear) the banner for settings in use that could not be read as written."""
        self.settings_banner.show_problems(settings_problems(self.backend.settings_classes()))

    # -- closing -------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._close_approved:
            if self._remember_geometry:
                self._save_geometry()
            event.accept()
            return
        event.ignore()
        self.request_close()

    def request_close(self, ask: bool = True) -> None:
        """Ask what to do with busy workers (if any), then emit `close_requested`."""
        if self._close_task is None or self._close_task.done():
            self._close_task = asyncio.ensure_future(self._confirm_close(ask))

    async def _confirm_close(self, ask: bool) -> None:
        keep = False
        if ask and await self.jobs_running():
            choice = await ask_close(self)
            if choice == CloseChoice.CANCEL:
                return
            keep = choice == CloseChoice.KEEP
        self.setEnabled(False)
        self.status.showMessage(
            "Leaving the workers running…" if keep else "Stopping workers and closing…"
        )
        self.close_requested.emit(keep)

    async def jobs_running(self) -> bool:
        """Whether closing would interrupt work; for now, whether a local worker is busy."""
        return await self.backend.supervisor.jobs_running()

    async def stop_pages(self) -> None:
        """End the pages' background work (thumbnail loads) before the services go."""
        if self.job_pages is not None:
            await self.job_pages.stop()

    def finish_close(self, remember_geometry: bool = True) -> None:
        """Close for real once the app has shut its services down."""
        self._close_approved = True
        self._remember_geometry = remember_geometry
        self.close()

    # -- geometry and first paint ----------------------------------------------------------------

    def _restore_geometry(self) -> None:
        geometry = self.ui_state.value(GEOMETRY_KEY)
        if isinstance(geometry, QByteArray) and self.restoreGeometry(geometry):
            state = self.ui_state.value(STATE_KEY)
            if isinstance(state, QByteArray):
                self.restoreState(state)
        else:
            screen = self.screen().availableGeometry()
            self.resize(min(1100, screen.width() * 9 // 10), min(720, screen.height() * 9 // 10))

    def _save_geometry(self) -> None:
        self.ui_state.setValue(GEOMETRY_KEY, self.saveGeometry())
        self.ui_state.setValue(STATE_KEY, self.saveState())
        self.ui_state.sync()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self and event.type() == QEvent.Type.Paint:
            self._painted.set()
        return super().eventFilter(watched, event)

    async def until_drawn(self, timeout: float = 10.0) -> None:
        """Return once the window has been shown and painted at least once."""
        async with asyncio.timeout(timeout):
            await self._painted.wait()
            handle: QWindow | None = self.windowHandle()  # None until shown, despite the stubs
            while handle is None or not handle.isExposed():
                await asyncio.sleep(0.02)
                handle = self.windowHandle()
