"""The settings screen's logic without widgets: values being edited, errors per field, saving.

Validation is the settings classes' own: each change runs `settings.updated(**values)` and
the SettingsError it raises is split back into messages per field, so the screen can never
disagree with what `load()` and `save()` accept.

The files are read leniently (`load_lenient()`), so a value that does not load never keeps
the screen from opening: the field shows what the file holds, marked with what is wrong, where,
and what PixCrawler uses meanwhile; saving rewrites that line (and keeps lines no load can
read as comments), after which the file loads cleanly.
"""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import TypeAdapter, ValidationError

from celery_core.settings.celery_settings import FieldInfo, field_info
from celery_core.settings.file_settings import (
    Environment,
    FileSettings,
    SettingsError,
    active_environment,
    env_files,
    repair_file,
)
from celery_core.settings.lenient import SettingsProblem, merge_problems

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


def placeholder(item: EditorField) -> str:
    """A text field's grey hint, from the field's own example: "Comma-separated, e.g. …" for
    a list, "Not set (e.g. …)" for an optional text, else "e.g. …"."""
    example = item.info.example
    if item.kind == "list":
        return f"Comma-separated, e.g. {example}" if example else "Comma-separated"
    if item.optional:
        return f"Not set (e.g. {example})" if example else "Not set"
    return f"e.g. {example}" if example else ""


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


def settings_problems(
    classes: Sequence[type[FileSettings]],
    env: Environment | None = None,
    directory: Path | None = None,
) -> list[SettingsProblem]:
    """What in the settings of `env` (the one in use by default) could not be used, each once."""
    return merge_problems(*(cls.load_lenient(env, directory).problems for cls in classes))


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
        self.env: Environment = env or active_environment()[0]
        self._loaded: dict[type[FileSettings], FileSettings] = {}
        self._values: dict[str, Any] = {}
        self._input_errors: dict[str, str] = {}
        self._errors: dict[str, str] = {}
        self.problems: list[SettingsProblem] = []
        self._field_problems: dict[str, SettingsProblem] = {}  # not yet edited by the user
        self._texts: dict[str, str] = {}  # what to show in a field whose text is not a value
        self._rewrite: set[str] = set()
        self.load(self.env)

    def load(self, env: Environment) -> None:
        """Read the settings of `env` (files and environment), discarding unsaved edits.

        Never fails on a value: one that does not load is shown as the file holds it (see
        `problem_note()`), and PixCrawler's value in use meanwhile is `saved_value()`."""
        self.env = env
        loads = {cls: cls.load_lenient(env, self.directory) for cls in self.classes}
        self._loaded = {cls: loaded.settings for cls, loaded in loads.items()}
        self._values = {f.key: getattr(self._loaded[f.owner], f.info.name) for f in self.fields}
        self._input_errors.clear()
        self._errors.clear()
        self._texts.clear()
        self._rewrite.clear()
        env_problem = active_environment()[1]  # an unknown PIXCRAWLER_ENV: dev is in use
        self.problems = merge_problems(
            [env_problem] if env_problem else [], *(loaded.problems for loaded in loads.values())
        )
        self._field_problems = {}
        for problem in self.problems:
            key = problem.key
            if (
                key in self._by_key
                and problem.path is not None
                and not self._by_key[key].overridden
                and key not in self._field_problems
            ):
                self._field_problems[key] = problem
                self._show_as_written(key, problem)
        self._validate()

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
        self._edited(key)
        self._input_errors.pop(key, None)
        self._values[key] = value
        self._validate()

    def set_input_error(self, key: str, message: str) -> None:
        """The text typed in a field cannot even be read as its type (e.g. not a number)."""
        self._edited(key)
        self._input_errors[key] = message
        self._validate()

    def _edited(self, key: str) -> None:
        if self._field_problems.pop(key, None) is not None:
            self._rewrite.add(key)  # the file's line for it is replaced, whatever the value
        self._texts.pop(key, None)

    # -- values in the files that could not be used ------------------------------------------

    def problem_note(self, key: str) -> str | None:
        """For a field whose value in a file could not be used (until the user edits it): what
        the file holds, where, why, and what PixCrawler uses meanwhile."""
        problem = self._field_problems.get(key)
        if problem is None or problem.path is None:
            return None
        place = f"{problem.path.name}, line {problem.line}" if problem.line else problem.path.name
        meanwhile = f"PixCrawler uses {problem.in_use} until you correct it here and save."
        if key in self.errors():  # the red error above says what is wrong
            return f"Read from {place}. {meanwhile}"
        if problem.kind == "value":
            return f"“{problem.shown}” in {place} {problem.reason}. {meanwhile}"
        return f"The line “{problem.shown}” in {place} {problem.reason}. {meanwhile}"

    def shown_text(self, key: str) -> str | None:
        """The text a field shows instead of its value: a file's text that is not a value."""
        return self._texts.get(key)

    def notes(self) -> list[SettingsProblem]:
        """Problems no field of this screen can correct: a line that names no setting, a real
        environment variable, an unknown PIXCRAWLER_ENV."""
        shown = set(self._field_problems.values())
        return [p for p in self.problems if p not in shown]

    def repairs(self) -> list[Path]:
        """Files of this environment with lines no load can read (saving keeps them as comments)."""
        files = env_files(self.env, self.directory)
        bad = {p.path for p in self.problems if p.kind in ("line", "encoding")}
        return [path for path in files if path in bad]

    def _show_as_written(self, key: str, problem: SettingsProblem) -> None:
        """Put the file's text in the field: as a value when the form can hold it (the usual
        checks then say what is wrong), else as text with an input error."""
        item = self._by_key[key]
        text = _value_text(problem)
        try:
            value = _typed(item, text)
        except ValueError:
            self._texts[key] = text
            hint = _HINTS.get(item.kind, "")
            self._input_errors[key] = _sentence(f"“{problem.shown}” {problem.reason}{hint}")
            return
        self._values[key] = value

    def errors(self) -> dict[str, str]:
        return {**self._errors, **self._input_errors}

    def dirty(self) -> list[EditorField]:
        return [f for f in self.fields if self._values[f.key] != self.saved_value(f.key)]

    def can_save(self) -> bool:
        return not self.errors() and bool(self.dirty() or self._rewrite or self.repairs())

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
        """Write the changed keys to `.env.<env>` (atomically); an invalid form writes nothing.

        A field whose value in the file could not be used is written whatever its value (the
        bad line goes), and lines no load can read become comments."""
        if self.errors():
            raise SettingsError("; ".join(self.errors().values()))
        pending = set(self._rewrite) | set(self._field_problems)
        dirty = self.dirty()
        changed = [f for f in self.fields if f in dirty or f.key in pending]
        owners = {f.owner for f in changed}
        candidates = self.candidates()
        files = tuple(
            candidates[owner].save(
                self.env,
                self.directory,
                rewrite=frozenset(f.info.name for f in changed if f.owner is owner),
            )
            for owner in self.classes
            if owner in owners
        )
        repaired = tuple(path for path in self.repairs() if repair_file(path))
        self.load(self.env)
        return SaveOutcome(tuple(dict.fromkeys(files + repaired)), tuple(changed))

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


