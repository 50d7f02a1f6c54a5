"""The pieces of the packaged app that run without building it: pool helper dispatch in a frozen
executable (simulated with a launcher script), console-less streams, error dialogs, the .deb."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from pixcrawler_gui.frozen import helper_call, parse_helper_command

REPO = Path(__file__).resolve().parents[2]


# --- helper command lines -------------------------------------------------------------------


def test_known_pool_helper_command_lines_are_recognised() -> None:
    call = helper_call(
        ["/opt/app", "-B", "-c", "from billiard.semaphore_tracker import main;main(7)"]
    )
    assert call is not None
    assert (call.module, call.function, call.args, call.kwargs) == (
        "billiard.semaphore_tracker", "main", (7,), {},
    )  # fmt: skip
    forkserver = (
        "from billiard.forkserver import main; main(3, 4, ['celery'], **{'sys_path': ['/x']})"
    )
    call = helper_call(["/opt/app", "-c", forkserver])
    assert call is not None and call.args == (3, 4, ["celery"])
    assert call.kwargs == {"sys_path": ["/x"]}
    tracker = "from multiprocessing.resource_tracker import main;main(5)"
    assert parse_helper_command(tracker) is not None


@pytest.mark.parametrize(
    "argv",
    [
        ["/opt/app", "gui"],
        ["/opt/app", "self-test"],
        ["/opt/app", "-c", "import os; os.system('echo hi')"],
        ["/opt/app", "-c", "from billiard.semaphore_tracker import main;main(7); print(1)"],
        ["/opt/app", "-c", "from billiard.semaphore_tracker import main;main(__import__('os'))"],
        ["/opt/app", "-c", "from os import system;system('x')"],
        ["/opt/app", "-c", "from billiard.semaphore_tracker import main as m;m(7)"],
        ["/opt/app", "crawl", "-c", "from billiard.semaphore_tracker import main;main(7)"],
        ["/opt/app", "-c"],
    ],
)
def test_anything_else_is_not_a_helper(argv: list[str]) -> None:
    assert helper_call(argv) is None


# --- a frozen executable, simulated ---------------------------------------------------------


@pytest.fixture
def fake_frozen(tmp_path: Path) -> Path:
    """A launcher that behaves like the packaged executable: `sys.frozen` set, the pool helper
    dispatch first, `sys.executable` pointing at the launcher itself."""
    launcher = tmp_path / "pixcrawler"
    entry = tmp_path / "entry.py"
    entry.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.frozen = True
            sys.executable = {str(launcher)!r}
            from pixcrawler_gui.frozen import run_helper_if_requested
            run_helper_if_requested()
            if sys.argv[1:] == ["spawn-probe"]:
                from celery_core.diagnostics.selftest_checks import spawn_round_trip
                print("child pid", spawn_round_trip(timeout=60))
            else:
                print("role", sys.argv[1:])
            """
        )
    )
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{entry}" "$@"\n')
    launcher.chmod(0o755)
    return launcher


