"""The rooms of the house stay apart, and the code stays typed and linted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; run `uv sync`")
    return found


def test_celery_core_never_loads_qt_or_the_gui() -> None:
    code = (
        "import pkgutil, importlib, sys, celery_core\n"
        "for m in pkgutil.walk_packages(celery_core.__path__, 'celery_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('PySide6', 'qasync', 'pixcrawler_gui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_crawl_engine_never_loads_celery() -> None:
    code = (
        "import pkgutil, importlib, sys, celery_core.crawler as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'celery_core.crawler.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('celery', 'kombu'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_cli_roles_other_than_gui_do_not_load_qt() -> None:
    code = (
        "import sys\nfrom pixcrawler_gui.cli.main import build_parser\nbuild_parser()\n"
        "print(','.join(n for n in sys.modules if n.startswith('PySide6')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_import_contracts_hold() -> None:
    out = subprocess.run(
        [_tool("lint-imports")], cwd=REPO, capture_output=True, text=True, env=os.environ
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_is_clean() -> None:
    out = subprocess.run([_tool("ruff"), "check", "."], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_is_applied() -> None:
    out = subprocess.run(
        [_tool("ruff"), "format", "--check", "."], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_is_clean() -> None:
    out = subprocess.run([_tool("mypy")], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr
