"""The `worker` role: a Celery worker with the project's settings."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from pixcrawler_gui.cli import default_node_name


def add_parser(sub: Any) -> None:
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


def run(args: argparse.Namespace) -> int:
    from celery_core.settings.celery_settings import CelerySettings
    from celery_core.settings.crawler_settings import CrawlerSettings
    from celery_core.worker.app import create_app

    # A value that does not load never stops a worker (a supervisor would only restart it
    # into the same error): it starts with the default, and says so in one line per problem.
    settings = _worker_settings(CelerySettings.load_warning(warn=_warn))
    CrawlerSettings.load_warning(warn=_warn)  # crawl tasks read these again; said once here
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


def _warn(line: str) -> None:
    print(f"pixcrawler worker: warning: settings: {line}", file=sys.stderr, flush=True)


def _worker_settings(settings: Any) -> Any:
    """A worker started by hand joins the embedded Redis when the configured local one is down."""
    from celery_core.settings.redis_urls import is_local_url, with_db

    if "PIXCRAWLER_CELERY_BROKER_URL" in os.environ or not is_local_url(settings.broker_url):
        return settings
    from celery_core.redis_server.connection import ping
    from celery_core.redis_server.embedded import running_server

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
