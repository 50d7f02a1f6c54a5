"""Print the settings table for README.md from the settings classes' own metadata.

    uv run python scripts/settings_table.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celery_core.config import CelerySettings, field_info  # noqa: E402
from celery_core.settings_base import FileSettings  # noqa: E402


def settings_classes() -> list[type[FileSettings]]:
    classes: list[type[FileSettings]] = [CelerySettings]
    try:
        from celery_core.crawler.settings import CrawlerSettings
    except ImportError:
        return classes
    return [*classes, CrawlerSettings]


def _default(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "(empty)"
    if value is None or value == "":
        return "(unset)"
    return str(value)


def table() -> str:
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for cls in settings_classes():
        for info in field_info(cls):
            meaning = info.description.replace("|", "\\|")
            if info.restart == "worker":
                meaning += " *(workers restart to apply)*"
            default = _default(info.default).replace("|", "\\|")
            lines.append(f"| `{info.env_var}` | `{default}` | {meaning} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
