"""The `crawl` and `self-test` roles of the `pixcrawler` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


def add_parsers(sub: Any) -> None:
    crawl = sub.add_parser("crawl", help="crawl a job file into a dataset")
    crawl.add_argument("job", help="the job file (JSON)")
    sub.add_parser("self-test", help="crawl a small local site end to end and check the result")


def run_crawl(args: argparse.Namespace) -> int:
    print("pixcrawler: crawl is not available in this build yet", file=sys.stderr)
    return 1


def run_self_test(args: argparse.Namespace) -> int:
    print("pixcrawler: self-test is not available in this build yet", file=sys.stderr)
    return 1


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "crawl": run_crawl,
    "self-test": run_self_test,
}