# What to do with a field that cannot show a file's text (it shows neither choice).
_HINTS = {"bool": ": click the box to turn it on or off", "choice": ": choose one from the list"}
_VALUE_OF_LINE = re.compile(r"^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*[=:]?\s*(.*)$")


def _value_text(problem: SettingsProblem) -> str:
    """The text a problem's field held: the value, or what follows the name on a bad line."""
    text = problem.raw or ""
    if problem.kind != "value":
        match = _VALUE_OF_LINE.match(text)
        text = match.group(1).strip() if match else text
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1]
    return text


def _typed(item: EditorField, text: str) -> Any:
    """`text` as the form's widget for `item` would hold it; ValueError when it cannot."""
    info = item.info
    low = info.minimum if info.minimum is not None else float("-inf")
    high = info.maximum if info.maximum is not None else float("inf")
    if item.kind in ("int", "float"):
        number = int(text) if item.kind == "int" else float(text)
        if not low <= number <= high:
            raise ValueError(f"{number} is outside {low}..{high}")
        return number
    if item.kind == "bool":
        try:
            return TypeAdapter(bool).validate_python(text)
        except ValidationError as exc:
            raise ValueError(text) from exc
    if item.kind == "choice":
        if text not in (info.choices or ()):
            raise ValueError(text)
        return text
    if item.kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    return None if item.optional and not text.strip() else text.strip()
