"""The README's settings table is generated from the settings' own metadata: keep it current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_settings_table_is_current() -> None:
    spec = importlib.util.spec_from_file_location(
        "settings_table", REPO / "scripts/settings_table.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert module.readme_with_table(readme) == readme, (
        "README.md's settings table is stale: run `uv run python scripts/settings_table.py --write`"
    )


def test_readme_names_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "uv run pixcrawler " in readme and "uv run pytest" in readme
    ci = (REPO / ".ci/run").read_text(encoding="utf-8")
    assert "uv run pytest" in ci
