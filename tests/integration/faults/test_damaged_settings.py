"""A settings file that does not load never locks anyone out.

The app starts on a damaged file with the value's default, its window says which field of
which file, Settings opens on that field with the file's text marked, and correcting and
saving clears the banner and leaves a file that loads strictly. A worker starts too and says
so in one plain line; `pixcrawler settings show` shows the problem and exits 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox

from celery_core.settings.celery_settings import CelerySettings
from celery_core.settings.crawler_settings import CrawlerSettings
from celery_core.settings.file_settings import env_files
from pixcrawler_gui.services.runtime import AppServices
from pixcrawler_gui.services.settings_editor import settings_problems
from pixcrawler_gui.views.main_window import MainWindow
from pixcrawler_gui.views.settings.settings_dialog import SettingsDialog
from pixcrawler_gui.views.settings.settings_form import FieldRow
from tests.integration.gui.conftest import REPO, SCREENSHOTS, run, screenshot
from tests.support.redis_proc import RedisProcess
from tests.support.worker_proc import WorkerProcess

CLASSES = (CelerySettings, CrawlerSettings)
Correct = Callable[[FieldRow, Any], None]


def _type_number(text: str) -> Correct:
    def correct(row: FieldRow, qtbot: Any) -> None:
        edit = cast(QSpinBox, getattr(row.binding, "spin", row.binding.widget)).lineEdit()
        edit.setFocus()
        edit.selectAll()
        qtbot.keyClicks(edit, text)

    return correct


def _set_text(text: str) -> Correct:
    def correct(row: FieldRow, qtbot: Any) -> None:
        edit = row.binding.widget
        assert isinstance(edit, QLineEdit)
        edit.setText(text)  # as typed: the field reports every change

    return correct


def _click(row: FieldRow, qtbot: Any) -> None:
    qtbot.mouseClick(row.binding.widget, Qt.MouseButton.LeftButton)


def _choose(value: str) -> Correct:
    def correct(row: FieldRow, qtbot: Any) -> None:
        combo = cast(QComboBox, row.binding.widget)
        combo.setCurrentIndex(combo.findData(value))

    return correct


@dataclass(frozen=True)
class Damage:
    files: dict[str, bytes]  # file name in the config dir -> bytes
    key: str  # the field, as the settings screen names it
    file: str  # the file the banner names
    words: str  # in the banner: what is wrong
    unusable: bool  # the field cannot hold the file's text: a red error blocks saving
    shown: str  # what the field shows: the file's text
    correct: Correct
    written: str  # the line in .env.dev after saving
    value: object  # the field's value after saving, loaded strictly

    @property
    def owner(self) -> type[CelerySettings | CrawlerSettings]:
        return CelerySettings if self.key.startswith("CelerySettings.") else CrawlerSettings

    @property
    def field(self) -> str:
        return self.key.split(".", 1)[1]


DAMAGES = {
    "word-for-a-number": Damage(
        {".env.dev": b"# mine\nPIXCRAWLER_CELERY_TASK_TIME_LIMIT=abc\n"},
        "CelerySettings.task_time_limit",
        ".env.dev",
        "Hard time limit = “abc” is not a whole number",
        True,
        "abc",
        _type_number("2400"),
        "PIXCRAWLER_CELERY_TASK_TIME_LIMIT=2400",
        2400,
    ),
    "soft-limit-above-hard": Damage(
        {".env.dev": b"PIXCRAWLER_CELERY_TASK_SOFT_TIME_LIMIT=5000\n"},
        "CelerySettings.task_soft_time_limit",
        ".env.dev",
        "must be lower than “Hard time limit”",
        True,
        "5,000",  # a number the field can hold: the usual check says what is wrong
        _type_number("900"),
        "PIXCRAWLER_CELERY_TASK_SOFT_TIME_LIMIT=900",
        900,
    ),
    "unknown-choice": Damage(
        {".env.dev": b"PIXCRAWLER_CELERY_WORKER_POOL=gevent\n"},
        "CelerySettings.worker_pool",
        ".env.dev",
        "Worker pool = “gevent” is not one of",
        True,
        "",  # a list of choices cannot show "gevent": none is chosen, the error names it
        _choose("solo"),
        "PIXCRAWLER_CELERY_WORKER_POOL=solo",
        "solo",
    ),
    "neither-true-nor-false": Damage(
        {".env.dev": b"PIXCRAWLER_CRAWLER_RESPECT_ROBOTS=maybe\n"},
        "CrawlerSettings.respect_robots",
        ".env.dev",
        "Respect robots.txt = “maybe” is not true or false",
        True,
        "",  # a check box can be neither: half checked until clicked
        _click,
        "PIXCRAWLER_CRAWLER_RESPECT_ROBOTS=true",
        True,
    ),
    "line-not-key-value": Damage(
        {".env.dev": b"# mine\nPIXCRAWLER_CELERY_TASK_MAX_RETRIES 5\n"},
        "CelerySettings.task_max_retries",
        ".env.dev",
        "is not a setting (settings are written NAME=value)",
        False,
        "5",
        _type_number("6"),
        "PIXCRAWLER_CELERY_TASK_MAX_RETRIES=6",
        6,
    ),
    "file-not-utf8": Damage(
        {".env.dev": b"PIXCRAWLER_CRAWLER_USER_AGENT=M\xfcller Bot\n# caf\xe9\n"},
        "CrawlerSettings.user_agent",
        ".env.dev",
        "is not UTF-8 text",
        False,
        "Müller Bot",  # read as Windows-1252, the likeliest other encoding
        _set_text("Müller Bot!"),
        "PIXCRAWLER_CRAWLER_USER_AGENT='Müller Bot!'",
        "Müller Bot!",
    ),
    "lower-priority-file": Damage(
        {".env": b"PIXCRAWLER_CRAWLER_MAX_PER_HOST=lots\n"},
        "CrawlerSettings.max_per_host",
        ".env",
        "Downloads at once per site = “lots” is not a whole number",
        True,
        "lots",
        _type_number("4"),
        "PIXCRAWLER_CRAWLER_MAX_PER_HOST=4",
        4,
    ),
}
NETWORKS = Damage(
    {".env.dev": b"PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS=127.0.0.0/8,my-nas\n"},
    "CrawlerSettings.allowed_networks",
    ".env.dev",
    "Private networks allowed anyway = “127.0.0.0/8,my-nas” is refused: 'my-nas' is not a network",
    True,
    "127.0.0.0/8, my-nas",
    _set_text("127.0.0.0/8"),
    "",
    ["127.0.0.0/8"],
)


def _config(isolated_dirs: Path) -> Path:
    return isolated_dirs / "config"


def _write(isolated_dirs: Path, files: dict[str, bytes]) -> None:
    config = _config(isolated_dirs)
    config.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (config / name).write_bytes(data)


@pytest.fixture
def damage(request: pytest.FixtureRequest) -> Damage:
    return cast(Damage, request.param)


@pytest.fixture
def settings(
    damage: Damage,
    isolated_dirs: Path,
    celery_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> CelerySettings:
    """What `pixcrawler gui` starts with: the damaged files, read leniently, and the test's
    Redis (as environment variables, so the settings screen's reload finds it too)."""
    for key, value in celery_env.items():
        monkeypatch.setenv(key, value)
    _write(isolated_dirs, damage.files)
    return CelerySettings.load_lenient().settings


def _open_from_banner(window: MainWindow, qtbot: Any) -> SettingsDialog:
    qtbot.mouseClick(window.settings_banner.button, Qt.MouseButton.LeftButton)
    dialog = window.settings_dialog
    assert dialog is not None
    qtbot.waitExposed(dialog)
    return dialog


def _check_marked(dialog: SettingsDialog, damage: Damage) -> FieldRow:
    row = dialog.form.rows[damage.key]
    assert row.container.isVisible()  # the dialog opened on the page of the marked field
    assert row.problem.isVisible() and damage.file in row.problem.text()
    assert "until you correct it here and save" in row.problem.text()
    assert row.error.isVisible() is damage.unusable
    assert dialog.save_button.isEnabled() is not damage.unusable
    widget = getattr(row.binding, "spin", None) or row.binding.widget  # the input, not its row
    if isinstance(widget, QComboBox):
        assert widget.currentText() == damage.shown
    elif isinstance(widget, QCheckBox):
        assert widget.checkState() == Qt.CheckState.PartiallyChecked
    else:
        edit = widget.lineEdit() if isinstance(widget, QSpinBox) else widget
        assert isinstance(edit, QLineEdit) and edit.text() == damage.shown
    return row


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=list(DAMAGES), indirect=True)
def test_damaged_settings_open_marked_and_saving_corrects_them(
    damage: Damage,
    loop: Any,
    qtbot: Any,
    services: AppServices,
    window: MainWindow,
    isolated_dirs: Path,
) -> None:
    run(loop, qtbot, services.start())
    banner = window.settings_banner
    assert banner.isVisible()
    text = banner.text.text()
    assert str(_config(isolated_dirs) / damage.file) in text and damage.words in text
    assert "PixCrawler uses" in text
    if damage is DAMAGES["word-for-a-number"]:
        assert "PixCrawler uses the default (1800 s) until you correct it." in text
        screenshot(window, "50-settings-problem-banner")

    dialog = _open_from_banner(window, qtbot)
    row = _check_marked(dialog, damage)
    screenshot(dialog, f"51-settings-problem-marked-{damage.field}")

    damage.correct(row, qtbot)
    assert not row.error.isVisible() and not row.problem.isVisible()
    assert dialog.save_button.isEnabled()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)

    dev = env_files("dev")[1]
    assert damage.written in dev.read_text(encoding="utf-8").splitlines()
    assert getattr(damage.owner.load(), damage.field) == damage.value  # strictly, now
    for cls in CLASSES:
        cls.load()
    assert settings_problems(CLASSES) == []
    assert banner.isHidden()
    assert not dialog.problems.isVisible()
    if damage is DAMAGES["line-not-key-value"]:
        assert dev.read_text() == "# mine\nPIXCRAWLER_CELERY_TASK_MAX_RETRIES=6\n"


