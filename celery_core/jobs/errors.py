"""Saying what is wrong with a job file in words a person can act on, naming the place in
the file (`categories.mammals[1]: expected a keyword string or a source object`)."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from pydantic import ValidationError


class JobError(ValueError):
    """A job was refused; `problems` has one line per problem, each naming its place."""

    def __init__(self, problems: list[str] | tuple[str, ...], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        where = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = where + self.problems[0]
        else:
            lines = "".join(f"\n  {p}" for p in self.problems)
            message = f"{where}{len(self.problems)} problems in the job:{lines}"
        super().__init__(message)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_EXPECTED = {
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def format_path(loc: tuple[str | int, ...], tags: Collection[str] = ()) -> str:
    """('categories', 'pets', 1, 'url list', 'urls', 0) -> categories.pets[1].urls[0], where
    `tags` name the members of tagged unions (they follow a list index and are skipped)."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in tags and i and isinstance(loc[i - 1], int):
            continue  # the union member's tag, not a place in the file
        elif part == "[key]":
            continue
        elif _IDENTIFIER.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def _shown(value: Any) -> str:
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return "a list" if isinstance(value, list | tuple) else "an object"


def _describe(err: Any) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return "required"
    if kind == "entry_kind" and isinstance(value, Mapping):
        return "a source object needs 'urls', 'urls_file' or 'website'"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_shown(value)}"
    if kind == "literal_error":
        return f"{_shown(value)} is not one of {ctx.get('expected')}"
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {_shown(value)}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {_shown(value)}"
    return str(err["msg"]).removeprefix("Value error, ")


def describe_errors(exc: ValidationError, tags: Collection[str] = ()) -> list[str]:
    """One line per problem, each starting with its place in the file."""
    problems = []
    for err in exc.errors():
        message = _describe(err)
        if not err["loc"]:  # a check across fields: each line already names its place
            problems.extend(message.splitlines())
        else:
            problems.append(f"{format_path(err['loc'], tags)}: {message}")
    return problems
