"""`report.json` and `report.md`: what a crawl kept, skipped and lost, per keyword and category."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from celery_core.crawler.dataset.writer import Dataset, utc_now
from celery_core.crawler.types import Counts, KeywordResult
from celery_core.settings.envfile import atomic_write_text

_COLUMNS = (
    ("kept", "Kept"),
    ("duplicates", "Duplicates"),
    ("invalid", "Invalid"),
    ("failed", "Failed"),
    ("skipped_existing", "Already had"),
    ("in_folder", "In folder"),
)


def count_folders(root: Path, results: Iterable[KeywordResult], since: float) -> None:
    """Give each keyword (all its parts merged) its figures from the dataset itself, so they
    mean one thing however often its tasks were redelivered or re-run:

    - `in_folder`: the manifest lines of its folder whose file is there now;
    - `kept`: those of them fetched since `since` (the job's submission): added by this run,
      with what a killed delivery saved before its task came back. Never fewer than the
      tasks reported (a worker's clock behind the submitter's), never more than `in_folder`;
    - `existing`: `in_folder - kept`, what the folder held before this run.
    """
    dataset = Dataset(root)
    try:
        known = dataset.existing()
    except OSError:
        return  # no manifest to read: the tasks' own figures stand
    for result in results:
        own = known.of_folder(dataset.relative_folder(result.category, result.keyword))
        present, _ = own.on_disk(dataset.root)
        in_folder = len(present.entries)
        new = sum(1 for entry in present.entries if _epoch(entry.fetched_at) >= since)
        counts = result.counts
        counts.kept = min(in_folder, max(new, counts.kept))
        counts.in_folder = in_folder
        counts.existing = in_folder - counts.kept


def _epoch(stamp: str) -> float:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def build_report(
    results: Iterable[KeywordResult],
    *,
    title: str = "",
    elapsed_s: float | None = None,
) -> dict[str, Any]:
    """Group keyword results by category and add totals. `elapsed_s` is the job's wall time
    (keywords may run in parallel); without it the keywords' times are summed."""
    categories: dict[str, dict[str, Any]] = {}
    totals = Counts()
    keyword_time = 0.0
    for result in results:
        category = categories.setdefault(
            result.category, {"name": result.category, "counts": Counts(), "keywords": []}
        )
        category["counts"].merge(result.counts)
        totals.merge(result.counts)
        keyword_time += result.elapsed_s
        category["keywords"].append(
            {
                "keyword": result.keyword,
                "target": result.target,
                "counts": result.counts.to_dict(),
                "elapsed_s": round(result.elapsed_s, 3),
                "cancelled": result.cancelled,
                "partial": result.partial,
            }
        )
    for category in categories.values():
        category["counts"] = category["counts"].to_dict()
    return {
        "title": title,
        "generated_at": utc_now(),
        "elapsed_s": round(keyword_time if elapsed_s is None else elapsed_s, 3),
        "totals": totals.to_dict(),
        "categories": list(categories.values()),
    }


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _reasons(counts: dict[str, Any], key: str) -> str:
    reasons: dict[str, int] = counts.get(key) or {}
    return ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda i: -i[1])) or "-"


def render_markdown(report: dict[str, Any]) -> str:
    totals = report["totals"]
    lines = [f"# {report['title'] or 'Crawl report'}", ""]
    kept = (
        f"**{totals['in_folder']}** images in the folder, {totals['kept']} kept by this run"
        if totals.get("in_folder")  # counted from the dataset by the job's final step
        else f"Kept **{totals['kept']}** images"
    )
    lines.append(
        f"Generated {report['generated_at']}; {report['elapsed_s']:.1f} s. "
        f"{kept}; {totals['duplicates']} duplicates, "
        f"{totals['invalid']} invalid, {totals['failed']} failed downloads, "
        f"{totals['skipped_existing']} already kept by an earlier run."
    )
    head = "| Keyword | Target | " + " | ".join(t for _, t in _COLUMNS) + " | Time (s) | Status |"
    rule = "|" + "---|" * (len(_COLUMNS) + 4)
    for category in report["categories"]:
        lines += ["", f"## {_cell(category['name'])}", "", head, rule]
        for kw in category["keywords"]:
            counts = kw["counts"]
            status = "cancelled" if kw["cancelled"] else "partial" if kw["partial"] else "done"
            values = " | ".join(str(counts.get(key, 0)) for key, _ in _COLUMNS)
            lines.append(
                f"| {_cell(kw['keyword'])} | {kw['target']} | {values} | "
                f"{kw['elapsed_s']:.1f} | {status} |"
            )
        lines.append("")
        for kw in category["keywords"]:
            counts = kw["counts"]
            lines.append(
                f"- **{_cell(kw['keyword'])}**: invalid: {_reasons(counts, 'invalid_reasons')}; "
                f"failed: {_reasons(counts, 'failed_reasons')}"
            )
            for error in counts.get("source_errors") or []:
                lines.append(f"  - source error: {_cell(error)}")
    lines += [
        "",
        "## Totals",
        "",
        f"- invalid: {_reasons(totals, 'invalid_reasons')}",
        f"- failed: {_reasons(totals, 'failed_reasons')}",
        f"- source errors: {len(totals.get('source_errors') or [])}",
        "",
    ]
    return "\n".join(lines)


def write_report(root: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write `report.json` and `report.md` at the dataset root."""
    root = Path(root)
    json_path, md_path = root / "report.json", root / "report.md"
    atomic_write_text(json_path, json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    atomic_write_text(md_path, render_markdown(report))
    return json_path, md_path
