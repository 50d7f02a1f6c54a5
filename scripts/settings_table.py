"""Print the settings table for README.md from the settings classes' own metadata.

uv run python scripts/settings_table.py            # print it
uv run python scripts/settings_table.py --write    # update README.md
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celery_core.settings.celery_settings import CelerySettings, field_info
from celery_core.settings.file_settings import FileSettings


def settings_classes() -> list[type[FileSettings]]:
    classes: list[type[FileSettings]] = [CelerySettings]
    try:
        from celery_core.settings.crawler_settings import CrawlerSettings
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


START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def readme_with_table(readme: str) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    readme = Path(__file__).resolve().parents[1] / "README.md"
    if "--write" in sys.argv:
        readme.write_text(readme_with_table(readme.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(table())
