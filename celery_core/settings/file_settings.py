"""Where settings live and how they are loaded and saved, shared by every settings class.

Lookup order, lowest to highest priority:
1. the defaults in the settings class;
2. `<config dir>/.env`;
3. `<config dir>/.env.<env>`, where `<env>` is `PIXCRAWLER_ENV` (`dev`, `staging` or `prod`;
   `dev` when unset);
4. real environment variables (`PIXCRAWLER_CELERY_*`, `PIXCRAWLER_CRAWLER_*`).

The config dir is `PIXCRAWLER_CONFIG_DIR` when set, else the platform's user config
folder (`~/.config/PixCrawler` on Linux, `~/Library/Application Support/PixCrawler` on
macOS, `%LOCALAPPDATA%\\PixCrawler` on Windows). Nothing is read at import time.

Two ways to load: `load()` refuses settings that do not validate (SettingsError naming the
field, the file and the line), for callers where refusing is right; `load_lenient()` never
fails on a value: a refused one gives way to the next source or the default, and the result
lists each problem (see `celery_core.settings.lenient`). The desktop app, workers and crawl
tasks load leniently, so a damaged file never locks anyone out of the screen that corrects it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar, cast

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings
from pydantic_settings import SettingsError as DecodeError

from celery_core.settings.envfile import read_keys, update_env_file
from celery_core.settings.lenient import SettingsProblem, load_lenient, unreadable_lines
from celery_core.settings.values import check_no_control

log = logging.getLogger(__name__)
_warned: set[str] = set()  # problems this process has logged already (forked children too)

Environment = Literal["dev", "staging", "prod"]
Restart = Literal["worker", "app", "none"]
ENVIRONMENTS: tuple[Environment, ...] = ("dev", "staging", "prod")
APP_NAME = "PixCrawler"


def field_meta(group: str, restart: Restart = "none", **extra: Any) -> dict[str, Any]:
    """The settings screen's metadata for a field: its group, and what must restart to apply
    a change ("worker", "app" or "none"); extra keys such as secret=True or advanced=True."""
    return {"group": group, "restart": restart, **extra}


class SettingsError(ValueError):
    """A settings value was refused; `str()` names the field and the reason."""


def current_environment() -> Environment:
    value = os.environ.get("PIXCRAWLER_ENV", "dev").strip().lower() or "dev"
    if value not in ENVIRONMENTS:
        raise SettingsError(
            f"PIXCRAWLER_ENV={value!r} is not an environment; use one of {', '.join(ENVIRONMENTS)}"
        )
    return value


def active_environment() -> tuple[Environment, SettingsProblem | None]:
    """The environment in use: `PIXCRAWLER_ENV`, or `dev` (and the problem) when it is not one."""
    try:
        return current_environment(), None
    except SettingsError:
        raw = os.environ.get("PIXCRAWLER_ENV", "")
        problem = SettingsProblem(
            "environment",
            f"which is not an environment (use {', '.join(ENVIRONMENTS)})",
            env_var="PIXCRAWLER_ENV",
            raw=raw,
            shown=raw.strip()[:60],
            in_use="dev",
        )
        return "dev", problem


def config_dir() -> Path:
    """Where settings files live: `PIXCRAWLER_CONFIG_DIR`, else the platform's config dir."""
    override = os.environ.get("PIXCRAWLER_CONFIG_DIR")
    if override:
        return Path(override).expanduser().resolve()
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """PixCrawler's data folder: `PIXCRAWLER_DATA_DIR`, else the platform's user data dir."""
    override = os.environ.get("PIXCRAWLER_DATA_DIR")
    if override:
        return Path(override).expanduser().resolve()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False)).resolve()


def env_files(env: Environment | None = None, directory: Path | None = None) -> tuple[Path, Path]:
    """The two files read for `env`, lowest priority first."""
    base = directory or config_dir()
    return base / ".env", base / f".env.{env or current_environment()}"


