"""The `redis` role: the embedded Redis server in the foreground."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    sub.add_parser("redis", help="run the embedded Redis server in the foreground")


def run(args: argparse.Namespace) -> int:
    from celery_core.redis_server.foreground import run as run_foreground

    return run_foreground()
