"""The application icon: drawn from the SVG, with the PNG as a fallback."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QIcon, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

from pixcrawler_gui.desktop.resources import resource_path

SVG_NAME = "pixcrawler.svg"
PNG_NAME = "pixcrawler.png"


def app_icon() -> QIcon:
    for name in (SVG_NAME, PNG_NAME):
        path = resource_path(name)
        if path is not None:
            icon = QIcon(str(path))
            if not icon.isNull():
                return icon
    return QIcon()


def render_png(svg: Path, png: Path, size: int = 256) -> None:
    """Render the SVG icon to a PNG (for desktop entries and platforms without SVG icons)."""
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not a valid SVG file")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    if not image.save(str(png)):
        raise OSError(f"could not write {png}")
