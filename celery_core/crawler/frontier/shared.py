"""One website crawled once, its images shared out between several crawl tasks.

A website's pages must be read in order (breadth-first, within limits), but the work that
costs (downloading, decoding and hashing the images) can spread over every worker process.
So a website item is cut into shards that run as separate tasks. Whichever shard starts first
takes the lead: it reads the pages and pushes each image it finds to a shared queue, once.
Every shard, the leader included, takes images from that queue until the lead says the site
is done and the queue is empty. If the leader dies, its lead expires and a waiting shard takes
over (images already pushed are not pushed again). The item's image count is one `Quota`
shared by the shards, so none stops at a share of its own while images remain and the shards
never keep more than the item asks for together. With a single worker slot the shards run
one after another: the first reads the whole site and keeps what it can, the rest find an
empty queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Protocol

from celery_core.crawler.types import Candidate

log = logging.getLogger(__name__)

POP_BATCH = 16
PUSH_EVERY_S = 0.2


class Quota(Protocol):
    """How many images the shards of one item may still keep, together. Called from the
    engine's keeper thread, so synchronous."""

    def take(self) -> bool:
        """Take one; False when none is left."""

    def give_back(self) -> None:
        """Return one taken for an image that was not kept after all (a duplicate)."""


class Frontier(Protocol):
    """The shared queue of one website item, with its lead and its end."""

    async def lead(self) -> bool:
        """Become (or stay) the shard that reads the pages; False if another holds the lead."""

    async def push(self, candidates: Sequence[Candidate]) -> int:
        """Queue the candidates never queued before; returns how many were new."""

    async def pop(self, count: int) -> list[Candidate]: ...

    async def finish(self) -> None:
        """The site is read (or its reading ended): shards stop once the queue is empty."""

    async def finished(self) -> bool: ...

    async def close(self) -> None: ...


class SharedCandidates:
    """Candidates of a sharded website item, for the engine of one shard.

    `discover` reads the site (called only by the leader); `stop` says the job was cancelled,
    so a leader whose own shard is done does not finish reading the site for nobody."""

    def __init__(
        self,
        frontier: Frontier,
        discover: Callable[[], AsyncIterator[Candidate]],
        stop: Callable[[], bool] = lambda: False,
        poll_s: float = 0.2,
    ) -> None:
        self._frontier = frontier
        self._items = self._run(discover, stop, poll_s)

    def __aiter__(self) -> SharedCandidates:
        return self

    async def __anext__(self) -> Candidate:
        return await self._items.__anext__()

    async def aclose(self) -> None:
        await self._items.aclose()

    async def _run(
        self,
        discover: Callable[[], AsyncIterator[Candidate]],
        stop: Callable[[], bool],
        poll_s: float,
    ) -> AsyncGenerator[Candidate, None]:
        frontier = self._frontier
        producer: asyncio.Task[None] | None = None
        try:
            while True:
                if producer is None and not await frontier.finished() and await frontier.lead():
                    producer = asyncio.create_task(_produce(frontier, discover()))
                # "Done" is read before taking: the leader pushes its last images before it
                # says done, so an empty queue seen after that is empty for good.
                done = await frontier.finished()
                batch = await frontier.pop(POP_BATCH)
                if batch:
                    for candidate in batch:
                        yield candidate
                    continue
                if producer is not None and producer.done():
                    producer.result()  # a source error of the site surfaces in the leader
                if done:
                    return
                await asyncio.sleep(poll_s)  # the leader is still reading pages
        finally:
            if producer is not None and not producer.done():
                if stop():
                    producer.cancel()
                # Otherwise this shard has its share, but the others wait for the pages.
                # Shielded: a cancel of this shard's engine must not end the reading.
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.shield(producer)
            # An error here must not replace a cancellation on its way out.
            with contextlib.suppress(Exception):
                await frontier.close()


async def _produce(frontier: Frontier, candidates: AsyncIterator[Candidate]) -> None:
    pending: list[Candidate] = []
    pushed_at = time.monotonic()
    try:
        async for candidate in candidates:
            pending.append(candidate)
            if len(pending) >= POP_BATCH or time.monotonic() - pushed_at >= PUSH_EVERY_S:
                await frontier.push(pending)
                await frontier.lead()  # renew: a leader that stops renewing is presumed dead
                pending, pushed_at = [], time.monotonic()
        if pending:
            await frontier.push(pending)
    finally:
        aclose = getattr(candidates, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
        try:
            await frontier.finish()
        except Exception:
            log.exception("could not mark the website as read")