@pytest.mark.parametrize("damage", [NETWORKS], ids=["a-word-among-networks"], indirect=True)
def test_a_list_with_a_bad_item_is_marked_not_fatal(
    damage: Damage, loop: Any, qtbot: Any, services: AppServices, window: MainWindow
) -> None:
    # The crawler uses no private network meanwhile, and the user can open the screen again.
    # (A JSON list, as earlier versions saved, loads: tests/unit/test_settings_round_trip.py.)
    run(loop, qtbot, services.start())
    assert damage.words in window.settings_banner.text.text()
    dialog = _open_from_banner(window, qtbot)
    row = _check_marked(dialog, damage)
    assert "is not a network" in row.error.text()
    damage.correct(row, qtbot)
    assert not row.error.isVisible() and dialog.save_button.isEnabled()


@pytest.mark.parametrize("damage", [DAMAGES["word-for-a-number"]], ids=["mixed"], indirect=True)
def test_several_problems_are_listed_and_environment_ones_have_no_button(
    damage: Damage,
    loop: Any,
    qtbot: Any,
    window: MainWindow,
    isolated_dirs: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _write(
        isolated_dirs,
        {".env.dev": damage.files[".env.dev"] + b"some words\nPIXCRAWLER_CRAWLER_MAX_PIXELS=9\n"},
    )
    window.refresh_settings_problems()
    label = window.settings_banner.text
    text = label.text()
    assert text.startswith("3 things in the settings could not be read")
    assert text.count("•") == 3 and "Line 3 of" in text and "Most pixels per image" in text
    assert window.settings_banner.button.isVisible()
    # The layouts settle over a few turns of the event loop once the text grew.
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()))
    screenshot(window, "52-settings-problems-several")

    (_config(isolated_dirs) / ".env.dev").unlink()
    monkeypatch.setenv("PIXCRAWLER_ENV", "production")
    window.refresh_settings_problems()
    text = window.settings_banner.text.text()
    assert "PIXCRAWLER_ENV is “production”" in text and "uses the dev settings" in text
    assert window.settings_banner.button.isHidden()  # Settings cannot change a variable
    dialog = window.open_settings()  # and still opens, on the dev settings
    qtbot.waitExposed(dialog)
    assert dialog.editor.env == "dev" and "PIXCRAWLER_ENV" in dialog.problems_text.text()


