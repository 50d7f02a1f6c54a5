"""Loading settings that never fails on a bad value, and the problems it found on the way.

A value that does not load (a word where a number belongs, a soft limit above the hard one,
a line that is not KEY=VALUE, a file that is not UTF-8) must never lock anyone out of the
program that could correct it. `load_lenient()` reads the same sources as a strict load, in
the same order (real environment variables, then `.env.<env>`, then `.env`), decodes each
value the way pydantic-settings does, and drops a refused value to the next source that sets
the field, or to the default. Each drop, and each line that could not be read, becomes a
`SettingsProblem` naming the field, the file and the line.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, Literal, TypeVar

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource
from pydantic_settings import SettingsError as DecodeError

from celery_core.settings.redis_urls import mask_secrets

ProblemKind = Literal["value", "line", "encoding", "environment", "file"]
S = TypeVar("S", bound=BaseSettings)
_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)")
_SHOWN_CHARS = 60
_SHOWN_IN_USE = 30


@dataclass(frozen=True)
class SettingsProblem:
    """Something in the settings that could not be used, and what is used instead."""

    kind: ProblemKind
    reason: str  # plain words completing "<the value> ...", e.g. "is not a whole number"
    path: Path | None = None  # the file; None for a real environment variable
    line: int | None = None  # 1-based, when known
    owner: str = ""  # the settings class of `field` ("CelerySettings"); "" for a whole line
    field: str | None = None  # the field the value or line was meant for
    env_var: str | None = None  # the variable as PixCrawler names it
    title: str | None = None  # the field's title for people, without its unit
    # As written (it may hold a password); a line that is not UTF-8 read as Windows-1252.
    raw: str | None = dataclass_field(default=None, repr=False)
    shown: str | None = None  # `raw` safe to show: shortened, any password masked
    in_use: str | None = None  # what is used instead, e.g. "the default (1800)"

    @property
    def key(self) -> str | None:
        """`<ClassName>.<field>`, as the settings screen names fields."""
        return f"{self.owner}.{self.field}" if self.field else None

    def where(self) -> str:
        """The file and line, or the environment variable."""
        if self.path is None:
            return f"the environment variable {self.env_var}"
        return f"{self.path}, line {self.line}" if self.line else str(self.path)

    def describe(self) -> str:
        """A few plain sentences for a person: what, where, and what PixCrawler does instead."""
        if self.kind == "environment":
            return (
                f"PIXCRAWLER_ENV is “{self.shown}”, {self.reason}. PixCrawler uses the "
                f"{self.in_use} settings until it is changed where it is set."
            )
        if self.kind == "file":
            return f"{self.path} could not be read: {self.reason}. PixCrawler reads the others."
        place = f"{self.path} (line {self.line})" if self.line else str(self.path)
        if self.kind in ("line", "encoding"):
            text = f"Line {self.line} of {self.path} could not be read: “{self.shown}”"
            text += f" {self.reason}."
            if self.title:
                text += f" It was meant to set {self.title}: PixCrawler uses {self.in_use}."
            return text
        what = f"{self.title} = “{self.shown}” {self.reason}"
        if self.path is None:
            return (
                f"The environment variable {self.env_var} could not be used: {what}. PixCrawler "
                f"uses {self.in_use} until the variable is changed where it is set."
            )
        return (
            f"A setting in {place} could not be read: {what}. "
            f"PixCrawler uses {self.in_use} until you correct it."
        )

    def summary(self) -> str:
        """One sentence, for a list of several problems: what, where, what is used instead."""
        if self.kind not in ("value", "line", "encoding"):
            return self.describe()
        where = self.where() if self.path is not None else f"environment variable {self.env_var}"
        if self.kind == "value":
            text = f"{self.title} = “{self.shown}” {self.reason} ({where})."
        elif self.title:  # the setting names the line well enough
            text = f"{self.title}: line {self.line} of {self.path} {self.reason}."
        else:
            text = f"Line {self.line} of {self.path}, “{self.shown}”, {self.reason}."
        return text + (f" PixCrawler uses {self.in_use}." if self.in_use else "")

    def log_line(self, fallback: bool = True) -> str:
        """One plain line for a log: where, which variable, why, and (with `fallback`) what is
        used instead."""
        if self.kind == "environment":
            text = f"PIXCRAWLER_ENV={self.shown!r} {self.reason}"
            return text + (f"; using {self.in_use}" if fallback else "")
        if self.kind == "file":
            return f"{self.path}: {self.reason}" + ("; the file is skipped" if fallback else "")
        where = "environment" if self.path is None else self.where()
        subject = f"{self.env_var}={self.shown!r}" if self.kind == "value" else repr(self.shown)
        reason = self.reason if fallback else self.reason.removesuffix(_IGNORED)
        text = f"{where}: {subject} {reason}"
        if fallback and self.in_use is not None:
            text += f"; using {self.in_use} for {self.env_var}"
        return text.replace("\n", " ")


def merge_problems(*groups: Sequence[SettingsProblem]) -> list[SettingsProblem]:
    """The problems of several settings classes read from the same files, each once: a line
    every class reports (the environment name, a line that is not KEY=VALUE) is kept once, as
    the class that owns its key tells it."""
    found: dict[tuple[object, ...], SettingsProblem] = {}
    for problem in (p for group in groups for p in group):
        if problem.kind in ("line", "encoding"):
            key: tuple[object, ...] = (problem.kind, problem.path, problem.line)
        elif problem.kind in ("environment", "file"):
            key = (problem.kind, problem.path)
        else:
            key = (id(problem),)
        if key not in found or (problem.field and not found[key].field):
            found[key] = problem
    return list(found.values())


@dataclass(frozen=True)
class EnvFileText:
    """What one `.env` file holds: values (with their line) and the lines that were unreadable."""

    values: dict[str, tuple[str | None, int | None]]  # KEY -> (value, line)
    # (line, text, "line" or "encoding", the text as likely meant): a line that is not UTF-8
    # shows its odd bytes as \xNN, and is likely meant as Windows-1252 (Latin-1) text.
    unreadable: tuple[tuple[int, str, ProblemKind, str], ...]


def read_env_file(path: Path) -> EnvFileText:
    """Read `path` as python-dotenv would, but line by line: a line that is not UTF-8 or not
    KEY=VALUE is set aside (and reported) instead of spoiling the file. Raises OSError."""
    lines = path.read_bytes().splitlines(keepends=True)
    kept: list[str] = []
    unreadable: list[tuple[int, str, ProblemKind, str]] = []
    for number, raw in enumerate(lines, 1):
        try:
            kept.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "backslashreplace").rstrip("\r\n")
            meant = raw.decode("cp1252", "replace").rstrip("\r\n")
            unreadable.append((number, text, "encoding", meant))
            kept.append("\n")  # the line numbers of the lines below stay right
    where: dict[str, int] = {}
    parsed: list[str] = []
    for binding in parse_stream(io.StringIO("".join(kept))):
        original = binding.original
        if binding.error:
            text = original.string.strip()
            unreadable.append((original.line, text, "line", text))
            parsed.append("\n" * original.string.count("\n"))  # python-dotenv skips it too
            continue
        parsed.append(original.string)
        if binding.key is not None:
            where[binding.key] = original.line
    # Interpolated as a strict load does (and without python-dotenv's warning on bad lines).
    values = dotenv_values(stream=io.StringIO("".join(parsed)))
    unreadable.sort()
    return EnvFileText(
        {key: (value, where.get(key)) for key, value in values.items()}, tuple(unreadable)
    )


def unreadable_lines(path: Path) -> dict[int, str]:
    """0-based index -> why, for the lines of `path` no load can use ({} if it cannot be read)."""
    try:
        found = read_env_file(path).unreadable
    except OSError:
        return {}
    return {line - 1: _SHORT_REASONS[kind] for line, _, kind, _ in found}


_IGNORED = ", so it is ignored"
_LINE_REASONS: dict[ProblemKind, str] = {
    "line": "is not a setting (settings are written NAME=value)" + _IGNORED,
    "encoding": "is not UTF-8 text (the file was saved in another encoding)" + _IGNORED,
}
_SHORT_REASONS: dict[ProblemKind, str] = {
    "line": "not a NAME=value setting",
    "encoding": "not UTF-8 text",
}


@dataclass
class _Candidate:
    path: Path | None
    line: int | None
    raw: str
    value: Any


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' own decoding (JSON for list fields, NoDecode, case) over given values."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, str]) -> None:
        self._given = dict(values)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        if self.case_sensitive:
            return self._given
        return {key.lower(): value for key, value in self._given.items()}


def load_lenient(
    cls: type[S], prefix: str, files: Sequence[Path]
) -> tuple[S, tuple[SettingsProblem, ...]]:
    """`cls` from the environment and `files` (lowest priority first), never failing on a value."""
    problems: list[SettingsProblem] = []
    names = {f"{prefix}{name}".lower(): name for name in cls.model_fields}
    layers: list[tuple[Path | None, dict[str, tuple[str | None, int | None]]]] = [
        (None, {k: (v, None) for k, v in os.environ.items() if k.lower() in names})
    ]
    for path in reversed(files):
        if not path.exists():
            continue
        try:
            content = read_env_file(path)
        except OSError as exc:
            problems.append(SettingsProblem("file", exc.strerror or str(exc), path=path))
            continue
        layers.append((path, content.values))
        for number, text, kind, meant in content.unreadable:
            match = _KEY.match(text)
            owned = names.get(match.group(1).lower()) if match else None
            problem = _problem(cls, prefix, owned, kind, _LINE_REASONS[kind], path, number, text)
            problems.append(replace(problem, raw=meant))  # what the settings screen shows
    candidates: dict[str, list[_Candidate]] = {}
    for source, values in layers:
        for key, (raw, line) in values.items():
            name = names.get(key.lower())
            if name is None or raw is None:
                continue
            try:
                decoded = _MappingSource(cls, {key: raw})()
            except DecodeError:
                reason = 'is not a list in JSON form, e.g. ["json"]'
                problems.append(_problem(cls, prefix, name, "value", reason, source, line, raw))
                continue
            if name in decoded:
                found = _Candidate(source, line, raw, decoded[name])
                candidates.setdefault(name, []).append(found)
    settings, refused = _validate(cls, candidates)
    for name, candidate, reason in refused:
        problems.append(
            _problem(
                cls, prefix, name, "value", reason, candidate.path, candidate.line, candidate.raw
            )
        )
    return settings, tuple(_with_fallbacks(problems, settings, candidates))


def _validate(
    cls: type[S], candidates: dict[str, list[_Candidate]]
) -> tuple[S, list[tuple[str, _Candidate, str]]]:
    """Validate with the best candidate of each field; a refused one gives way to the next."""
    defaults = {
        name: info.get_default(call_default_factory=True) for name, info in cls.model_fields.items()
    }
    refused: list[tuple[str, _Candidate, str]] = []
    for _ in range(sum(len(c) for c in candidates.values()) + 1):
        data = dict(defaults)
        for name, remaining in candidates.items():
            if remaining:
                data[name] = remaining[0].value
        try:
            # Every field is given, so the real environment cannot put a refused value back.
            return cls(_env_file=None, **data), refused
        except ValidationError as exc:
            blamed = _blame(cls, exc, candidates)
            if not blamed:  # a check across fields that names none: every value set gives way
                why = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
                blamed = {name: f"is refused: {why}" for name, c in candidates.items() if c}
        if not blamed:
            break
        for name, reason in blamed.items():
            refused.append((name, candidates[name].pop(0), reason))
    return cls(_env_file=None, **defaults), refused


def _blame(
    cls: type[BaseModel], exc: ValidationError, candidates: dict[str, list[_Candidate]]
) -> dict[str, str]:
    """The field each problem is about (for a check across fields, the first one it names that
    a source set), with the reason in plain words."""
    blamed: dict[str, str] = {}
    for err in exc.errors():
        loc = err["loc"]
        if loc and isinstance(loc[0], str):
            if candidates.get(loc[0]):
                blamed.setdefault(loc[0], _reason(cls, err, candidates[loc[0]][0].raw))
            continue
        message = str(err["msg"]).removeprefix("Value error, ")
        named = sorted(
            (m.start(), name)
            for name in cls.model_fields
            if candidates.get(name) and (m := re.search(rf"\b{name}\b", message))
        )
        if named:
            blamed.setdefault(named[0][1], "is refused: " + _with_titles(cls, message))
    return blamed


def _reason(cls: type[BaseModel], err: ErrorDetails, raw: str) -> str:
    kind = err["type"]
    ctx = err.get("ctx", {})
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "is not a whole number"
    if kind in ("float_parsing", "float_type"):
        return "is not a number"
    if kind in ("bool_parsing", "bool_type"):
        return "is not true or false"
    if kind == "greater_than_equal":
        return f"is below the lowest allowed value, {ctx['ge']}"
    if kind == "less_than_equal":
        return f"is above the highest allowed value, {ctx['le']}"
    if kind == "literal_error":
        return f"is not one of {ctx['expected']}"
    if kind == "string_too_short":
        return f"is shorter than {ctx['min_length']} characters"
    if kind == "string_too_long":
        return f"is longer than {ctx['max_length']} characters"
    message = str(err["msg"]).removeprefix("Value error, ")
    if message.startswith(f"{raw!r} "):  # the check's message names the value: said already
        return message[len(repr(raw)) + 1 :]
    return "is refused: " + _with_titles(cls, message)


def title_of(cls: type[BaseModel], name: str) -> str:
    """A field's title without its unit: "Hard time limit (s)" -> "Hard time limit"."""
    info = cls.model_fields[name]
    return re.sub(r"\s*\([^)]*\)$", "", info.title or name)


