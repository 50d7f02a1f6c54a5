"""`CelerySettings`: every knob of the task system, with the metadata the settings screen needs.

Each field carries a title, a description, a group and `restart` (what must restart for a
change to take effect: "worker", "app" or "none"). The settings screen is generated from
this; see `field_info()`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from celery_core.settings.file_settings import (
    ENVIRONMENTS,
    Environment,
    FileSettings,
    Restart,
    SettingsError,
    config_dir,
    current_environment,
    env_files,
    field_meta,
)
from celery_core.settings.redis_urls import check_redis_url, mask_url, normalize_redis_url
from celery_core.settings.values import split_list

__all__ = [
    "ENVIRONMENTS",
    "CelerySettings",
    "Environment",
    "FieldInfo",
    "SettingsError",
    "config_dir",
    "current_environment",
    "env_files",
    "field_info",
    "get_settings",
]

PoolName = Literal["auto", "prefork", "threads", "solo"]


class CelerySettings(FileSettings):
    """Settings of the Celery app and its workers (env prefix `PIXCRAWLER_CELERY_`)."""

    model_config = SettingsConfigDict(
        env_prefix="PIXCRAWLER_CELERY_",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )
    env_prefix_name: ClassVar[str] = "PIXCRAWLER_CELERY_"

    broker_url: str = Field(
        "redis://localhost:6379/0",
        title="Broker URL",
        description="Redis that carries task messages. redis://[:password@]host:port/db, "
        "rediss:// for TLS, or unix:///path/to/socket. Workers on other machines use the same one. "
        "A password given as ?password= is moved before the @ (the form Celery reads).",
        json_schema_extra=field_meta(
            "Connection", "worker", secret=True, example="redis://:password@192.168.1.10:6379/0"
        ),
    )
    result_backend: str = Field(
        "redis://localhost:6379/1",
        title="Result backend URL",
        description="Redis that stores task results and progress; usually the broker's server "
        "with another database number.",
        json_schema_extra=field_meta(
            "Connection", "worker", secret=True, example="redis://:password@192.168.1.10:6379/1"
        ),
    )
    task_time_limit: int = Field(
        1800,
        ge=10,
        le=7 * 24 * 3600,
        title="Hard time limit (s)",
        description="A task still running after this many seconds is killed.",
        json_schema_extra=field_meta("Tasks", "worker", unit="seconds"),
    )
    task_soft_time_limit: int = Field(
        1500,
        ge=5,
        le=7 * 24 * 3600,
        title="Soft time limit (s)",
        description="After this many seconds a crawl stops cleanly and keeps what it saved. "
        "Must be lower than the hard limit.",
        json_schema_extra=field_meta("Tasks", "worker", unit="seconds"),
    )
    task_max_retries: int = Field(
        3,
        ge=0,
        le=20,
        title="Retries on transient errors",
        description="How often a task is retried after a connection error, a timeout or an "
        "HTTP 429/5xx. Other errors fail at once.",
        json_schema_extra=field_meta("Tasks", "worker"),
    )
    task_default_retry_delay: int = Field(
        5,
        ge=1,
        le=3600,
        title="First retry delay (s)",
        description="Wait before the first retry; each later retry waits about twice as long, "
        "with random jitter.",
        json_schema_extra=field_meta("Tasks", "worker", unit="seconds"),
    )
    task_retry_backoff_max: int = Field(
        300,
        ge=1,
        le=24 * 3600,
        title="Longest retry delay (s)",
        description="Upper bound on the wait between two retries.",
        json_schema_extra=field_meta("Tasks", "worker", unit="seconds"),
    )
    task_acks_late: bool = Field(
        True,
        title="Acknowledge after the task ends",
        description="Keep a task's message until the task has finished, so a task whose worker "
        "died runs again elsewhere instead of being lost.",
        json_schema_extra=field_meta("Tasks", "worker"),
    )
    task_reject_on_worker_lost: bool = Field(
        True,
        title="Requeue when a worker process dies",
        description="When a worker's process is killed mid-task, put the task back in the queue.",
        json_schema_extra=field_meta("Tasks", "worker"),
    )
    result_expires: int = Field(
        7 * 24 * 3600,
        ge=60,
        le=365 * 24 * 3600,
        title="Keep results for (s)",
        description="How long task results, progress and thumbnails stay in Redis. Job history "
        "is kept on this computer regardless.",
        json_schema_extra=field_meta("Results", "worker", unit="seconds"),
    )
    worker_pool: PoolName = Field(
        "auto",
        title="Worker pool",
        description="How a worker runs tasks: prefork (processes; Linux and macOS), threads "
        "(Windows), solo (one at a time). auto picks prefork, or threads on Windows.",
        json_schema_extra=field_meta("Worker", "worker"),
    )
    worker_concurrency: int = Field(
        0,
        ge=0,
        le=256,
        title="Tasks at once per worker",
        description="How many tasks one worker runs at the same time; 0 means one per CPU core.",
        json_schema_extra=field_meta("Worker", "worker"),
    )
    worker_prefetch_multiplier: int = Field(
        1,
        ge=1,
        le=64,
        title="Prefetch multiplier",
        description="Messages a worker reserves per running task. 1 spreads long crawls evenly "
        "over workers.",
        json_schema_extra=field_meta("Worker", "worker"),
    )
    worker_max_tasks_per_child: int = Field(
        100,
        ge=0,
        le=1_000_000,
        title="Tasks per process before renewal",
        description="A pool process is replaced after this many tasks, returning its memory; "
        "0 never replaces it.",
        json_schema_extra=field_meta("Worker", "worker"),
    )
    worker_max_memory_per_child_mb: int = Field(
        0,
        ge=0,
        le=1_000_000,
        title="Memory per process before renewal (MB)",
        description="A pool process using more resident memory than this is replaced after its "
        "current task; 0 means no limit.",
        json_schema_extra=field_meta("Worker", "worker", unit="megabytes"),
    )
    visibility_timeout: int = Field(
        3600,
        ge=30,
        le=7 * 24 * 3600,
        title="Visibility timeout (s)",
        description="A message whose worker vanished without a trace is handed out again after "
        "this long. Must exceed the hard time limit, or long tasks would run twice. Workers that "
        "die on a machine still connected to Redis are detected much sooner (lease expiry).",
        json_schema_extra=field_meta("Connection", "worker", unit="seconds"),
    )
    task_serializer: str = Field(
        "json",
        title="Task serializer",
        description="Format of task messages. Only JSON is accepted: a message must never be "
        "able to run code on a worker.",
        json_schema_extra=field_meta("Tasks", "worker", advanced=True, example="json"),
    )
    result_serializer: str = Field(
        "json",
        title="Result serializer",
        description="Format of stored results. Only JSON is accepted.",
        json_schema_extra=field_meta("Results", "worker", advanced=True, example="json"),
    )
    accept_content: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["json"],
        title="Accepted content types",
        description="Message formats a worker accepts, comma-separated. Only json.",
        json_schema_extra=field_meta("Tasks", "worker", advanced=True, example="json"),
    )

    @field_validator("broker_url", "result_backend")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return normalize_redis_url(check_redis_url(value))

    @field_validator("accept_content", mode="before")
    @classmethod
    def _split_content(cls, value: object) -> object:
        return split_list(value)

    @field_validator("task_serializer", "result_serializer")
    @classmethod
    def _json_only(cls, value: str) -> str:
        value = value.strip().lower()
        if value != "json":
            raise ValueError(
                f"{value!r} is refused: only 'json' is allowed, because pickle and other "
                "formats let a broker message run code on a worker"
            )
        return value

    @field_validator("accept_content")
    @classmethod
    def _accept_json_only(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip().lower() for v in value]
        refused = [v for v in cleaned if v not in ("json", "application/json")]
        if refused or not cleaned:
            raise ValueError(
                f"{', '.join(refused) or 'an empty list'} refused: accept_content must be "
                "['json'] so no message can run code on a worker"
            )
        return ["json"]

    @model_validator(mode="after")
    def _check_limits(self) -> CelerySettings:
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ValueError(
                f"task_soft_time_limit ({self.task_soft_time_limit} s) must be lower than "
                f"task_time_limit ({self.task_time_limit} s)"
            )
        if self.visibility_timeout <= self.task_time_limit:
            raise ValueError(
                f"visibility_timeout ({self.visibility_timeout} s) must be greater than "
                f"task_time_limit ({self.task_time_limit} s), or long tasks would run twice"
            )
        return self

    @property
    def resolved_pool(self) -> str:
        """The pool actually used: prefork where it works, threads on Windows."""
        if self.worker_pool != "auto":
            return self.worker_pool
        return "threads" if sys.platform == "win32" else "prefork"

    @property
    def resolved_concurrency(self) -> int:
        return self.worker_concurrency or (os.cpu_count() or 1)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name in ("broker_url", "result_backend") and isinstance(value, str):
                yield name, mask_url(value)
            else:
                yield name, value

    def masked(self) -> dict[str, Any]:
        """All values as a dict with passwords masked: safe for logs and task results."""
        data = self.model_dump()
        for key in ("broker_url", "result_backend"):
            data[key] = mask_url(data[key])
        return data


@dataclass(frozen=True)
class FieldInfo:
    """What a settings screen needs to show one field."""

    name: str
    env_var: str
    title: str
    description: str
    group: str
    restart: Restart
    secret: bool
    advanced: bool
    annotation: Any
    default: Any
    minimum: int | None
    maximum: int | None
    choices: tuple[str, ...] | None
    example: str | None = None  # a valid value for the field's placeholder ("e.g. ...")
    unit: str | None = None  # "seconds", "bytes" or "megabytes": also shown in words


def field_info(cls: type[FileSettings] = CelerySettings) -> list[FieldInfo]:
    """Describe each field of a settings class, in declaration order."""
    from typing import get_args, get_origin

    infos = []
    for name, field in cls.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        minimum = maximum = None
        for item in field.metadata:
            minimum = getattr(item, "ge", minimum)
            maximum = getattr(item, "le", maximum)
        annotation = field.annotation
        choices = tuple(get_args(annotation)) if get_origin(annotation) is Literal else None
        default = field.get_default(call_default_factory=True)
        infos.append(
            FieldInfo(
                name=name,
                env_var=cls.env_var(name),
                title=field.title or name,
                description=field.description or "",
                group=str(extra.get("group", "General")),
                restart=extra.get("restart", "none"),  # type: ignore[arg-type]
                secret=bool(extra.get("secret", False)),
                advanced=bool(extra.get("advanced", False)),
                annotation=annotation,
                default=default,
                minimum=minimum,
                maximum=maximum,
                choices=choices,
                example=str(extra["example"]) if "example" in extra else None,
                unit=str(extra["unit"]) if "unit" in extra else None,
            )
        )
    return infos


@lru_cache(maxsize=1)
def get_settings() -> CelerySettings:
    """The settings of this process, read once on first use; a value that does not load is
    logged (one line) and replaced by its default, so a damaged file never stops a worker."""
    return CelerySettings.load_warning()
