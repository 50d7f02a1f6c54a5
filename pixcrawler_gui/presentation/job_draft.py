"""The crawl form's content as plain data: turned into a job dict, checked by `parse_job`, and
each problem line of a `JobError` handed back to the field it names.

Categories are a list here, not a dict as in the job file, so that two categories can carry
the same name while someone types; that case is reported before the file format sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from celery_core.jobs.errors import JobError, format_path
from celery_core.jobs.spec import LABEL_FORMATS, JobOptions, JobSpec, LoadedJob, parse_job

EntryKind = Literal["search", "urls", "website"]
FieldKey = tuple[Any, ...]  # ("dataset_name",), ("option", name), ("category", i), ("entry", i, j)
_TAGS = ("keyword", "website source", "url list source")
_DEFAULTS = JobOptions()
_PART_NAMES = {
    "name": "Name",
    "website": "Website",
    "max_pages": "Pages",
    "max_depth": "Link depth",
    "urls": "URLs",
    "urls_file": "URL file",
}


@dataclass
class EntryDraft:
    """One keyword or source of a category."""

    name: str
    kind: EntryKind = "search"
    urls: list[str] = field(default_factory=list)
    website: str = ""
    max_pages: int = 100
    max_depth: int = 2

    def to_job(self) -> Any:
        if self.kind == "search":
            return self.name
        if self.kind == "urls":
            return {"name": self.name, "urls": list(self.urls)}
        return {
            "name": self.name,
            "website": self.website,
            "max_pages": self.max_pages,
            "max_depth": self.max_depth,
        }

    @classmethod
    def from_job(cls, value: Any) -> EntryDraft:
        if isinstance(value, str):
            return cls(value)
        if "website" in value:
            return cls(
                str(value.get("name", "")),
                "website",
                website=str(value["website"]),
                max_pages=int(value.get("max_pages", 100)),
                max_depth=int(value.get("max_depth", 2)),
            )
        return cls(str(value.get("name", "")), "urls", urls=[str(u) for u in value["urls"]])


@dataclass
class CategoryDraft:
    name: str
    entries: list[EntryDraft] = field(default_factory=list)


@dataclass
class JobDraft:
    dataset_name: str = ""
    categories: list[CategoryDraft] = field(default_factory=list)
    max_images: int = _DEFAULTS.max_images
    min_width: int = _DEFAULTS.min_width
    min_height: int = _DEFAULTS.min_height
    dedup_threshold: int = _DEFAULTS.dedup_threshold
    engines: list[str] = field(default_factory=lambda: list(_DEFAULTS.engines))
    generate_labels: bool = True
    label_formats: list[str] = field(default_factory=lambda: list(LABEL_FORMATS))
    output_dir: str = ""

    def to_job_dict(self) -> dict[str, Any]:
        return {
            "dataset_name": self.dataset_name,
            "categories": {c.name: [e.to_job() for e in c.entries] for c in self.categories},
            "options": {
                "max_images": self.max_images,
                "output_dir": self.output_dir.strip() or None,
                "engines": list(self.engines),
                "min_width": self.min_width,
                "min_height": self.min_height,
                "dedup_threshold": self.dedup_threshold,
                "generate_labels": self.generate_labels,
                "label_formats": list(self.label_formats),
            },
        }

    @classmethod
    def from_spec(cls, spec: JobSpec, output_dir: str | None = None) -> JobDraft:
        """A draft of a validated job (URL files read into the lists)."""
        data = spec.to_file_dict(inline_urls=True)
        o = spec.options
        root = output_dir if output_dir is not None else (o.output_dir and str(spec.dataset_root()))
        return cls(
            dataset_name=spec.dataset_name,
            categories=[
                CategoryDraft(name, [EntryDraft.from_job(v) for v in values])
                for name, values in data["categories"].items()
            ],
            max_images=o.max_images,
            min_width=o.min_width,
            min_height=o.min_height,
            dedup_threshold=o.dedup_threshold,
            engines=list(o.engines),
            generate_labels=o.generate_labels,
            label_formats=list(o.label_formats),
            output_dir=root or "",
        )


@dataclass(frozen=True)
class Checked:
    """The outcome of checking a draft: a job, or problems by field."""

    loaded: LoadedJob | None
    problems: dict[FieldKey, list[str]]

    @property
    def valid(self) -> bool:
        return self.loaded is not None and not self.problems

    def for_field(self, key: FieldKey) -> list[str]:
        return self.problems.get(key, [])

    def count(self) -> int:
        return sum(len(p) for p in self.problems.values())


def check_draft(draft: JobDraft, base_dir: Path | None = None) -> Checked:
    problems: dict[FieldKey, list[str]] = {}
    seen: dict[str, int] = {}
    for index, category in enumerate(draft.categories):
        name = category.name.strip()
        if name in seen:
            problems.setdefault(("category", index), []).append(
                f"another category is already called {name!r}"
            )
        seen.setdefault(name, index)
    if not draft.categories:
        problems[("categories",)] = ["add at least one category with a keyword"]
    if problems:
        return Checked(None, problems)
    try:
        loaded = parse_job(draft.to_job_dict(), base_dir=base_dir)
    except JobError as exc:
        return Checked(None, map_problems(draft, exc.problems))
    return Checked(loaded, {})


_PLACE = re.compile(r"^(?P<place>[^:]*?): (?P<message>.*)$", re.S)


def map_problems(draft: JobDraft, lines: tuple[str, ...]) -> dict[FieldKey, list[str]]:
    """Hand each `JobError` line to the field its place names; the rest go to ("general",)."""
    prefixes: list[tuple[str, FieldKey]] = [("dataset_name", ("dataset_name",))]
    prefixes += [(f"options.{name}", ("option", name)) for name in JobOptions.model_fields]
    prefixes.append(("categories", ("categories",)))
    for ci, category in enumerate(draft.categories):
        place = format_path(("categories", category.name.strip()), _TAGS)
        prefixes.append((place, ("category", ci)))
        for ei in range(len(category.entries)):
            prefixes.append((f"{place}[{ei}]", ("entry", ci, ei)))
    prefixes.sort(key=lambda p: len(p[0]), reverse=True)
    found: dict[FieldKey, list[str]] = {}
    for line in lines:
        key: FieldKey = ("general",)
        text = line
        for prefix, candidate in prefixes:
            if line.startswith(prefix) and line[len(prefix) : len(prefix) + 1] in (".", "[", ":"):
                key, text = candidate, _rest(line[len(prefix) :])
                break
        found.setdefault(key, []).append(text)
    return found


def _rest(tail: str) -> str:
    """'.website: bad URL' -> 'Website: bad URL'; ': required' -> 'required'."""
    match = _PLACE.match(tail.lstrip("."))
    if match is None:
        return tail.lstrip(".: ")
    place, message = match.group("place"), match.group("message")
    if not place:
        return message
    head = re.match(r"^([A-Za-z_]+)(?:\[(\d+)\])?", place)
    if head is None:
        return f"{place}: {message}"
    label = _PART_NAMES.get(head.group(1), head.group(1).replace("_", " ").capitalize())
    if head.group(2) is not None:
        label += f" (line {int(head.group(2)) + 1})"
    return f"{label}: {message}"
