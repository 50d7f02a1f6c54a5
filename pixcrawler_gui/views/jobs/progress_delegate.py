"""Draws a progress bar in a table cell from the model's PROGRESS_ROLE (value, maximum,
colour, text)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from pixcrawler_gui.models.jobs_model import PROGRESS_ROLE

ROW_HEIGHT = 26


class ProgressDelegate(QStyledItemDelegate):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.painted = 0  # cells drawn (the latency benchmark watches this)

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(max(size.width(), 120), max(size.height(), ROW_HEIGHT))

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        value = index.data(PROGRESS_ROLE)
        if not value:
            super().paint(painter, option, index)
            return
        done, total, color, text = value
        self.painted += 1
        widget: QWidget | None = option.widget  # None outside a widget view, despite the stubs
        style = widget.style() if widget is not None else None
        if style is not None:  # the selection background, as other cells have it
            style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter)
        rect: QRect = option.rect.adjusted(4, 3, -4, -3)
        fraction = min(1.0, done / total) if total > 0 else 0.0
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#e4e7ec"))
        painter.drawRoundedRect(rect, 3, 3)
        filled = QRect(rect)
        filled.setWidth(round(rect.width() * fraction))
        if fraction > 0:
            painter.setBrush(QColor(color))
            painter.drawRoundedRect(filled.adjusted(0, 0, max(0, 6 - filled.width()), 0), 3, 3)
        # The text is dark over the empty part and white over the filled part.
        palette: QPalette = option.palette
        painter.setClipRect(rect.adjusted(filled.width(), 0, 0, 0))
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.setClipRect(filled)
        painter.setPen(QColor("white"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()