def _with_titles(cls: type[BaseModel], text: str) -> str:
    for name in cls.model_fields:
        text = re.sub(rf"\b{name}\b", f"“{title_of(cls, name)}”", text)
    return text


def _is_secret(cls: type[BaseModel], name: str | None) -> bool:
    if name is None:
        return False
    extra = cls.model_fields[name].json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("secret"))


def shorten(text: str) -> str:
    text = text.replace("\n", "⏎")
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _problem(
    cls: type[BaseModel],
    prefix: str,
    name: str | None,
    kind: ProblemKind,
    reason: str,
    path: Path | None,
    line: int | None,
    raw: str,
) -> SettingsProblem:
    shown = mask_secrets(raw)  # whatever the field: a line may hold a URL with a password
    return SettingsProblem(
        kind=kind,
        reason=reason,
        path=path,
        line=line,
        owner=cls.__name__ if name else "",
        field=name,
        env_var=f"{prefix}{name.upper()}" if name else None,
        title=title_of(cls, name) if name else None,
        raw=raw,
        shown=shorten(shown),
    )


def _with_fallbacks(
    problems: list[SettingsProblem], settings: BaseModel, candidates: dict[str, list[_Candidate]]
) -> list[SettingsProblem]:
    """Each problem about a field says what is used instead: the default or another source's."""
    done = []
    for problem in problems:
        if problem.field is None:
            done.append(problem)
            continue
        secret = _is_secret(type(settings), problem.field)
        value = show_value(getattr(settings, problem.field), secret)
        unit = re.search(r"\(([^)]+)\)$", type(settings).model_fields[problem.field].title or "")
        if unit and value[:1].isdigit():
            value = f"{value} {unit.group(1)}"  # "Hard time limit (s)": 1800 s
        shown = f" ({value})" if len(value) <= _SHOWN_IN_USE else ""  # a long one is noise
        remaining = candidates.get(problem.field)
        if not remaining:
            in_use = f"the default{shown}"
        elif remaining[0].path is None:
            in_use = f"the environment's value{shown}"
        else:
            in_use = f"the value in {remaining[0].path}{shown}"
        done.append(replace(problem, in_use=in_use))
    return done


def show_value(value: object, secret: bool = False) -> str:
    """A settings value in words: on/off, a list joined by commas, "not set" for none."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "not set"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    return shorten(mask_secrets(text) if secret else text)
