"""Colours, small icons and text styles shared by the views."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget

from pixcrawler_gui.models.icons import dot_icon

__all__ = ["AMBER", "BLUE", "GREEN", "GREY", "RED", "STYLE_SHEET", "dot_icon", "label"]

GREEN = "#2e9d5b"
AMBER = "#d08a12"
RED = "#d03b3b"
GREY = "#8a8f98"
BLUE = "#2f6fd6"
MUTED_TEXT = "#5f6670"

STYLE_SHEET = f"""
QLabel#PageTitle {{ font-size: 18pt; font-weight: 600; }}
QLabel#PageSubtitle {{ color: {MUTED_TEXT}; }}
QLabel#Description {{ color: {MUTED_TEXT}; font-size: 9pt; }}
QLabel#FieldError {{ color: {RED}; font-size: 9pt; }}
QLabel#EmptyTitle {{ font-size: 15pt; font-weight: 600; }}
QLabel#EmptyText {{ color: {MUTED_TEXT}; font-size: 11pt; }}
QLabel#Badge {{ color: {AMBER}; font-size: 9pt; }}
QFrame#Banner {{ background: #fff6e0; border: 1px solid #f0d9a0; border-radius: 4px; }}
QFrame#ErrorBanner {{ background: #fdecec; border: 1px solid #f3c0c0; border-radius: 4px; }}
QListWidget#Navigation {{ border: none; background: #f2f4f7; font-size: 11pt; padding-top: 8px; }}
QWidget#SidebarFooter {{ background: #f2f4f7; }}
QListWidget#Navigation::item {{ padding: 8px 12px; }}
QListWidget#Navigation::item:selected {{ background: #dde7f7; color: #1b3d7a; }}
QListWidget#SettingsNavigation::item {{ padding: 4px 6px; }}
QTableView {{ selection-background-color: #dde7f7; selection-color: #10223f; }}
QPlainTextEdit#LogView {{ font-family: monospace; font-size: 9pt; }}
"""


def label(text: str, name: str, parent: QWidget | None = None, wrap: bool = True) -> QLabel:
    widget = QLabel(text, parent)
    widget.setObjectName(name)
    widget.setWordWrap(wrap)
    return widget
