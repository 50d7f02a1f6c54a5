"""Where the icon and other resource files are, from a source tree, a wheel or a frozen app."""

from __future__ import annotations

import sys
from pathlib import Path

# pixcrawler_gui/: a wheel carries the files in pixcrawler_gui/resources, a source tree beside it.
_PACKAGE = Path(__file__).resolve().parents[1]


def resource_dirs() -> list[Path]:
    """Candidate folders, most specific first."""
    dirs = [_PACKAGE / "resources", _PACKAGE.parent / "resources"]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        dirs.insert(0, Path(bundle) / "resources")
    return dirs


def resource_path(name: str) -> Path | None:
    for folder in resource_dirs():
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None
