"""Duplicate detection over a whole dataset: exact (sha256) and near (64-bit dHash).

A claim is atomic: "is this image new? then it is mine, under this path" in one step, so two
downloads of the same picture racing on different workers keep exactly one copy.

Near search uses bands: the 64 bits are split into `threshold + 1` bands. Two hashes within
`threshold` differing bits cannot differ in every band (pigeonhole), so they share at least one
band value exactly; only hashes sharing a band are compared bit by bit. (Four 16-bit bands would
only guarantee this up to 3 differing bits.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

MAX_THRESHOLD = 16
DEFAULT_THRESHOLD = 6


@dataclass(frozen=True)
class DedupResult:
    """`kept` True: the claim succeeded. Else `duplicate_of` names the path already kept."""

    kept: bool
    duplicate_of: str | None = None
    kind: Literal["exact", "near"] | None = None
    distance: int = 0


class DedupIndex(Protocol):
    """What the engine needs from a duplicate index. Every method is atomic."""

    threshold: int

    def claim(
        self, sha256: str, phash: int, owner: str, threshold: int | None = None
    ) -> DedupResult:
        """Keep (sha256, phash) under `owner` unless an exact or near copy is already kept.
        `threshold` may lower the index's own for this claim, never raise it."""
        ...

    def release(self, sha256: str, owner: str) -> None:
        """Undo a claim whose file could not be written."""
        ...

    def add(self, sha256: str, phash: int, owner: str) -> None:
        """Record an image already in the dataset (no check), e.g. from the manifest."""
        ...


def band_spans(threshold: int) -> list[tuple[int, int]]:
    """(shift, bits) of each band for `threshold`: threshold + 1 near-equal slices of 64 bits."""
    if not 0 <= threshold <= MAX_THRESHOLD:
        raise ValueError(f"dedup threshold must be between 0 and {MAX_THRESHOLD}, not {threshold}")
    count = threshold + 1
    spans = []
    shift = 0
    for i in range(count):
        bits = 64 // count + (1 if i < 64 % count else 0)
        spans.append((shift, bits))
        shift += bits
    return spans


def band_values(phash: int, spans: list[tuple[int, int]]) -> list[int]:
    return [(phash >> shift) & ((1 << bits) - 1) for shift, bits in spans]


def effective_threshold(index_threshold: int, threshold: int | None) -> int:
    if threshold is None:
        return index_threshold
    if threshold > index_threshold:
        raise ValueError(
            f"threshold {threshold} is above the index's {index_threshold}: "
            "build the index with the larger threshold"
        )
    return threshold


class LocalDedupIndex:
    """In-memory index for one process (thread-safe). Seed it from the manifest on re-runs."""

    def __init__(self, threshold: int = DEFAULT_THRESHOLD) -> None:
        self.threshold = threshold
        self._spans = band_spans(threshold)
        self._lock = threading.Lock()
        self._exact: dict[str, str] = {}
        self._entries: dict[str, tuple[str, int]] = {}  # owner -> (sha256, phash)
        self._bands: list[dict[int, set[str]]] = [{} for _ in self._spans]

    def __len__(self) -> int:
        return len(self._entries)

    def claim(
        self, sha256: str, phash: int, owner: str, threshold: int | None = None
    ) -> DedupResult:
        limit = effective_threshold(self.threshold, threshold)
        with self._lock:
            existing = self._exact.get(sha256)
            if existing is not None:
                return DedupResult(False, existing, "exact", 0)
            best: tuple[int, str] | None = None
            for band, value in zip(self._bands, band_values(phash, self._spans), strict=True):
                for other in band.get(value, ()):
                    distance = (self._entries[other][1] ^ phash).bit_count()
                    if distance <= limit and (best is None or distance < best[0]):
                        best = (distance, other)
            if best is not None:
                return DedupResult(False, best[1], "near", best[0])
            self._insert(sha256, phash, owner)
            return DedupResult(True)

    def add(self, sha256: str, phash: int, owner: str) -> None:
        with self._lock:
            if sha256 not in self._exact and owner not in self._entries:
                self._insert(sha256, phash, owner)

    def add_many(self, entries: Iterable[tuple[str, int, str]]) -> int:
        count = 0
        for sha256, phash, owner in entries:
            self.add(sha256, phash, owner)
            count += 1
        return count

    def release(self, sha256: str, owner: str) -> None:
        with self._lock:
            self._forget(owner)

    def _forget(self, owner: str) -> None:
        entry = self._entries.pop(owner, None)
        if entry is None:
            return
        if self._exact.get(entry[0]) == owner:
            del self._exact[entry[0]]
        for band, value in zip(self._bands, band_values(entry[1], self._spans), strict=True):
            band.get(value, set()).discard(owner)

    def _insert(self, sha256: str, phash: int, owner: str) -> None:
        if owner in self._entries:  # an owner holds one image: forget what it held before
            self._forget(owner)
        self._exact[sha256] = owner
        self._entries[owner] = (sha256, phash)
        for band, value in zip(self._bands, band_values(phash, self._spans), strict=True):
            band.setdefault(value, set()).add(owner)


def seed_index(index: DedupIndex, entries: Iterable[tuple[str, int, str]]) -> int:
    """Add (sha256, phash, path) of images already kept; returns how many were given."""
    add_many = getattr(index, "add_many", None)
    if add_many is not None:
        return int(add_many(entries))
    count = 0
    for sha256, phash, owner in entries:
        index.add(sha256, phash, owner)
        count += 1
    return count
