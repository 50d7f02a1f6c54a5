"""The job file: what to crawl and how, shared by the crawl form, the CLI and the tasks.

The format is PixCrawler's original config (see docs/job-file.md and docs/job.schema.json).
`load_job(path)` / `parse_job(data, base_dir)` validate it into a `JobSpec`, resolve
`urls_file` entries, and return the warnings about keys they ignored. `JobSpec.work_items()`
flattens a job into the units of work that tasks run; `split_urls` cuts a long URL list into
chunks so several workers can share it.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from celery_core.crawler.sources.url_list import describe_url_problem, url_problem
from celery_core.jobs.errors import JobError, describe_errors, format_path
from celery_core.jobs.limits import (
    MAX_JOB_BYTES,
    MAX_URLS_FILE_BYTES,
    dataset_folder_problem,
    load_json,
    path_text_problem,
    read_capped,
    shared_folders,
)
from celery_core.jobs.work_items import WebsiteSettings, WorkItem, split_urls

EngineName = Literal["bing", "duckduckgo", "google", "baidu"]
LabelFormat = Literal["txt", "json", "csv", "yaml"]
KNOWN_ENGINES: tuple[str, ...] = get_args(EngineName)
LABEL_FORMATS: tuple[str, ...] = get_args(LabelFormat)

_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{p}{i}" for p in ("com", "lpt") for i in range(1, 10)]
)
_FOLDER_FORBIDDEN = frozenset('<>:"/\\|?*')


def folder_name_problem(name: str) -> str | None:
    """Why `name` cannot be a folder on Linux, macOS and Windows alike, or None if it can."""
    if not name.strip():
        return "must not be empty"
    if name in (".", ".."):
        return "is not a folder name"
    bad = sorted({c for c in name if c in _FOLDER_FORBIDDEN or ord(c) < 32})
    if bad:
        return "must not contain " + " ".join(repr(c) for c in bad)
    if name.endswith((".", " ")):
        return "must not end with a dot or a space"
    if name.split(".")[0].strip().lower() in _WINDOWS_RESERVED:
        return "is a reserved device name on Windows"
    if len(name.encode()) > 200:
        return "is too long (at most 200 bytes)"
    return None


def _folder_name(value: str) -> str:
    problem = folder_name_problem(value)
    if problem:
        raise ValueError(f"{value!r} cannot be used as a folder name: it {problem}")
    return value


def _http_url(value: str) -> str:
    reason = url_problem(value)
    if reason:
        raise ValueError(describe_url_problem(value, reason))
    return value


NonEmpty = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1)]
FolderName = Annotated[
    NonEmpty,
    AfterValidator(_folder_name),
    Field(json_schema_extra={"pattern": r'^[^<>:"/\\|?*\x00-\x1f]+$'}),
]
HttpUrl = Annotated[
    NonEmpty,
    AfterValidator(_http_url),
    Field(json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://", "format": "uri"}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WebsiteEntry(_Strict):
    """Crawl a website from a start page, staying on its host."""

    name: NonEmpty = Field(description="Display name; also the keyword folder.")
    website: HttpUrl = Field(description="Start page (http or https).")
    max_pages: StrictInt = Field(
        default=100, ge=1, le=100_000, description="Pages to fetch at most."
    )
    max_depth: StrictInt = Field(
        default=2, ge=0, le=50, description="Link hops from the start page."
    )


class UrlListEntry(_Strict):
    """Download a list of image URLs, given inline (`urls`) or in a text file (`urls_file`)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["urls"]}, {"required": ["urls_file"]}]}
    )

    name: NonEmpty = Field(description="Display name; also the keyword folder.")
    urls: list[HttpUrl] | None = Field(default=None, min_length=1, description="Image URLs.")
    urls_file: NonEmpty | None = Field(
        default=None,
        description="Text file with one URL per line (blank lines and # comments ignored), "
        "relative to the job file's folder.",
    )
    _file_urls: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _resolve_file(self, info: ValidationInfo) -> UrlListEntry:
        if (self.urls is None) == (self.urls_file is None):
            raise ValueError("give exactly one of 'urls' or 'urls_file'")
        if self.urls_file is not None:
            base = (info.context or {}).get("base_dir") or Path.cwd()
            self._file_urls = _read_urls_file(Path(base), self.urls_file)
        return self

    @property
    def resolved_urls(self) -> tuple[str, ...]:
        """The URLs in order, each once, whether given inline or read from `urls_file`."""
        return tuple(dict.fromkeys(self.urls if self.urls is not None else self._file_urls))