def test_the_app_starts_on_a_damaged_file(isolated_dirs: Path, redis_proc: RedisProcess) -> None:
    """`pixcrawler gui` once refused to start here (a modal "cannot start" box)."""
    target = SCREENSHOTS / "53-app-started-on-damaged-settings.png"
    target.unlink(missing_ok=True)
    _write(
        isolated_dirs,
        {
            ".env.dev": b"PIXCRAWLER_CELERY_TASK_TIME_LIMIT=abc\n"
            b"PIXCRAWLER_CRAWLER_USER_AGENT=\xfc\n"
        },
    )
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PIXCRAWLER_CELERY_BROKER_URL": redis_proc.url(0),
        "PIXCRAWLER_CELERY_RESULT_BACKEND": redis_proc.url(1),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pixcrawler_gui", "gui", "--screenshot", str(target)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not QImage(str(target)).isNull()
    dev = _config(isolated_dirs) / ".env.dev"
    warning = [line for line in done.stderr.splitlines() if "TASK_TIME_LIMIT" in line]
    assert len(warning) == 1 and f"{dev}, line 1" in warning[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_worker_starts_on_a_damaged_file_and_says_so_once(
    isolated_dirs: Path, celery_env: dict[str, str]
) -> None:
    _write(
        isolated_dirs,
        {
            ".env.dev": b"PIXCRAWLER_CELERY_TASK_TIME_LIMIT=abc\n"
            b"PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS=127.0.0.0/8,my-nas\n"
        },
    )
    dev = _config(isolated_dirs) / ".env.dev"
    with WorkerProcess(celery_env, pool="solo") as worker:
        worker.wait_ready()
        assert worker.proc is not None and worker.proc.poll() is None
        log = worker.log().splitlines()
    for variable, line in [
        ("PIXCRAWLER_CELERY_TASK_TIME_LIMIT", 1),
        ("PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS", 2),
    ]:
        said = [text for text in log if variable in text]
        assert len(said) == 1, log
        assert said[0].startswith("pixcrawler worker: warning: settings: ")
        assert f"{dev}, line {line}" in said[0] and "using the default" in said[0]
    assert not any("Traceback" in text for text in log)


def _pixcrawler(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pixcrawler_gui", *args],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_settings_show_reports_the_problem_and_set_corrects_it(isolated_dirs: Path) -> None:
    _write(isolated_dirs, {".env.dev": b"PIXCRAWLER_CELERY_TASK_TIME_LIMIT=abc\n"})
    dev = _config(isolated_dirs) / ".env.dev"
    shown = _pixcrawler("settings", "show")
    assert shown.returncode == 1
    assert "PIXCRAWLER_CELERY_TASK_TIME_LIMIT             1800" in shown.stdout  # in effect
    [problem] = shown.stderr.splitlines()
    assert problem.startswith("pixcrawler: settings problem: ") and f"{dev}, line 1" in problem

    fixed = _pixcrawler("settings", "set", "task_time_limit", "2400")
    assert fixed.returncode == 0 and fixed.stderr == "", fixed.stderr
    assert dev.read_text() == "PIXCRAWLER_CELERY_TASK_TIME_LIMIT=2400\n"
    again = _pixcrawler("settings", "show")
    assert again.returncode == 0 and again.stderr == ""


def test_one_shot_commands_refuse_a_damaged_file_in_one_line(isolated_dirs: Path) -> None:
    """`doctor` (like `crawl` and `self-test`) runs for a person at a terminal: it stops and
    says where, rather than checking or crawling with settings nobody chose."""
    _write(isolated_dirs, {".env.dev": b"# mine\nPIXCRAWLER_CRAWLER_USER_AGENT=M\xfcller\n"})
    out = _pixcrawler("doctor")
    assert out.returncode == 1
    [line] = out.stderr.splitlines()
    dev = _config(isolated_dirs) / ".env.dev"
    assert line.startswith("pixcrawler: invalid settings: ") and f"{dev}, line 2" in line
    assert "is not UTF-8 text" in line
