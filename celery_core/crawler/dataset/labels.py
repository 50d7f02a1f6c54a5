"""Label files for a finished dataset: `labels.txt`, `.json`, `.csv` and `.yaml` at its root.

Every image's label is its category; the keyword it was found with is kept alongside. Only
manifest entries whose file still exists are listed, so images deleted by hand drop out.
YAML is written by hand (JSON strings are valid YAML double-quoted scalars).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from celery_core.crawler.dataset.writer import Dataset, ManifestEntry, file_size
from celery_core.settings.envfile import atomic_write_text

LABEL_FORMATS = ("txt", "json", "csv", "yaml")
_COLUMNS = ("path", "label", "keyword", "width", "height", "format", "sha256", "url", "source")


def _row(entry: ManifestEntry) -> dict[str, Any]:
    return {
        "path": entry.path,
        "label": entry.category,
        "keyword": entry.keyword,
        "width": entry.width,
        "height": entry.height,
        "format": entry.format,
        "sha256": entry.sha256,
        "url": entry.url,
        "source": entry.source,
    }


def present_entries(
    root: Path, entries: Iterable[ManifestEntry] | None = None
) -> list[ManifestEntry]:
    """Manifest entries whose file exists (and is not empty), one per path, sorted by path."""
    root = Path(root)
    chosen: dict[str, ManifestEntry] = {}
    for entry in Dataset(root).read_manifest() if entries is None else entries:
        if file_size(root / entry.path):
            chosen[entry.path] = entry
    return [chosen[path] for path in sorted(chosen)]


def render_txt(entries: Sequence[ManifestEntry]) -> str:
    """One `path<TAB>label` line per image."""
    return "".join(f"{e.path}\t{e.category}\n" for e in entries)


def render_json(entries: Sequence[ManifestEntry]) -> str:
    classes = sorted({e.category for e in entries})
    document = {"classes": classes, "images": [_row(e) for e in entries]}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def render_csv(entries: Sequence[ManifestEntry]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for entry in entries:
        writer.writerow({k: "" if v is None else v for k, v in _row(entry).items()})
    return out.getvalue()


def _yaml_scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def render_yaml(entries: Sequence[ManifestEntry]) -> str:
    classes = sorted({e.category for e in entries})
    lines = (
        ["classes:", *[f"  - {_yaml_scalar(n)}" for n in classes]] if classes else ["classes: []"]
    )
    if not entries:
        lines.append("images: []")
    else:
        lines.append("images:")
        for entry in entries:
            row = list(_row(entry).items())
            key, value = row[0]
            lines.append(f"  - {key}: {_yaml_scalar(value)}")
            lines += [f"    {k}: {_yaml_scalar(v)}" for k, v in row[1:]]
    return "\n".join(lines) + "\n"


_RENDERERS = {"txt": render_txt, "json": render_json, "csv": render_csv, "yaml": render_yaml}


def write_labels(
    root: Path,
    formats: Iterable[str] = LABEL_FORMATS,
    entries: Iterable[ManifestEntry] | None = None,
) -> list[Path]:
    """Write `labels.<format>` for each format; returns the files written."""
    root = Path(root)
    present = present_entries(root, entries)
    written = []
    for fmt in formats:
        fmt = fmt.lower().lstrip(".")
        if fmt == "yml":
            fmt = "yaml"
        render = _RENDERERS.get(fmt)
        if render is None:
            raise ValueError(f"unknown label format {fmt!r}; use {', '.join(LABEL_FORMATS)}")
        path = root / f"labels.{fmt}"
        atomic_write_text(path, render(present))
        written.append(path)
    return written