def _read_urls_file(base_dir: Path, name: str) -> tuple[str, ...]:
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    problem = path_text_problem(name)
    if problem:
        raise ValueError(f"urls_file {problem}")
    if not path.exists():
        raise ValueError(f"urls_file {name!r} not found (looked for {path})")
    # A cap, and regular files only: `/dev/zero` or a FIFO would otherwise be read forever.
    text = read_capped(path, MAX_URLS_FILE_BYTES, f"urls_file {name!r}")
    urls: list[str] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        url = line.strip()
        if not url or url.startswith("#"):
            continue
        reason = url_problem(url)
        if reason:
            problems.append(f"line {number}: {describe_url_problem(url, reason)}")
        urls.append(url)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ValueError(f"urls_file {name!r}: " + "; ".join(problems[:5]) + more)
    if not urls:
        raise ValueError(f"urls_file {name!r} ({path}) lists no URLs")
    return tuple(urls)


def _entry_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "keyword"
    if isinstance(value, Mapping):
        if "website" in value:
            return "website source"
        if "urls" in value or "urls_file" in value:
            return "url list source"
        return None
    if isinstance(value, WebsiteEntry):
        return "website source"
    if isinstance(value, UrlListEntry):
        return "url list source"
    return None


Entry = Annotated[
    Annotated[NonEmpty, Tag("keyword")]
    | Annotated[WebsiteEntry, Tag("website source")]
    | Annotated[UrlListEntry, Tag("url list source")],
    Discriminator(
        _entry_kind,
        custom_error_type="entry_kind",
        custom_error_message="expected a keyword string or a source object",
    ),
]
_SOURCE_MODELS: dict[str, type[BaseModel]] = {
    "website source": WebsiteEntry,
    "url list source": UrlListEntry,
}
_TAGS = frozenset({"keyword", *_SOURCE_MODELS})


def _engines(*names: Any) -> list[EngineName]:
    return list(names)


def _formats(*names: Any) -> list[LabelFormat]:
    return list(names)


class JobOptions(_Strict):
    max_images: StrictInt = Field(
        default=100, ge=1, le=100_000, description="Images kept per keyword."
    )
    output_dir: NonEmpty | None = Field(
        default=None,
        description="Dataset root folder; default: PixCrawler/<dataset_name> in the user's "
        "Pictures folder. A relative path is taken from the job file's folder.",
    )
    engines: list[EngineName] = Field(
        default_factory=lambda: _engines("bing", "duckduckgo"),
        min_length=1,
        description="Search engines tried in this order for keyword strings.",
    )
    min_width: StrictInt = Field(
        default=100, ge=1, description="Smaller images are dropped (pixels)."
    )
    min_height: StrictInt = Field(
        default=100, ge=1, description="Smaller images are dropped (pixels)."
    )
    dedup_threshold: StrictInt = Field(
        default=6,
        ge=0,
        le=32,
        description="Max perceptual-hash distance (bits) between duplicates.",
    )
    generate_labels: StrictBool = Field(default=True, description="Write label files.")
    label_formats: list[LabelFormat] = Field(
        default_factory=lambda: _formats(*LABEL_FORMATS), description="Label files to write."
    )

    @field_validator("output_dir")
    @classmethod
    def _printable_path(cls, value: str | None) -> str | None:
        problem = path_text_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("engines", "label_formats")
    @classmethod
    def _no_duplicates(cls, values: list[str]) -> list[str]:
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError("listed more than once: " + ", ".join(twice))
        return values


