"""Selecting whole rows in the item views of the Jobs and Workers pages."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex
from PySide6.QtWidgets import QAbstractItemView

_WHOLE_ROW = (
    QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
)


def select_row(view: QAbstractItemView, row: int) -> None:
    """Make `row` the current and only selected row (nothing happens for a negative row)."""
    if row >= 0:
        view.selectionModel().setCurrentIndex(view.model().index(row, 0), _WHOLE_ROW)


def selected_row(view: QAbstractItemView) -> QModelIndex | None:
    """The first selected row's index in column 0, or None."""
    rows = view.selectionModel().selectedRows()
    return rows[0] if rows else None
