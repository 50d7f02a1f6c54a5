"""`pixcrawler gui|worker|crawl|doctor|redis|settings|self-test`: one entry point, several roles.

Only the `gui` role imports Qt, so a worker on a headless machine needs no display libraries.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from celery_core.settings_base import SettingsError

EXIT_USAGE = 2
ROLES = ("gui", "worker", "crawl", "doctor", "redis", "settings", "self-test")


def worker_entry_argv() -> list[str]:
    """How to start this program again in another role (the packaged app re-runs itself)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "pixcrawler_gui"]


def default_node_name(prefix: str = "pixcrawler") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"


def _fail(message: str, code: int = 1) -> int:
    print(f"pixcrawler: {message}", file=sys.stderr)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixcrawler",
        description="PixCrawler Desktop: build clean image datasets from keywords.",
    )
    sub = parser.add_subparsers(dest="role", metavar="ROLE")

    gui = sub.add_parser("gui", help="start the desktop app (the default)")
    gui.add_argument("--screenshot", metavar="FILE.png", help="save the main window and quit")

    worker = sub.add_parser("worker", help="run a Celery worker with the project's settings")
    worker.add_argument("--name", help="node name (default: pixcrawler-<random>@<host>)")
    worker.add_argument("--pool", choices=["prefork", "threads", "solo"], help="pool type")
    worker.add_argument("--concurrency", type=int, help="tasks at once (default: settings)")
    worker.add_argument(
        "--queues", default="crawl,validation,default", help="comma-separated queues to consume"
    )
    worker.add_argument("--loglevel", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    worker.add_argument(
        "--include", action="append", default=[], metavar="MODULE", help="extra task module"
    )

    doctor = sub.add_parser("doctor", help="check broker, backend, a task round trip, results")
    doctor.add_argument(
        "--no-embedded", action="store_true", help="do not start an embedded Redis if none answers"
    )

    sub.add_parser("redis", help="run the embedded Redis server in the foreground")

    settings = sub.add_parser("settings", help="show or change settings")
    settings_sub = settings.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = settings_sub.add_parser("show", help="print the settings in effect (passwords masked)")
    show.add_argument("--json", action="store_true", help="print JSON")
    setter = settings_sub.add_parser("set", help="set KEY to VALUE in the environment's file")
    setter.add_argument("key", help="field name, e.g. task_time_limit or broker_url")
    setter.add_argument("value")
    settings_sub.add_parser("path", help="print the settings files, lowest priority first")

    from pixcrawler_gui import cli_crawl

    cli_crawl.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help")):
        args_list.insert(0, "gui")
    parser = build_parser()
    args = parser.parse_args(args_list)
    handlers = {
        "gui": run_gui_role,
        "worker": run_worker,
        "doctor": run_doctor,
        "redis": run_redis,
        "settings": run_settings,
    }
    from pixcrawler_gui import cli_crawl

    handlers.update(cli_crawl.HANDLERS)
    if args.role is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return handlers[args.role](args)
    except SettingsError as exc:
        return _fail(f"invalid settings: {exc}")
    except KeyboardInterrupt:
        return 130


def gui_main() -> int:
    return main(["gui", *sys.argv[1:]])


def run_gui_role(args: argparse.Namespace) -> int:
    from pixcrawler_gui.app import run_gui

    argv = ["--screenshot", args.screenshot] if args.screenshot else []
    return run_gui(argv)


def run_worker(args: argparse.Namespace) -> int:
    from celery_core.app import create_app
    from celery_core.config import CelerySettings

    settings = _worker_settings(CelerySettings.load())
    if args.pool:
        settings = settings.updated(worker_pool=args.pool)
    if args.concurrency:
        settings = settings.updated(worker_concurrency=args.concurrency)
    app = create_app(settings)
    for module in args.include:
        app.loader.import_from_cwd(module)
    argv = [
        "worker",
        "--hostname",
        args.name or default_node_name(),
        "--pool",
        settings.resolved_pool,
        "--concurrency",
        str(settings.resolved_concurrency),
        "--queues",
        args.queues,
        "--loglevel",
        args.loglevel,
        "--task-events",
        "--without-mingle",
        "--without-gossip",
    ]
    if sys.platform == "darwin":
        os.environ.setdefault("OBJC_DISABLE_INITIALIZE_FORK_SAFETY", "YES")
    app.worker_main(argv)
    return 0


def _worker_settings(settings: Any) -> Any:
    """A worker started by hand joins the embedded Redis when the configured local one is down."""
    from celery_core.urls import is_local_url, with_db

    if "PIXCRAWLER_CELERY_BROKER_URL" in os.environ or not is_local_url(settings.broker_url):
        return settings
    from celery_core.connection import ping
    from celery_core.embedded_redis import running_server

    if ping(settings.broker_url, timeout=1.0) is None:
        return settings
    server = running_server()
    if server is None:
        return settings  # Celery keeps retrying until the configured Redis comes up
    print(f"Using the embedded Redis on 127.0.0.1:{server.port}", file=sys.stderr)
    return settings.updated(
        broker_url=with_db(server.url(), _db_of(settings.broker_url, 0)),
        result_backend=with_db(server.url(), _db_of(settings.result_backend, 1)),
    )


def _db_of(url: str, default: int) -> int:
    path = url.rsplit("/", 1)[-1]
    return int(path) if path.isdigit() else default


def run_doctor(args: argparse.Namespace) -> int:
    from celery_core.config import CelerySettings
    from celery_core.connection import RedisUnavailable, effective_settings, resolve_endpoints
    from celery_core.verify import run_checks

    settings = CelerySettings.load()
    try:
        endpoints, server = resolve_endpoints(settings, allow_embedded=not args.no_embedded)
    except RedisUnavailable as exc:
        return _fail(str(exc))
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


def run_redis(args: argparse.Namespace) -> int:
    from celery_core.embedded_redis import run_foreground

    return run_foreground()


def run_settings(args: argparse.Namespace) -> int:
    from celery_core.config import CelerySettings
    from celery_core.settings_base import env_files

    if args.action == "path":
        for path in env_files():
            print(f"{path}{'' if path.exists() else '  (not created yet)'}")
        return 0
    settings = CelerySettings.load()
    if args.action == "show":
        data = settings.masked()
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            for key, value in data.items():
                print(f"{CelerySettings.env_var(key):<45} {value}")
        return 0
    key = args.key.lower().removeprefix("pixcrawler_celery_")
    if key not in CelerySettings.model_fields:
        return _fail(f"unknown setting {args.key!r}; see `pixcrawler settings show`", 2)
    raw: Any = args.value
    if CelerySettings.model_fields[key].annotation is list[str]:
        raw = [v.strip() for v in args.value.split(",") if v.strip()]
    new = settings.updated(**{key: raw})
    path = new.save()
    if CelerySettings.overridden_by_environment(key):
        print(f"note: {CelerySettings.env_var(key)} is set in the environment and wins over {path}")
    print(f"saved {key} to {path}")
    return 0
