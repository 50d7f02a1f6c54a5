"""One input widget per kind of setting, reading and writing typed values.

Each binding reports through `changed(value)` or `invalid(message)` as the user types, so
errors appear at once, before anything is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from celery_core.settings.redis_urls import mask_url, url_has_password
from pixcrawler_gui.presentation.readable_text import readable_amount
from pixcrawler_gui.services.settings_editor import EditorField, placeholder
from pixcrawler_gui.views.style import MUTED_TEXT

INT32_MAX = 2**31 - 1
Changed = Callable[[Any], None]
Invalid = Callable[[str], None]


class Binding:
    """A widget for one field; `widget` goes into the form."""

    widget: QWidget
    unit_hint: QLabel | None = None  # the amount in words, for a number with a unit

    def __init__(self, field: EditorField, changed: Changed, invalid: Invalid) -> None:
        self.field = field
        self._changed = changed
        self._invalid = invalid
        self._loading = False

    def load(self, value: Any) -> None:
        self._loading = True
        try:
            self._show(value)
        finally:
            self._loading = False

    def _show(self, value: Any) -> None:
        raise NotImplementedError

    def load_text(self, text: str) -> None:
        """Show `text` as if typed, without reporting it: a file's text that is not a value.
        A check box or a list of choices cannot hold such text and keeps its value."""
        self._loading = True
        try:
            self._show_text(text)
        finally:
            self._loading = False

    def _show_text(self, text: str) -> None:
        pass

    def _emit(self, value: Any) -> None:
        if not self._loading:
            self._changed(value)

    def _fail(self, message: str) -> None:
        if not self._loading:
            self._invalid(message)

    def set_enabled(self, enabled: bool) -> None:
        self.widget.setEnabled(enabled)


class _TextSpin(QSpinBox):
    """A spin box that can show a settings file's text that is not a number (Qt rewrites the
    text from the value whenever the box is shown), until the user types over it."""

    raw: str | None = None

    def textFromValue(self, value: int) -> str:
        return self.raw if self.raw is not None else super().textFromValue(value)


class _TextDoubleSpin(QDoubleSpinBox):
    raw: str | None = None

    def textFromValue(self, value: float) -> str:
        return self.raw if self.raw is not None else super().textFromValue(value)


class BoolBinding(Binding):
    def __init__(self, field: EditorField, changed: Changed, invalid: Invalid) -> None:
        super().__init__(field, changed, invalid)
        self.box = QCheckBox(field.info.title)
        self.widget = self.box
        self.box.toggled.connect(self._emit)
        self.box.checkStateChanged.connect(self._state_changed)

    def _show(self, value: Any) -> None:
        self.box.setTristate(False)
        self.box.setChecked(bool(value))

    def _show_text(self, text: str) -> None:
        # Neither on nor off: the file's text is neither; a click then says which.
        self.box.setTristate(True)
        self.box.setCheckState(Qt.CheckState.PartiallyChecked)

    def _state_changed(self, state: Qt.CheckState) -> None:
        if self.box.isTristate() and state != Qt.CheckState.PartiallyChecked:
            self.box.setTristate(False)
            self._emit(state == Qt.CheckState.Checked)


class IntBinding(Binding):
    def __init__(self, field: EditorField, changed: Changed, invalid: Invalid) -> None:
        super().__init__(field, changed, invalid)
        self.low = int(field.info.minimum if field.info.minimum is not None else 0)
        self.high = int(field.info.maximum if field.info.maximum is not None else INT32_MAX)
        self.spin = _TextSpin()
        self.spin.setRange(self.low, min(self.high, INT32_MAX))
        self.spin.setGroupSeparatorShown(self.high >= 100_000)
        self.spin.setMinimumWidth(140)
        self.widget = self.spin
        self.spin.lineEdit().textChanged.connect(self._typed)

    def _typed(self, text: str) -> None:
        if text == self.spin.raw:
            return
        self.spin.raw = None
        digits = text.replace(self.spin.locale().groupSeparator(), "").strip()
        try:
            value = int(digits)
        except ValueError:
            self._fail(f"Enter a whole number between {self.low:,} and {self.high:,}")
            return
        if not self.low <= value <= self.high:
            self._fail(f"Enter a number between {self.low:,} and {self.high:,}")
            return
        self._emit(value)

    def _show(self, value: Any) -> None:
        self.spin.raw = None
        self.spin.setValue(int(value))
        self.spin.lineEdit().setText(self.spin.textFromValue(self.spin.value()))

    def _show_text(self, text: str) -> None:
        self.spin.raw = text
        self.spin.lineEdit().setText(text)


class FloatBinding(Binding):
    def __init__(self, field: EditorField, changed: Changed, invalid: Invalid) -> None:
        super().__init__(field, changed, invalid)
        low = float(field.info.minimum if field.info.minimum is not None else 0.0)
        high = float(field.info.maximum if field.info.maximum is not None else 1e9)
        self.spin = _TextDoubleSpin()
        self.spin.setDecimals(2)
        self.spin.setRange(low, high)
        self.spin.setSingleStep(0.5)
        self.spin.setMinimumWidth(140)
        self.widget = self.spin
        self.spin.valueChanged.connect(self._value_changed)

    def _value_changed(self, value: float) -> None:
        self.spin.raw = None
        self._emit(value)

    def _show(self, value: Any) -> None:
        self.spin.raw = None
        self.spin.setValue(float(value))
        self.spin.lineEdit().setText(self.spin.textFromValue(self.spin.value()))

    def _show_text(self, text: str) -> None:
        self.spin.raw = text
        self.spin.lineEdit().setText(text)


class ChoiceBinding(Binding):
    def __init__(self, field: EditorField, changed: Changed, invalid: Invalid) -> None:
        super().__init__(field, changed, invalid)
        self.combo = QComboBox()
        for choice in field.info.choices or ():
            self.combo.addItem(str(choice), choice)
        self.widget = self.combo
        self.combo.currentIndexChanged.connect(lambda _: self._emit(self.combo.currentData()))

    def _show(self, value: Any) -> None:
        self.combo.setCurrentIndex(max(self.combo.findData(value), 0))

    def _show_text(self, text: str) -> None:
        self.combo.setCurrentIndex(-1)  # none of the choices: picking any one says which


class TextBinding(Binding):
    def __init__(self, field: EditorField, changed: Changed, invalid: Invalid) -> None:
        super().__init__(field, changed, invalid)
        self.edit = QLineEdit()
        self.edit.setMinimumWidth(320)
        self.edit.setPlaceholderText(placeholder(field))
        self.widget = self.edit
        self.edit.textChanged.connect(self._typed)

    def _typed(self, text: str) -> None:
        text = text.strip()
        self._emit(None if self.field.optional and not text else text)

    def _show(self, value: Any) -> None:
        self.edit.setText("" if value is None else str(value))
        self.edit.setCursorPosition(0)  # a long value shows its start, not its end

    def _show_text(self, text: str) -> None:
        self.edit.setText(text)


class SecretBinding(TextBinding):
    """A URL that may hold a password: masked while it does, unless the user asks to see it.

    While masked, the URL is shown below with only the password replaced, so the user still
    sees which server it points to.
    """

    def __init__(self, field: EditorField, changed: Changed, invalid: Invalid) -> None:
        super().__init__(field, changed, invalid)
        self.reveal = QToolButton()
        self.reveal.setText("Show")
        self.reveal.setCheckable(True)
        self.reveal.setToolTip("Show or hide the password in this URL")
        self.reveal.toggled.connect(self._mask)
        self.preview = QLabel()
        self.preview.setObjectName("Description")
        self.edit.textChanged.connect(self._mask)
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        row = QHBoxLayout()
        row.addWidget(self.edit, 1)
        row.addWidget(self.reveal)
        column.addLayout(row)
        column.addWidget(self.preview)
        self.widget = box
        self._mask()

    def _mask(self) -> None:
        text = self.edit.text()
        secret = url_has_password(text)
        masked = secret and not self.reveal.isChecked()
        mode = QLineEdit.EchoMode.Password if masked else QLineEdit.EchoMode.Normal
        if self.edit.echoMode() != mode:
            self.edit.setEchoMode(mode)
        self.reveal.setText("Hide" if self.reveal.isChecked() else "Show")
        self.reveal.setEnabled(secret and self.edit.isEnabled())
        self.preview.setText(f"Connects to {mask_url(text)}" if masked else "")
        self.preview.setVisible(masked)

    def set_enabled(self, enabled: bool) -> None:
        self.edit.setEnabled(enabled)
        self._mask()


class ListBinding(TextBinding):
    """A list of words, typed comma-separated."""

    def _typed(self, text: str) -> None:
        self._emit([part.strip() for part in text.split(",") if part.strip()])

    def _show(self, value: Any) -> None:
        self.edit.setText(", ".join(str(v) for v in value or ()))


BINDINGS: dict[str, type[Binding]] = {
    "bool": BoolBinding,
    "int": IntBinding,
    "float": FloatBinding,
    "choice": ChoiceBinding,
    "secret": SecretBinding,
    "text": TextBinding,
    "list": ListBinding,
}


def make_binding(field: EditorField, changed: Changed, invalid: Invalid) -> Binding:
    kind = field.kind
    if kind == "int" and (field.info.maximum or 0) > INT32_MAX:
        kind = "text"  # beyond what a spin box holds; validated by the settings class
    binding = BINDINGS[kind](field, changed, invalid)
    spin = getattr(binding, "spin", None)
    if field.info.unit and isinstance(spin, (QSpinBox, QDoubleSpinBox)):
        binding.unit_hint = _unit_hint(binding, spin, field.info.unit)
    return binding


def _unit_hint(binding: Binding, spin: QSpinBox | QDoubleSpinBox, unit: str) -> QLabel:
    """Beside a number in seconds or bytes, the same amount in words ("= 7 days", "= 20 MB");
    the number itself stays exact, so what is saved is what the file held."""
    hint = QLabel()
    hint.setObjectName("UnitHint")
    hint.setStyleSheet(f"color: {MUTED_TEXT};")
    hint.setMinimumWidth(150)

    def update(value: float) -> None:
        words = readable_amount(value, unit)
        hint.setText(f"= {words}" if words else "")

    spin.valueChanged.connect(update)
    update(spin.value())
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(binding.widget)
    row.addWidget(hint)
    row.addStretch(1)
    binding.widget = box
    return hint