class JobSpec(_Strict):
    """A validated job file."""

    model_config = ConfigDict(title="PixCrawler job file")

    dataset_name: FolderName = Field(description="Name of the dataset (a folder name).")
    categories: dict[FolderName, Annotated[list[Entry], Field(min_length=1)]] = Field(
        min_length=1,
        description="Category name -> keywords (searched on options.engines) and sources.",
    )
    options: JobOptions = JobOptions()
    _base_dir: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_keywords(self, info: ValidationInfo) -> JobSpec:
        problems = []
        for category, entries in self.categories.items():
            seen: dict[str, int] = {}
            for index, entry in enumerate(entries):
                key = _display_name(entry).casefold()
                if key in seen:
                    where = format_path(("categories", category, index), _TAGS)
                    problems.append(
                        f"{where}: duplicate keyword {_display_name(entry)!r} "
                        f"(also at [{seen[key]}])"
                    )
                else:
                    seen[key] = index
        # Names that clean to one folder (`a/b` and `a_b`, `x.` and `x`, NFC and NFD) would
        # share it, and a re-run would count the other's images as its own.
        for first, second in shared_folders(self.categories):
            problems.append(f"categories: {_clash(first, second)}")
        for category, entries in self.categories.items():
            names = [_display_name(entry) for entry in entries]
            for first, second in shared_folders(names):
                where = format_path(("categories", category), _TAGS)
                problems.append(f"{where}: {_clash(first, second)}")
        base = (info.context or {}).get("base_dir")
        self._base_dir = Path(base) if base is not None else None
        if self.options.output_dir and (
            self._base_dir or Path(self.options.output_dir).is_absolute()
        ):
            problem = dataset_folder_problem(self.dataset_root())
            if problem:
                problems.append(f"options.output_dir: {problem}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def dataset_root(self) -> Path:
        """The folder the dataset is written to (absolute unless no base folder is known)."""
        if self.options.output_dir:
            path = Path(self.options.output_dir).expanduser()
            if not path.is_absolute() and self._base_dir is not None:
                path = self._base_dir / path
            return path
        from platformdirs import user_pictures_dir

        return Path(user_pictures_dir()) / "PixCrawler" / self.dataset_name

    def to_file_dict(self, inline_urls: bool = False) -> dict[str, Any]:
        """The job in the file format; `inline_urls` writes `urls_file` lists out as `urls`."""
        categories: dict[str, list[Any]] = {}
        for category, entries in self.categories.items():
            out: list[Any] = []
            for entry in entries:
                if isinstance(entry, str):
                    out.append(entry)
                elif isinstance(entry, UrlListEntry) and inline_urls:
                    out.append({"name": entry.name, "urls": list(entry.resolved_urls)})
                else:
                    out.append(entry.model_dump(exclude_none=True))
            categories[category] = out
        return {
            "dataset_name": self.dataset_name,
            "categories": categories,
            "options": self.options.model_dump(),
        }

    def work_items(self) -> list[WorkItem]:
        """One item per keyword or source, in file order."""
        items = []
        target = self.options.max_images
        for category, entries in self.categories.items():
            for entry in entries:
                if isinstance(entry, str):
                    item = WorkItem(
                        category, entry, "search", target, engines=tuple(self.options.engines)
                    )
                elif isinstance(entry, UrlListEntry):
                    item = WorkItem(category, entry.name, "urls", target, urls=entry.resolved_urls)
                else:
                    site = WebsiteSettings(entry.website, entry.max_pages, entry.max_depth)
                    item = WorkItem(category, entry.name, "website", target, website=site)
                items.append(item)
        return items


def _clash(first: str, second: str) -> str:
    same = unicodedata.normalize("NFC", first) == unicodedata.normalize("NFC", second)
    how = " (the same letters in two Unicode forms)" if same else ""
    return f"{first!r} and {second!r}{how} would share one folder; rename one"


def _display_name(entry: str | WebsiteEntry | UrlListEntry) -> str:
    return entry if isinstance(entry, str) else entry.name


def _unknown_keys(data: Mapping[str, Any]) -> list[str]:
    """Warnings for keys the format does not know; they are ignored, not refused."""
    found: list[tuple[str | int, ...]] = [(k,) for k in data if k not in JobSpec.model_fields]
    options = data.get("options")
    if isinstance(options, Mapping):
        found += [("options", k) for k in options if k not in JobOptions.model_fields]
    categories = data.get("categories")
    for category, entries in categories.items() if isinstance(categories, Mapping) else ():
        for index, entry in enumerate(entries if isinstance(entries, list) else ()):
            model = _SOURCE_MODELS.get(_entry_kind(entry) or "")
            if model is not None:
                known = model.model_fields
                found += [("categories", category, index, k) for k in entry if k not in known]
    return [f"{format_path(loc, _TAGS)}: unknown key, ignored" for loc in found]


@dataclass(frozen=True)
class LoadedJob:
    spec: JobSpec
    warnings: tuple[str, ...] = ()
    path: Path | None = None


def parse_job(data: Mapping[str, Any] | str, base_dir: Path | str | None = None) -> LoadedJob:
    """Validate a job given as a dict or as JSON text; `base_dir` anchors relative paths."""
    if isinstance(data, str):
        try:
            data = load_json(data)
        except ValueError as exc:
            raise JobError([str(exc)]) from None
    if not isinstance(data, Mapping):
        raise JobError(["expected a JSON object at the top level"])
    base = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    try:
        spec = JobSpec.model_validate(dict(data), context={"base_dir": base})
    except ValidationError as exc:
        raise JobError(describe_errors(exc, _TAGS)) from None
    return LoadedJob(spec, tuple(_unknown_keys(data)))


def load_job(path: Path | str) -> LoadedJob:
    """Read and validate a job file; errors name the file and the place in it."""
    path = Path(path)
    try:
        text = read_capped(path, MAX_JOB_BYTES, "the file")
    except ValueError as exc:
        raise JobError([str(exc)], source=str(path)) from None
    try:
        loaded = parse_job(text, base_dir=path.parent)
    except JobError as exc:
        raise JobError(exc.problems, source=str(path)) from None
    return LoadedJob(loaded.spec, loaded.warnings, path)


def job_schema() -> dict[str, Any]:
    """The JSON Schema of the job file (docs/job.schema.json holds a copy)."""
    schema = JobSpec.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def job_schema_text() -> str:
    return json.dumps(job_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # `python -m celery_core.jobs.spec > docs/job.schema.json`
    print(job_schema_text(), end="")


__all__ = [
    "KNOWN_ENGINES",
    "LABEL_FORMATS",
    "JobError",
    "JobOptions",
    "JobSpec",
    "LoadedJob",
    "UrlListEntry",
    "WebsiteEntry",
    "WebsiteSettings",
    "WorkItem",
    "folder_name_problem",
    "job_schema",
    "job_schema_text",
    "load_job",
    "parse_job",
    "split_urls",
]
