"""The `gui` role (the default): the desktop app. The only role that imports Qt."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    gui = sub.add_parser("gui", help="start the desktop app (the default)")
    gui.add_argument("--screenshot", metavar="FILE.png", help="save the main window and quit")


def run(args: argparse.Namespace) -> int:
    from pixcrawler_gui.app import run_gui

    argv = ["--screenshot", args.screenshot] if args.screenshot else []
    return run_gui(argv)
