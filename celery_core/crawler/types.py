"""The values that flow between the engine's parts: sources, fetching, checks, dataset, progress."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class Candidate:
    """An image URL a source found, with where it was found."""

    url: str
    source: str  # "bing", "duckduckgo", "google", "baidu", "urls" or "website"
    source_page: str | None = None
    title: str | None = None


class SourceError(Exception):
    """A source could not deliver (blocked, markup changed, empty); `reason` says which."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class FetchError(Exception):
    """A download failed. `reason` is a short stable code for reports (e.g. "http_404",
    "timeout", "too_large", "private_address", "redirect_loop", "not_an_image");
    `transient` says whether trying again later may succeed."""

    def __init__(self, reason: str, detail: str = "", transient: bool = False) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.transient = transient


@dataclass(frozen=True)
class TextPage:
    """An HTML or text page fetched for a source (search results, a website page)."""

    url: str  # after redirects
    status: int
    text: str
    content_type: str


class PageFetcher(Protocol):
    """What a source needs from the HTTP layer."""

    async def fetch_text(self, url: str) -> TextPage: ...

    async def allowed_by_robots(self, url: str) -> bool: ...


class Source(Protocol):
    """A plugin that turns a keyword or a source spec into candidate image URLs."""

    name: str

    def candidates(self, fetcher: PageFetcher, limit: int) -> AsyncIterator[Candidate]: ...


_TALLIES = (
    "found", "downloaded", "kept", "duplicates", "invalid", "failed", "skipped_existing",
    "existing", "in_folder",
)  # fmt: skip


@dataclass
class Counts:
    """Running tallies for one keyword; also the final figures in the report."""

    found: int = 0
    downloaded: int = 0
    kept: int = 0
    duplicates: int = 0
    invalid: int = 0
    failed: int = 0
    skipped_existing: int = 0
    # Images of this keyword kept by earlier runs (they count toward the target). In a job's
    # final figures (`report.count_folders`): `in_folder - kept`, what the folder held before.
    existing: int = 0
    # What the keyword's folder holds now (manifest lines whose file is there): set by the
    # job's final step from the dataset itself, 0 while the job runs.
    in_folder: int = 0
    invalid_reasons: dict[str, int] = field(default_factory=dict)
    failed_reasons: dict[str, int] = field(default_factory=dict)
    source_errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Counts:
        known = {name for name in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        for key in _TALLIES:
            if key in values:
                values[key] = int(values[key])
        for key in ("invalid_reasons", "failed_reasons"):
            values[key] = {str(r): int(n) for r, n in dict(values.get(key) or {}).items()}
        values["source_errors"] = [str(e) for e in values.get("source_errors") or []]
        return cls(**values)

    @property
    def sources_all_failed(self) -> bool:
        """Nothing came because every source failed: not one candidate was found, and the
        sources said why (unreachable, blocked, ...). A failure to show, not a finish."""
        return self.found == 0 and self.kept == 0 and bool(self.source_errors)

    def merge(self, other: Counts) -> None:
        """Add `other`'s figures to these (for category and job totals)."""
        for name in ("found", "downloaded", "kept", "duplicates", "invalid", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped_existing += other.skipped_existing
        self.existing += other.existing
        self.in_folder += other.in_folder
        for mine, theirs in (
            (self.invalid_reasons, other.invalid_reasons),
            (self.failed_reasons, other.failed_reasons),
        ):
            for reason, count in theirs.items():
                mine[reason] = mine.get(reason, 0) + count
        self.source_errors.extend(other.source_errors)


@dataclass(frozen=True)
class Thumbnail:
    """A small JPEG of a kept image, for a GUI that may be on another machine."""

    path: str  # relative to the dataset root
    jpeg: bytes
    width: int
    height: int


@dataclass(frozen=True)
class ProgressSnapshot:
    """What the engine reports while it runs; the task turns it into Celery PROGRESS meta."""

    category: str
    keyword: str
    counts: Counts
    target: int
    elapsed_s: float
    rate: float  # kept images per second
    new_thumbnails: tuple[Thumbnail, ...] = ()


ProgressCallback = Callable[[ProgressSnapshot], None]
CancelCheck = Callable[[], bool]

FaultKind = Literal["disk_full", "not_writable"]


@dataclass(frozen=True)
class StorageFault:
    """The dataset could not be written: the disk is full or the folder is not writable.

    Not one image's problem but the whole job's: the crawl stops, keeping what it saved, and
    so do the job's other tasks. Data only; the words are the presentation's (job_text, CLI).
    """

    kind: FaultKind
    path: str  # the dataset root when the disk is full, the folder refused when not writable
    free_bytes: int | None  # what the disk had left when the write failed (None: unknown)
    error: str = ""  # the errno's name: ENOSPC, EDQUOT, EACCES, EPERM, EROFS
    at: float = 0.0  # when it happened (time.time() on the worker)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StorageFault | None:
        """None for anything that is not a fault's dict (an older or damaged record)."""
        kind = data.get("kind")
        if kind not in ("disk_full", "not_writable"):
            return None
        free = data.get("free_bytes")
        return cls(
            kind=kind,
            path=str(data.get("path", "")),
            free_bytes=int(free) if isinstance(free, int | float) else None,
            error=str(data.get("error", "")),
            at=float(data.get("at") or 0.0),
        )


@dataclass
class KeywordResult:
    """What crawling one keyword produced; JSON-safe through `to_dict`/`from_dict`."""

    category: str
    keyword: str
    target: int
    counts: Counts
    elapsed_s: float
    cancelled: bool = False  # should_cancel said stop
    partial: bool = False  # stopped before the target or the candidates ran out
    kept_paths: list[str] = field(default_factory=list)  # relative to the dataset root
    fault: StorageFault | None = None  # the dataset could not be written: the crawl stopped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeywordResult:
        fault = data.get("fault")
        return cls(
            category=str(data["category"]),
            keyword=str(data["keyword"]),
            target=int(data.get("target", 0)),
            counts=Counts.from_dict(dict(data.get("counts") or {})),
            elapsed_s=float(data.get("elapsed_s", 0.0)),
            cancelled=bool(data.get("cancelled", False)),
            partial=bool(data.get("partial", False)),
            kept_paths=[str(p) for p in data.get("kept_paths") or []],
            fault=StorageFault.from_dict(fault) if isinstance(fault, dict) else None,
        )
