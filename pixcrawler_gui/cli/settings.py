"""The `settings` role: show the settings in effect, change one, or list the files.

Both settings classes: the task system's (`PIXCRAWLER_CELERY_*`) and the crawler's
(`PIXCRAWLER_CRAWLER_*`). A key is a field name (`allowed_networks`) or its variable
(`PIXCRAWLER_CRAWLER_ALLOWED_NETWORKS`), in any case; field names are unique over both
classes. A value is typed as the settings files hold it: a list comma-separated
(`127.0.0.0/8,10.0.0.0/8`), on/off as true/false, an empty text for "not set". `set` validates
it through its class and writes that one key; `show` masks every password (`user:pass@` and
`?password=`), and `show --json` prints one flat object keyed by field name.

Settings are read leniently here: a value that does not load is reported (one line each on
stderr, naming the variable, the file and the line) and its default is shown in its place.
`show` then exits 1, so a script notices; `set` still works, and setting the damaged key
replaces its line, which is how a terminal user corrects the file.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from pixcrawler_gui.cli import EXIT_FAILED, EXIT_USAGE, fail

if TYPE_CHECKING:
    from celery_core.settings.file_settings import FileSettings


def add_parser(sub: Any) -> None:
    settings = sub.add_parser("settings", help="show or change settings")
    settings_sub = settings.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = settings_sub.add_parser("show", help="print the settings in effect (passwords masked)")
    show.add_argument("--json", action="store_true", help="print JSON")
    setter = settings_sub.add_parser("set", help="set KEY to VALUE in the environment's file")
    setter.add_argument(
        "key", help="field name or variable, e.g. task_time_limit or allowed_networks"
    )
    setter.add_argument("value", help="the value; a list comma-separated, e.g. JPEG,PNG")
    settings_sub.add_parser("path", help="print the settings files, lowest priority first")


def _classes() -> list[type[FileSettings]]:
    from celery_core.settings.celery_settings import CelerySettings
    from celery_core.settings.crawler_settings import CrawlerSettings

    return [CelerySettings, CrawlerSettings]


def _masked(value: Any) -> Any:
    """A value safe to print: every password masked, whatever the field."""
    from celery_core.settings.redis_urls import mask_secrets, mask_url

    if isinstance(value, str):
        return mask_secrets(mask_url(value))
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _shown(value: Any) -> str:
    """A value as `show` prints it: the way the settings files write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def find_field(key: str) -> tuple[type[FileSettings], str] | None:
    """The settings class and field of `key` (a field name or its variable, any case)."""
    wanted = key.strip().lower()
    for cls in _classes():
        name = wanted.removeprefix(cls.env_prefix_name.lower())
        if name in cls.model_fields:
            return cls, name
    return None


def run(args: argparse.Namespace) -> int:
    from celery_core.settings.file_settings import active_environment, env_files

    if args.action == "path":
        for path in env_files(active_environment()[0]):
            print(f"{path}{'' if path.exists() else '  (not created yet)'}")
        return 0
    if args.action == "show":
        data: dict[str, Any] = {}
        for cls in _classes():
            settings = cls.load_lenient().settings
            values = {name: _masked(value) for name, value in settings.model_dump().items()}
            if args.json:
                data.update(values)
            else:
                for name, value in values.items():
                    print(f"{cls.env_var(name):<45} {_shown(value)}")
        if args.json:
            print(json.dumps(data, indent=2, ensure_ascii=False))
        problems = _problems()
        for line in problems:
            print(f"pixcrawler: settings problem: {line}", file=sys.stderr)
        return EXIT_FAILED if problems else 0
    found = find_field(args.key)
    if found is None:
        return fail(f"unknown setting {args.key!r}; see `pixcrawler settings show`", EXIT_USAGE)
    cls, key = found
    # The text as a file holds it: each class's validators read it (lists comma-separated).
    new = cls.load_lenient().settings.updated(**{key: args.value})
    path = new.save(rewrite=frozenset({key}))
    if cls.overridden_by_environment(key):
        print(f"note: {cls.env_var(key)} is set in the environment and wins over {path}")
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
