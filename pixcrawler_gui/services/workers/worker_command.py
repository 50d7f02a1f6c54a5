"""The command line and environment of a worker process: pure functions, no side effects.

Passwords travel only in the environment: a command line is readable by every user of the
computer (`ps`), an environment is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from celery_core.worker.app import QUEUES

DEFAULT_QUEUES: tuple[str, ...] = tuple(QUEUES)
NODE_PREFIX = "pixcrawler-local-"
BROKER_ENV = "PIXCRAWLER_CELERY_BROKER_URL"
BACKEND_ENV = "PIXCRAWLER_CELERY_RESULT_BACKEND"
POOLS = ("prefork", "threads", "solo")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class WorkerSpec:
    """How one worker runs: its node name, pool, concurrency and queues."""

    name: str
    pool: str = "prefork"
    concurrency: int = 1
    queues: tuple[str, ...] = DEFAULT_QUEUES
    loglevel: str = "INFO"
    include: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if "@" not in self.name or self.name.startswith("@") or self.name.endswith("@"):
            raise ValueError(f"node name {self.name!r} must look like name@host")
        if self.pool not in POOLS:
            raise ValueError(f"pool {self.pool!r} is not one of {', '.join(POOLS)}")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not self.queues:
            raise ValueError("a worker needs at least one queue")
        if self.loglevel.upper() not in LOG_LEVELS:
            raise ValueError(f"log level {self.loglevel!r} is not one of {', '.join(LOG_LEVELS)}")


def node_name(number: int, hostname: str, prefix: str = NODE_PREFIX) -> str:
    """`pixcrawler-local-1@myhost`."""
    return f"{prefix}{number}@{hostname}"


def next_node_name(taken: Sequence[str], hostname: str, prefix: str = NODE_PREFIX) -> str:
    """The lowest-numbered node name not in `taken` (two nodes with one name confuse Celery)."""
    used = set(taken)
    number = 1
    while node_name(number, hostname, prefix) in used:
        number += 1
    return node_name(number, hostname, prefix)


def entry_argv(executable: str, frozen: bool) -> list[str]:
    """How to run this program again: the packaged executable, or the module under Python."""
    if frozen:
        return [executable]
    return [executable, "-m", "pixcrawler_gui"]


def worker_command(spec: WorkerSpec, executable: str, frozen: bool = False) -> list[str]:
    """The full argv of `pixcrawler worker` for `spec`."""
    argv = [
        *entry_argv(executable, frozen),
        "worker",
        "--name",
        spec.name,
        "--pool",
        spec.pool,
        "--concurrency",
        str(spec.concurrency),
        "--queues",
        ",".join(spec.queues),
        "--loglevel",
        spec.loglevel.upper(),
    ]
    for module in spec.include:
        argv += ["--include", module]
    return argv


def worker_environment(
    base: Mapping[str, str],
    broker_url: str,
    result_backend: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The worker's environment: `base` plus the endpoints it must use, whatever the files say."""
    env = dict(base)
    env.update(extra or {})
    env[BROKER_ENV] = broker_url
    env[BACKEND_ENV] = result_backend
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the panel as they are written
    return env
