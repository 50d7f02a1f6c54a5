"""The main window's banner for settings that could not be used: which, where, and a way in.

A value in a settings file that does not load never stops PixCrawler (it uses the default or
a lower-priority file's value); this banner says so in plain words, naming the field and the
file, with a button that opens Settings on the marked field.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from celery_core.settings.lenient import SettingsProblem
from pixcrawler_gui.views.style import label

SHOWN = 3  # problems told in full; Settings… marks every one


class SettingsProblemsBanner(QWidget):
    """Takes no room while hidden, so the pages below look as they always do."""

    open_settings = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.frame = QFrame(self)
        self.frame.setObjectName("Banner")
        self.text = label("", "BannerText", self.frame)
        self.button = QPushButton("Open Settings…", self.frame)
        self.button.setToolTip("Opens Settings on the field to correct")
        self.button.clicked.connect(self.open_settings)
        row = QHBoxLayout(self.frame)
        row.setContentsMargins(10, 6, 10, 6)
        row.addWidget(self.text, 1)
        row.addWidget(self.button)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12, 10, 12, 0)
        outer.addWidget(self.frame)
        self.hide()

    def show_problems(self, problems: Sequence[SettingsProblem]) -> None:
        if not problems:
            self.hide()
            return
        if len(problems) == 1:
            self.text.setText(problems[0].describe())
        else:
            lines = [
                f"{len(problems)} things in the settings could not be read. PixCrawler runs "
                "with safe values for them until you correct them:"
            ]
            lines += [f"•  {problem.summary()}" for problem in problems[:SHOWN]]
            if len(problems) > SHOWN:
                lines.append(f"•  and {len(problems) - SHOWN} more, all marked in Settings.")
            self.text.setText("\n".join(lines))
        # Settings corrects what is in a file; a real environment variable is changed where
        # it is set.
        self.button.setVisible(any(problem.path is not None for problem in problems))
        self.show()