@pytest.mark.skipif(sys.platform == "win32", reason="a shell launcher stands for the executable")
def test_frozen_executable_runs_spawn_mode_pool_processes(fake_frozen: Path) -> None:
    # billiard re-runs the executable as `--billiard-fork ...` for the child and with
    # `-c "from billiard.semaphore_tracker import main;main(N)"` for its helper.
    run = subprocess.run(
        [str(fake_frozen), "spawn-probe"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("child pid "), run.stdout
    assert "role" not in run.stdout
    assert run.stderr == ""


@pytest.mark.skipif(sys.platform == "win32", reason="a shell launcher stands for the executable")
def test_frozen_executable_runs_the_semaphore_tracker_and_exits(fake_frozen: Path) -> None:
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(
            [
                str(fake_frozen),
                "-c",
                f"from billiard.semaphore_tracker import main;main({read_end})",
            ],
            pass_fds=(read_end,),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(read_end)
    os.close(write_end)  # the tracker stops when the last user closes its pipe
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == "" and err == ""


@pytest.mark.skipif(sys.platform == "win32", reason="a shell launcher stands for the executable")
def test_frozen_executable_runs_roles_and_refuses_other_code(fake_frozen: Path) -> None:
    run = subprocess.run(
        [str(fake_frozen), "-c", "print('injected')"], capture_output=True, text=True, timeout=60
    )
    assert run.stdout.strip() == "role ['-c', \"print('injected')\"]"
    run = subprocess.run([str(fake_frozen), "gui"], capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "role ['gui']"


def test_a_process_without_console_streams_writes_to_a_log_file(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        sys.stdout = None
        sys.stderr = None
        from pixcrawler_gui.frozen import attach_missing_streams
        path = attach_missing_streams(Path({str(tmp_path / "logs")!r}), "worker")
        print("to stdout")
        print("to stderr", file=sys.stderr)
        assert attach_missing_streams(Path("/nonexistent"), "again") is None
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and run.stderr == ""
    text = (tmp_path / "logs" / "worker.log").read_text()
    assert "to stdout" in text and "to stderr" in text


# --- error dialogs --------------------------------------------------------------------------


@pytest.fixture
def file_log(tmp_path: Path):
    from pixcrawler_gui.desktop.error_dialogs import configure_file_logging

    path = tmp_path / "logs" / "pixcrawler.log"
    handler = configure_file_logging(path)
    yield path
    logging.getLogger().removeHandler(handler)
    handler.close()


def test_an_uncaught_error_is_logged_and_shown_without_a_traceback(qtbot, file_log: Path) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from pixcrawler_gui.desktop.error_dialogs import ErrorReporter

    reporter = ErrorReporter(file_log, dialogs=True)
    seen: list[QMessageBox] = []

    def close_dialog() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box)
            assert box.objectName() == "pixcrawler-error-dialog"
            seen_text.append(box.text() + "\n" + box.informativeText())
            seen_buttons.extend(b.text() for b in box.buttons())
            box.reject()
        else:
            QTimer.singleShot(20, close_dialog)

    seen_text: list[str] = []
    seen_buttons: list[str] = []
    try:
        raise ValueError("the redis://:hunter2@example.com:6379/0 broker went away")
    except ValueError as exc:
        error = exc
    QTimer.singleShot(0, close_dialog)
    reporter.excepthook(ValueError, error, error.__traceback__)
    assert len(seen) == 1
    shown = seen_text[0]
    assert str(file_log) in shown
    assert "Traceback" not in shown and 'File "' not in shown
    assert "hunter2" not in shown and "ValueError" in shown
    assert "Open Log Folder" in seen_buttons
    logged = file_log.read_text()
    assert "Traceback" in logged and "test_packaging.py" in logged
    assert "hunter2" not in logged

    # The same error again at once is logged but not shown a second time.
    QTimer.singleShot(0, close_dialog)
    reporter.excepthook(ValueError, error, error.__traceback__)
    qtbot.wait(100)
    assert len(seen) == 1
    assert logged.count("Uncaught exception") < file_log.read_text().count("Uncaught exception")


def test_messages_say_what_to_do() -> None:
    from pixcrawler_gui.desktop.error_dialogs import user_message

    denied = PermissionError(13, "Permission denied", "/data/set")
    assert "/data/set" in user_message(denied) and "permissions" in user_message(denied)
    assert "disk is full" in user_message(OSError(28, "No space left on device"))
    assert user_message(KeyError("x")).startswith("Something unexpected went wrong (KeyError")


def test_log_folder_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pixcrawler_gui.desktop.error_dialogs import log_file

    monkeypatch.setenv("PIXCRAWLER_LOG_DIR", str(tmp_path / "logs"))
    assert log_file() == tmp_path / "logs" / "pixcrawler.log"


# --- the Debian package ---------------------------------------------------------------------


def load_packaging_module(name: str) -> ModuleType:
    """A module of packaging/ (scripts, not a package), imported the way importlib documents."""
    qualified = f"pixcrawler_packaging_{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, REPO / "packaging" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_deb_installs_to_opt_with_launchers_desktop_entry_and_icons(tmp_path: Path) -> None:
    deb_package = load_packaging_module("deb_package")
    bundle = tmp_path / "bundle"
    (bundle / "_internal" / "redis").mkdir(parents=True)
    (bundle / "pixcrawler").write_text("#!/bin/sh\n")
    (bundle / "pixcrawler").chmod(0o700)
    (bundle / "_internal" / "redis" / "valkey-server").write_text("#!/bin/sh\n")
    (bundle / "_internal" / "redis" / "valkey-server").chmod(0o700)
    (bundle / "_internal" / "data.txt").write_text("x")
    info = deb_package.DebInfo("1.2.3", "amd64")
    root = deb_package.stage_tree(bundle, REPO / "resources", tmp_path / "root", info)
    deb = deb_package.build_deb(root, tmp_path / "out", info)
    assert deb.name == "pixcrawler_1.2.3_amd64.deb"

    fields = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True).stdout
    assert "Package: pixcrawler\n" in fields and "Version: 1.2.3\n" in fields
    assert "libxcb-cursor0" in fields and "Installed-Size: " in fields
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True).stdout
    entries = {line.split()[-1] if "->" not in line else line.split()[-3]: line
               for line in listing.splitlines()}  # fmt: skip
    assert "-> /opt/pixcrawler/pixcrawler" in entries["./usr/bin/pixcrawler"]
    for path in ("./opt/pixcrawler/pixcrawler", "./opt/pixcrawler/_internal/redis/valkey-server",
                 "./usr/bin/pixcrawler-gui"):  # fmt: skip
        assert entries[path].startswith("-rwxr-xr-x root/root"), entries[path]
    assert entries["./opt/pixcrawler/_internal/data.txt"].startswith("-rw-r--r-- root/root")
    for path in ("./usr/share/applications/pixcrawler.desktop",
                 "./usr/share/icons/hicolor/scalable/apps/pixcrawler.svg",
                 "./usr/share/icons/hicolor/256x256/apps/pixcrawler.png",
                 "./usr/share/doc/pixcrawler/copyright"):  # fmt: skip
        assert path in entries, path
    desktop = (root / "usr/share/applications/pixcrawler.desktop").read_text()
    exec_line = next(line for line in desktop.splitlines() if line.startswith("Exec="))
    assert exec_line.split("=", 1)[1].split()[0] == "pixcrawler-gui"
    assert "/opt/pixcrawler/pixcrawler gui" in (root / "usr/bin/pixcrawler-gui").read_text()


def test_no_dialog_where_nobody_can_see_it(qapp) -> None:
    from pixcrawler_gui.desktop.error_dialogs import has_display

    # Tests run on Qt's offscreen platform: a modal dialog there would block forever.
    assert qapp.platformName() == "offscreen"
    assert has_display() is False
