"""`pixcrawler gui|worker|crawl|doctor|redis|settings|self-test`: one entry point, several roles.

Each role is a module of this package with `add_parser(sub)` and `run(args)`; `ROLES` lists
them. Role modules import their heavy dependencies inside `run`, and only the `gui` role
imports Qt, so a worker on a headless machine needs no display libraries.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, Protocol

from celery_core.settings.file_settings import SettingsError
from pixcrawler_gui.cli import (
    EXIT_USAGE,
    crawl,
    doctor,
    fail,
    gui,
    redis,
    self_test,
    settings,
    worker,
)


class Role(Protocol):
    def add_parser(self, sub: Any) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


ROLES: dict[str, Role] = {
    "gui": gui,
    "worker": worker,
    "crawl": crawl,
    "doctor": doctor,
    "redis": redis,
    "settings": settings,
    "self-test": self_test,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixcrawler",
        description="PixCrawler Desktop: build clean image datasets from keywords.",
    )
    sub = parser.add_subparsers(dest="role", metavar="ROLE")
    for role in ROLES.values():
        role.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help")):
        args_list.insert(0, "gui")
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.role is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return ROLES[args.role].run(args)
    except SettingsError as exc:
        return fail(f"invalid settings: {exc}")
    except KeyboardInterrupt:
        return 130


def gui_main() -> int:
    return main(["gui", *sys.argv[1:]])
