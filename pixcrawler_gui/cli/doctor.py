"""The `doctor` role: broker, result backend, a task round trip and its result, checked."""

from __future__ import annotations

import argparse
from typing import Any

from pixcrawler_gui.cli import fail, worker_entry_argv


def add_parser(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="check broker, backend, a task round trip, results")
    doctor.add_argument(
        "--no-embedded", action="store_true", help="do not start an embedded Redis if none answers"
    )


def run(args: argparse.Namespace) -> int:
    from celery_core.diagnostics.verify import run_checks
    from celery_core.redis_server.connection import (
        RedisUnavailable,
        effective_settings,
        resolve_endpoints,
    )
    from celery_core.settings.celery_settings import CelerySettings

    settings = CelerySettings.load()
    try:
        endpoints, server = resolve_endpoints(settings, allow_embedded=not args.no_embedded)
    except RedisUnavailable as exc:
        return fail(str(exc))
    try:
        if endpoints.embedded is not None:
            print(f"Using the embedded Redis on 127.0.0.1:{endpoints.embedded.port}")
        worker_argv = [*worker_entry_argv(), "worker", "--pool", "solo", "--queues", "default"]
        report = run_checks(effective_settings(settings, endpoints), worker_argv, on_check=_show)
    finally:
        if server is not None:
            server.stop()
    if report.hint:
        print(report.hint)
    print("All checks passed." if report.ok else "Some checks failed.")
    return 0 if report.ok else 1


def _show(check: Any) -> None:
    status = "PASS" if check.ok else "FAIL"
    print(f"{status}  {check.name:<20} {check.seconds * 1000:8.0f} ms  {check.detail}", flush=True)
