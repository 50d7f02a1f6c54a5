"""The running tallies of one keyword's crawl, and the progress snapshots taken from them."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from celery_core.crawler.types import (
    Counts,
    KeywordResult,
    ProgressSnapshot,
    StorageFault,
    Thumbnail,
)


@dataclass
class CrawlState:
    """Everything counted so far for one keyword, safe to update from the keeper thread.
    Lives outside the crawl coroutine so a caller can still read it when a stop exception
    escapes the event loop."""

    category: str
    keyword: str
    target: int
    thumbnails_per_report: int = 12
    counts: Counts = field(default_factory=Counts)
    kept_paths: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    cancelled: bool = False
    partial: bool = False
    fault: StorageFault | None = None  # the first full-disk or refused write: the crawl stops
    version: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    thumbnails: deque[Thumbnail] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.thumbnails = deque(maxlen=max(0, self.thumbnails_per_report))

    def add(self, name: str, reason: str | None = None) -> None:
        with self.lock:
            setattr(self.counts, name, getattr(self.counts, name) + 1)
            if reason is not None:
                reasons = getattr(self.counts, f"{name}_reasons")
                reasons[reason] = reasons.get(reason, 0) + 1
            self.version += 1

    def kept(self, path: str, thumbnail: Thumbnail) -> None:
        with self.lock:
            self.counts.kept += 1
            self.kept_paths.append(path)
            self.thumbnails.append(thumbnail)
            self.version += 1

    def source_error(self, message: str) -> None:
        with self.lock:
            self.counts.source_errors.append(message)
            self.version += 1

    def set_fault(self, fault: StorageFault) -> bool:
        """Record why the dataset cannot be written; True for the first fault (later ones are
        the same disk saying it again)."""
        with self.lock:
            if self.fault is not None:
                return False
            self.fault = fault
            self.partial = True
            self.version += 1
            return True

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def snapshot(self) -> ProgressSnapshot:
        with self.lock:
            counts = Counts.from_dict(self.counts.to_dict())
            thumbs = tuple(self.thumbnails)
            self.thumbnails.clear()
        elapsed = self.elapsed()
        return ProgressSnapshot(
            category=self.category,
            keyword=self.keyword,
            counts=counts,
            target=self.target,
            elapsed_s=round(elapsed, 3),
            rate=round(counts.kept / elapsed, 2) if elapsed > 0 else 0.0,
            new_thumbnails=thumbs,
        )

    def result(self) -> KeywordResult:
        with self.lock:
            return KeywordResult(
                category=self.category,
                keyword=self.keyword,
                target=self.target,
                counts=Counts.from_dict(self.counts.to_dict()),
                elapsed_s=round(self.elapsed(), 3),
                cancelled=self.cancelled,
                partial=self.partial or self.cancelled,
                kept_paths=list(self.kept_paths),
                fault=self.fault,
            )
