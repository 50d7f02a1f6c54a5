"""The `settings` role: show the settings in effect, change one, or list the files.

Settings are read leniently here: a value that does not load is reported (one line each on
stderr, naming the variable, the file and the line) and its default is shown in its place.
`show` then exits 1, so a script notices; `set` still works, and setting the damaged key
replaces its line, which is how a terminal user corrects the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pixcrawler_gui.cli import EXIT_FAILED, EXIT_USAGE, fail


def add_parser(sub: Any) -> None:
    settings = sub.add_parser("settings", help="show or change settings")
    settings_sub = settings.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = settings_sub.add_parser("show", help="print the settings in effect (passwords masked)")
    show.add_argument("--json", action="store_true", help="print JSON")
    setter = settings_sub.add_parser("set", help="set KEY to VALUE in the environment's file")
    setter.add_argument("key", help="field name, e.g. task_time_limit or broker_url")
    setter.add_argument("value")
    settings_sub.add_parser("path", help="print the settings files, lowest priority first")


def run(args: argparse.Namespace) -> int:
    from celery_core.settings.celery_settings import CelerySettings
    from celery_core.settings.file_settings import active_environment, env_files

    if args.action == "path":
        for path in env_files(active_environment()[0]):
            print(f"{path}{'' if path.exists() else '  (not created yet)'}")
        return 0
    settings = CelerySettings.load_lenient().settings
    if args.action == "show":
        data = settings.masked()
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            for key, value in data.items():
                print(f"{CelerySettings.env_var(key):<45} {value}")
        problems = _problems()
        for line in problems:
            print(f"pixcrawler: settings problem: {line}", file=sys.stderr)
        return EXIT_FAILED if problems else 0
    key = args.key.lower().removeprefix("pixcrawler_celery_")
    if key not in CelerySettings.model_fields:
        return fail(f"unknown setting {args.key!r}; see `pixcrawler settings show`", EXIT_USAGE)
    raw: Any = args.value
    if CelerySettings.model_fields[key].annotation is list[str]:
        raw = [v.strip() for v in args.value.split(",") if v.strip()]
    new = settings.updated(**{key: raw})
    path = new.save(rewrite=frozenset({key}))
    if CelerySettings.overridden_by_environment(key):
        print(f"note: {CelerySettings.env_var(key)} is set in the environment and wins over {path}")
    print(f"saved {key} to {path}")
    for line in _problems():
        print(f"pixcrawler: settings problem: {line}", file=sys.stderr)
    return 0


def _problems() -> list[str]:
    """What in the settings files (or environment) could not be used, one line each."""
    from celery_core.settings.celery_settings import CelerySettings
    from celery_core.settings.crawler_settings import CrawlerSettings
    from celery_core.settings.lenient import merge_problems

    found = merge_problems(
        CelerySettings.load_lenient().problems, CrawlerSettings.load_lenient().problems
    )
    return [problem.log_line() for problem in found]
