"""Entry point of the packaged executable: one program, every role (see `pixcrawler --help`).

Order matters: a process-pool helper must be recognised before anything reads the command
line or imports Qt, and a console-less process needs somewhere to write before it logs.
"""

from __future__ import annotations

import sys

from pixcrawler_gui.frozen import attach_missing_streams, run_helper_if_requested

ROLES = ("gui", "worker", "crawl", "doctor", "redis", "settings", "self-test")


def _role(args: list[str]) -> str:
    first = args[0] if args else ""
    return first if first in ROLES else "gui"


def main() -> int:
    run_helper_if_requested()
    role = _role(sys.argv[1:])
    from pixcrawler_gui.desktop.error_dialogs import log_dir

    attach_missing_streams(log_dir(), role)
    from pixcrawler_gui.cli.main import main as cli_main

    try:
        return cli_main()
    except Exception as exc:
        if role != "gui":
            raise
        # The desktop app failed before it could report errors itself: say so in a dialog.
        from PySide6.QtWidgets import QApplication

        from pixcrawler_gui.desktop import error_dialogs

        if QApplication.instance() is None:
            QApplication([sys.argv[0]])
        reporter = error_dialogs.install()  # a dialog on a display; the terminal otherwise
        reporter.excepthook(type(exc), exc, exc.__traceback__)
        return 1


if __name__ == "__main__":
    sys.exit(main())
