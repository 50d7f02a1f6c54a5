"""The settings screen's logic without widgets: values being edited, errors per field, saving.

Validation is the settings classes' own: each change runs `settings.updated(**values)` and
the SettingsError it raises is split back into messages per field, so the screen can never
disagree with what `load()` and `save()` accept.
"""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import ValidationError

from celery_core.settings.celery_settings import FieldInfo, field_info
from celery_core.settings.file_settings import (
    Environment,
    FileSettings,
    SettingsError,
    current_environment,
    env_files,
)

Kind = Literal["bool", "int", "float", "choice", "secret", "text", "list"]


@dataclass(frozen=True)
class EditorField:
    key: str  # "<ClassName>.<field>", unique over all classes
    owner: type[FileSettings]
    info: FieldInfo
    kind: Kind
    optional: bool  # an empty text means "not set" (None)
    overridden: bool  # a real environment variable sets it; the file's value is ignored


@dataclass(frozen=True)
class SaveOutcome:
    files: tuple[Path, ...]
    changed: tuple[EditorField, ...]

    def needing(self, restart: str) -> list[EditorField]:
        return [f for f in self.changed if f.info.restart == restart]


def _kind(info: FieldInfo) -> tuple[Kind, bool]:
    annotation = info.annotation
    optional = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else str
    if info.choices:
        return "choice", optional
    if annotation is bool:
        return "bool", optional
    if annotation is int:
        return "int", optional
    if annotation is float:
        return "float", optional
    if get_origin(annotation) is list:
        return "list", optional
    return ("secret" if info.secret else "text"), optional


def describe_fields(classes: Sequence[type[FileSettings]]) -> list[EditorField]:
    fields = []
    for owner in classes:
        for info in field_info(owner):
            kind, optional = _kind(info)
            fields.append(
                EditorField(
                    key=f"{owner.__name__}.{info.name}",
                    owner=owner,
                    info=info,
                    kind=kind,
                    optional=optional,
                    overridden=owner.overridden_by_environment(info.name),
                )
            )
    return fields


class SettingsEditor:
    def __init__(
        self,
        classes: Sequence[type[FileSettings]],
        env: Environment | None = None,
        directory: Path | None = None,
    ) -> None:
        self.classes = list(classes)
        self.directory = directory
        self.fields = describe_fields(self.classes)
        self._by_key = {f.key: f for f in self.fields}
        self.env: Environment = env or current_environment()
        self._loaded: dict[type[FileSettings], FileSettings] = {}
        self._values: dict[str, Any] = {}
        self._input_errors: dict[str, str] = {}
        self._errors: dict[str, str] = {}
        self.load(self.env)

    def load(self, env: Environment) -> None:
        """Read the settings of `env` (files and environment), discarding unsaved edits."""
        self.env = env
        self._loaded = {cls: cls.load(env, self.directory) for cls in self.classes}
        self._values = {f.key: getattr(self._loaded[f.owner], f.info.name) for f in self.fields}
        self._input_errors.clear()
        self._errors.clear()

    def field(self, key: str) -> EditorField:
        return self._by_key[key]

    def groups(self) -> list[tuple[type[FileSettings], str, list[EditorField]]]:
        """(settings class, group, fields), in declaration order."""
        found: dict[tuple[type[FileSettings], str], list[EditorField]] = {}
        for item in self.fields:
            found.setdefault((item.owner, item.info.group), []).append(item)
        return [(owner, group, items) for (owner, group), items in found.items()]

    def file_for(self, env: Environment | None = None) -> Path:
        return env_files(env or self.env, self.directory)[1]

    def value(self, key: str) -> Any:
        return self._values[key]

    def saved_value(self, key: str) -> Any:
        item = self._by_key[key]
        return getattr(self._loaded[item.owner], item.info.name)

    def set(self, key: str, value: Any) -> None:
        """A new value from the form (already of the field's type); revalidates everything."""
        self._input_errors.pop(key, None)
        self._values[key] = value
        self._validate()

    def set_input_error(self, key: str, message: str) -> None:
        """The text typed in a field cannot even be read as its type (e.g. not a number)."""
        self._input_errors[key] = message
        self._validate()

    def errors(self) -> dict[str, str]:
        return {**self._errors, **self._input_errors}

    def dirty(self) -> list[EditorField]:
        return [f for f in self.fields if self._values[f.key] != self.saved_value(f.key)]

    def can_save(self) -> bool:
        return not self.errors() and bool(self.dirty())

    def pending_restarts(self) -> dict[str, list[EditorField]]:
        """Unsaved changes grouped by what must restart for them to take effect."""
        found: dict[str, list[EditorField]] = {}
        for item in self.dirty():
            if item.info.restart != "none":
                found.setdefault(item.info.restart, []).append(item)
        return found

    def candidates(self) -> dict[type[FileSettings], FileSettings]:
        """Validated settings objects with the edits applied; raises SettingsError."""
        result = {}
        for owner in self.classes:
            changes = {f.info.name: self._values[f.key] for f in self.fields if f.owner is owner}
            result[owner] = self._loaded[owner].updated(**changes)
        return result

    def save(self) -> SaveOutcome:
        """Write the changed keys to `.env.<env>` (atomically); an invalid form writes nothing."""
        if self.errors():
            raise SettingsError("; ".join(self.errors().values()))
        changed = self.dirty()
        owners = {f.owner for f in changed}
        candidates = self.candidates()
        files = tuple(
            candidates[owner].save(self.env, self.directory)
            for owner in self.classes
            if owner in owners
        )
        self.load(self.env)
        return SaveOutcome(files, tuple(changed))

    def _validate(self) -> None:
        self._errors = {}
        for owner in self.classes:
            changes = {f.info.name: self._values[f.key] for f in self.fields if f.owner is owner}
            try:
                self._loaded[owner].updated(**changes)
            except SettingsError as exc:
                self._errors.update(self._split(owner, exc))

    def _split(self, owner: type[FileSettings], exc: SettingsError) -> dict[str, str]:
        """Map each problem to the field it is about; a cross-field one to every field it names."""
        names = [f.info.name for f in self.fields if f.owner is owner]
        problems: list[tuple[str | None, str]] = []
        cause = exc.__cause__
        if isinstance(cause, ValidationError):
            for err in cause.errors():
                message = str(err["msg"]).removeprefix("Value error, ")
                message = message.replace("Input should be ", "Must be ", 1)
                field = str(err["loc"][0]) if err["loc"] else None
                problems.append((field, message))
        else:  # no structured detail: the whole message, placed by the names it mentions
            problems.append((None, str(exc)))
        found: dict[str, str] = {}
        for field, message in problems:
            if field in names:
                found.setdefault(f"{owner.__name__}.{field}", _sentence(message))
                continue
            mentioned = [n for n in names if re.search(rf"\b{n}\b", message)]
            text = self._with_titles(owner, message)
            for name in mentioned or names[:1]:
                found.setdefault(f"{owner.__name__}.{name}", text)
        return found

    def _with_titles(self, owner: type[FileSettings], text: str) -> str:
        for item in self.fields:
            if item.owner is owner:
                title = re.sub(r"\s*\([^)]*\)$", "", item.info.title)
                text = re.sub(rf"\b{item.info.name}\b", f"“{title}”", text)
        return _sentence(text)


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text