def describe_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem, each naming the field (and its variable) and the reason."""
    parts = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:
            parts.append(message)  # a cross-field check: its message names the fields
            continue
        field = ".".join(str(p) for p in err["loc"])
        var = f" ({prefix}{field.upper()})" if prefix else ""
        parts.append(f"{field}{var}: {message}")
    return "; ".join(parts)


S = TypeVar("S", bound="FileSettings")


@dataclass(frozen=True)
class Loaded(Generic[S]):
    """Settings loaded leniently, and what could not be used (empty when all is well)."""

    settings: S
    problems: tuple[SettingsProblem, ...]


class FileSettings(BaseSettings):
    """Settings read from the environment's `.env` files, savable back to them."""

    env_prefix_name: ClassVar[str] = ""

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: object) -> object:
        """Every text (and list item) is one line: a line break in a URL is dropped by URL
        parsers (a broken URL would pass), and in a header it breaks every request."""
        return check_no_control(value)

    @classmethod
    def load(cls, env: Environment | None = None, directory: Path | None = None) -> Self:
        """Read the settings for `env` from the config dir and the environment; refuse them
        (SettingsError naming field, file and line) when a value does not validate."""
        files = env_files(env, directory)
        try:
            return cls(_env_file=files)
        except (ValidationError, UnicodeDecodeError, DecodeError) as exc:
            problems = load_lenient(cls, cls.env_prefix_name, files)[1]
            if isinstance(exc, ValidationError):
                message = describe_error(exc, cls.env_prefix_name)
                places = dict.fromkeys(p.where() for p in problems if p.kind == "value")
                if places:
                    message += f" (in {'; '.join(places)})"
            else:  # not UTF-8, or a list that is not JSON: only the lenient reading says where
                message = "; ".join(p.log_line(fallback=False) for p in problems) or str(exc)
            raise SettingsError(message) from exc

    @classmethod
    def load_lenient(
        cls, env: Environment | None = None, directory: Path | None = None
    ) -> Loaded[Self]:
        """Read the settings like `load()`, but never fail on a value: a refused one gives way
        to a lower-priority source or the default, and `problems` says which, where and why.
        An unknown `PIXCRAWLER_ENV` reads the `dev` files (a problem too)."""
        env_problem = None
        if env is None:
            env, env_problem = active_environment()
        settings, problems = load_lenient(cls, cls.env_prefix_name, env_files(env, directory))
        return Loaded(settings, (env_problem, *problems) if env_problem else problems)

    @classmethod
    def load_warning(
        cls,
        env: Environment | None = None,
        directory: Path | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> Self:
        """`load_lenient()` for processes without a window (a worker, its crawl tasks): each
        problem becomes one plain line (a WARNING log line unless `warn` is given), once per
        process, naming the variable, the file and line, and the value used instead."""
        loaded = cls.load_lenient(env, directory)
        for problem in loaded.problems:
            line = problem.log_line()
            if line not in _warned:
                _warned.add(line)
                if warn is None:
                    log.warning("settings: %s", line)
                else:
                    warn(line)
        return loaded.settings

    @classmethod
    def env_var(cls, field: str) -> str:
        return f"{cls.env_prefix_name}{field.upper()}"

    @classmethod
    def overridden_by_environment(cls, field: str) -> bool:
        """True when a real environment variable sets `field`, so a saved file value is shadowed."""
        return cls.env_var(field) in os.environ

    def updated(self, **changes: Any) -> Self:
        """A validated copy with `changes` applied; raises SettingsError naming the field."""
        unknown = sorted(set(changes) - set(type(self).model_fields))
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        data = self.model_dump()
        data.update(changes)
        try:
            # model_validate on a BaseSettings would read the environment again and let it
            # override the explicit values; validate as a plain model instead. (The pydantic
            # mypy plugin types model_construct as returning FileSettings, not Self.)
            return cast(Self, type(self).model_construct(**type(self)._validate_plain(data)))
        except ValidationError as exc:
            raise SettingsError(describe_error(exc, self.env_prefix_name)) from exc

    @classmethod
    def _validate_plain(cls, data: dict[str, Any]) -> dict[str, Any]:
        instance = cls(_env_file=None, **data)
        return instance.model_dump()

    def save(
        self,
        env: Environment | None = None,
        directory: Path | None = None,
        rewrite: frozenset[str] = frozenset(),
    ) -> Path:
        """Write the values that differ from what is on disk to `.env.<env>`.

        Only changed keys are written; everything else in the file is kept. The whole
        model is validated first, so an invalid value never reaches the file. The fields in
        `rewrite` are written even when equal to the value in use (it replaces a value the
        file holds but that could not be used). A line of the file that no load can read (not
        KEY=VALUE, not UTF-8) is kept as a comment, so the file loads cleanly afterwards.
        """
        cls = type(self)
        try:
            cls._validate_plain(self.model_dump())
        except ValidationError as exc:
            raise SettingsError(describe_error(exc, self.env_prefix_name)) from exc
        env = env or active_environment()[0]
        env_file = env_files(env, directory)[1]
        # What is in use now, even if the files hold values that do not load.
        on_disk = cls.load_lenient(env, directory).settings
        changes: dict[str, object] = {}
        for name in cls.model_fields:
            new = getattr(self, name)
            if new != getattr(on_disk, name) or name in rewrite:
                changes[cls.env_var(name)] = new
        existing = read_keys(env_file)
        unreadable = unreadable_lines(env_file)
        if changes or unreadable or not env_file.exists():
            private = self.holds_secret(changes) or self.holds_secret_on_disk(env_file, existing)
            update_env_file(env_file, changes, private=private, unreadable=unreadable)
        return env_file

    def holds_secret(self, changes: dict[str, object]) -> bool:
        """Whether these values include a password (the file is then made private)."""
        return any(_has_password(v) for v in changes.values())

    @staticmethod
    def holds_secret_on_disk(path: Path, keys: dict[str, int]) -> bool:
        if not path.exists() or not keys:
            return False
        text = path.read_text(encoding="utf-8", errors="replace")
        return any(_has_password(line) for line in text.splitlines())


def repair_file(path: Path) -> bool:
    """Keep the lines of `path` that no load can read as comments (atomically); True if any."""
    unreadable = unreadable_lines(path)
    if unreadable:
        private = FileSettings.holds_secret_on_disk(path, read_keys(path))
        update_env_file(path, {}, private=private, unreadable=unreadable)
    return bool(unreadable)


def _has_password(value: object) -> bool:
    from celery_core.settings.redis_urls import url_has_password

    return isinstance(value, str) and url_has_password(value)
