"""Units of crawl work: one keyword to search, one URL list (or a chunk of one), one website.

A `WorkItem` is what a task receives, so it turns into plain JSON (`to_dict`) and back
(`from_dict`). `split_urls` cuts a long URL list into chunks that several workers can share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

WorkKind = Literal["search", "urls", "website"]


@dataclass(frozen=True)
class WebsiteSettings:
    url: str
    max_pages: int
    max_depth: int


@dataclass(frozen=True)
class WorkItem:
    """One unit of crawl work.

    `keyword` is the display name (the search string, or the source's name) and the folder the
    images go to. `target` caps the images kept for this item; the chunks of one URL list share
    the keyword's cap between them (see `split_urls`)."""

    category: str
    keyword: str
    kind: WorkKind
    target: int
    engines: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    website: WebsiteSettings | None = None
    chunk_index: int = 0
    chunk_count: int = 1
    # Shards of a website: how many images all of them may keep together (their targets are
    # shares of it, for display; see `shared_frontier`). 0: this item stands alone.
    pool_target: int = 0

    @property
    def label(self) -> str:
        chunk = f" (part {self.chunk_index + 1}/{self.chunk_count})" if self.chunk_count > 1 else ""
        return f"{self.category}/{self.keyword}{chunk}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only, for a task's arguments."""
        result: dict[str, Any] = _ADAPTER.dump_python(self, mode="json")
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkItem:
        try:
            return _ADAPTER.validate_python(dict(data))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ValueError(f"not a work item: {problems}") from None


_ADAPTER = TypeAdapter(WorkItem)


def split_urls(item: WorkItem, chunk_size: int) -> list[WorkItem]:
    """Cut a URL item into chunks of about `chunk_size` URLs; other items come back unchanged.

    Every chunk keeps the category and keyword. The item's target is shared out in proportion
    to chunk length so that the chunks together keep no more than the keyword's cap; each gets
    at least 1, so there are never more chunks than the target.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    total = len(item.urls)
    if item.kind != "urls" or total <= chunk_size or item.target <= 1:
        return [item]
    count = min(math.ceil(total / chunk_size), item.target)
    size = math.ceil(total / count)
    chunks = [item.urls[i : i + size] for i in range(0, total, size)]
    targets = _shares(min(item.target, total), [len(c) for c in chunks])
    return [
        WorkItem(
            item.category,
            item.keyword,
            "urls",
            target,
            urls=chunk,
            chunk_index=index,
            chunk_count=len(chunks),
        )
        for index, (chunk, target) in enumerate(zip(chunks, targets, strict=True))
    ]


def split_website(item: WorkItem, shards: int) -> list[WorkItem]:
    """Cut a website item into `shards` tasks that share its images (never more than its
    target); the pages are read once, by whichever shard starts first (`shared_frontier`)."""
    if item.kind != "website" or shards <= 1 or item.target <= 1:
        return [item]
    count = min(shards, item.target)
    targets = _shares(item.target, [1] * count)
    return [
        replace(item, target=target, chunk_index=index, chunk_count=count, pool_target=item.target)
        for index, target in enumerate(targets)
    ]


def website_shards(item: WorkItem) -> int:
    """How many tasks a website item becomes: one per 25 pages it may read, at most 4."""
    if item.kind != "website" or item.website is None:
        return 1
    return max(1, min(4, item.website.max_pages // 25))


def split_item(item: WorkItem, urls_per_task: int) -> list[WorkItem]:
    """A URL list in chunks, a website in shards, anything else as it is."""
    if item.kind == "urls":
        return split_urls(item, urls_per_task)
    return split_website(item, website_shards(item))


def _shares(amount: int, weights: list[int]) -> list[int]:
    """Split `amount` (>= len(weights)) in proportion to `weights`, each share at least 1."""
    total = sum(weights)
    exact = [amount * w / total for w in weights]
    shares = [max(1, math.floor(x)) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in by_remainder[: max(0, amount - sum(shares))]:
        shares[i] += 1
    while sum(shares) > amount:
        shares[shares.index(max(shares))] -= 1
    return shares
