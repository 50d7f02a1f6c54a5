"""The machinery behind `engine.crawl_keyword`: a producer reading candidates, download
workers on the event loop, a thread pool for image checks, one keeper thread for claims and
writes, and a ticker for progress and cancellation (see `engine` for the behaviour)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sized
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from typing import Any, Protocol

from celery_core.crawler.crawl_state import CrawlState
from celery_core.crawler.dataset.space import storage_fault
from celery_core.crawler.dataset.writer import (
    Dataset,
    ExistingImages,
    KeywordFolder,
    ManifestEntry,
    adopt_orphans,
    file_size,
)
from celery_core.crawler.dedup.index import DedupIndex, seed_index
from celery_core.crawler.fetch.fetcher import FetchedImage, Fetcher
from celery_core.crawler.frontier.shared import Quota
from celery_core.crawler.images import decode_budget
from celery_core.crawler.images.check import CheckedImage, ImageRules, InvalidImage, check_image
from celery_core.crawler.types import (
    CancelCheck,
    Candidate,
    FetchError,
    KeywordResult,
    ProgressCallback,
    SourceError,
    Thumbnail,
)
from celery_core.settings.crawler_settings import CrawlerSettings

log = logging.getLogger(__name__)

StopExceptions = tuple[type[BaseException], ...]
_CANCEL_CHECK_EVERY = 0.05


class DedupUnavailable(RuntimeError):
    """The duplicate index could not be reached (e.g. Redis down): the crawl stops and this
    is raised, so the task can be retried; everything saved so far stays consistent."""

    transient = True  # read by the task layer's retry policy


class ImageFetcher(Protocol):
    async def fetch_image(self, url: str, referer: str | None = None) -> FetchedImage: ...


class KeywordCrawl:
    def __init__(
        self,
        run: CrawlState,
        *,
        dataset: Dataset,
        rules: ImageRules,
        settings: CrawlerSettings,
        dedup: DedupIndex,
        threshold: int,
        progress: ProgressCallback | None,
        should_cancel: CancelCheck | None,
        interval: float,
        stop_exceptions: StopExceptions,
        count_existing: bool = True,
        quota: Quota | None = None,
    ) -> None:
        self.run = run
        self.count_existing = count_existing
        self.quota = quota
        self.dataset = dataset
        self.rules = rules
        self.settings = settings
        self.dedup = dedup
        self.threshold = threshold
        self.progress = progress
        self.should_cancel = should_cancel
        self.interval = max(0.01, interval)
        self.stop_exceptions = stop_exceptions
        self.need = 0
        self.seen_urls: set[str] = set()
        self.stop = asyncio.Event()
        self.workers_left = 0
        self.last_cancel_check = 0.0
        self.reported_version = -1
        self.fatal: DedupUnavailable | None = None
        self.previous_handler: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None
        self.previous_handler = None
        self.cpu = ThreadPoolExecutor(settings.cpu_workers or os.cpu_count() or 1, "pix-check")
        # Shared with every other crawl in this process: decodes take turns on its bytes.
        self.budget = decode_budget.process_budget(
            decode_budget.budget_bytes(settings.decode_memory_mb)
        )
        self.keeper = ThreadPoolExecutor(1, "pix-keep")
        self.folder: KeywordFolder | None = None
        self.existing = ExistingImages()
        self.emptied: dict[str, list[Path]] = {}  # URL -> empty files it will replace

    # --- lifecycle ------------------------------------------------------------------------

    async def execute(
        self, candidates: AsyncIterator[Candidate], fetcher: ImageFetcher | None, seed: bool
    ) -> KeywordResult:
        loop = asyncio.get_running_loop()
        previous_handler = self.previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._loop_exception)
        try:
            await asyncio.to_thread(self._setup, seed)
            if self.need > 0 and not self._cancel_requested(force=True):
                async with AsyncExitStack() as stack:
                    if fetcher is None:
                        fetcher = await stack.enter_async_context(Fetcher(self.settings))
                    try:
                        await self._pipeline(candidates, fetcher)
                    finally:
                        await _close(candidates)  # a source may use the fetcher while closing
        except asyncio.CancelledError:
            self.run.partial = True
        except self.stop_exceptions:
            self.run.partial = True
        finally:
            self.cpu.shutdown(wait=False, cancel_futures=True)
            # A claim and its file write in progress must finish, or the numbering and the
            # manifest would disagree with the index.
            self.keeper.shutdown(wait=True)
            await _close(candidates)
            loop.set_exception_handler(previous_handler)
            self._report(final=True)
        if self.fatal is not None:
            raise self.fatal
        return self.run.result()

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # A stop exception raised by a signal handler while the loop ran a transport callback
        # ends up here instead of in any task: it must still stop the crawl.
        if isinstance(context.get("exception"), self.stop_exceptions):
            self._halt(partial=True)
        elif self.previous_handler is not None:
            self.previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    def _setup(self, seed: bool) -> None:
        try:
            self._prepare(seed)
        except OSError as exc:
            fault = storage_fault(exc, self.dataset.root)
            if fault is None:
                raise
            # Nothing is fetched (`need` stays 0): the folder cannot take a single image.
            if self.run.set_fault(fault):
                log.error("not crawling %s: %s", self.dataset.root, exc)

    def _prepare(self, seed: bool) -> None:
        run = self.run
        folder = self.dataset.prepare_folder(run.category, run.keyword)
        existing = self.dataset.existing()
        for entry in adopt_orphans(self.dataset, folder, existing, run.category, run.keyword):
            existing.add(entry)
        if seed:
            try:
                held = len(self.dedup) if isinstance(self.dedup, Sized) else -1
                if held < len(existing.entries):  # a shared index is seeded once per dataset
                    root = self.dataset.root
                    # Emptied files (a power cut) are fetched again, so their hash is no claim.
                    hashes = (h for h in existing.hashes() if file_size(root / h[2]) != 0)
                    seed_index(self.dedup, hashes)
            except Exception as exc:
                raise DedupUnavailable(f"{type(exc).__name__}: {exc}") from exc
        # Only this keyword's own earlier images are skipped as "already had". Images that
        # other keywords kept go through the duplicate index and count as duplicates, so the
        # counts do not depend on whether a sibling task happened to start first.
        own = existing.of_folder(folder.relative)
        # A number whose image was removed by hand is not given again: the manifest keeps
        # one path per image.
        folder.next_number = max(folder.next_number, own.highest_number() + 1)
        self.existing, emptied = own.on_disk(self.dataset.root)
        self.folder = folder
        for entry in emptied:
            try:
                self.dedup.release(entry.sha256, entry.path)
            except Exception as exc:
                raise DedupUnavailable(f"{type(exc).__name__}: {exc}") from exc
            self.emptied.setdefault(entry.url or "", []).append(self.dataset.root / entry.path)
        self.run.counts.existing = len(self.existing.entries)
        self.need = self.run.target
        if self.count_existing:
            self.need -= self.run.counts.existing

    async def _pipeline(self, candidates: AsyncIterator[Candidate], fetcher: ImageFetcher) -> None:
        count = self.settings.max_connections
        queue: asyncio.Queue[Candidate | None] = asyncio.Queue(maxsize=count)
        self.workers_left = count
        tasks = [asyncio.create_task(self._produce(candidates, queue, count))]
        tasks += [asyncio.create_task(self._work(queue, fetcher)) for _ in range(count)]
        tasks.append(asyncio.create_task(self._tick()))
        try:
            await self.stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- producer, workers, ticker --------------------------------------------------------

    async def _produce(
        self, candidates: AsyncIterator[Candidate], queue: asyncio.Queue[Candidate | None], n: int
    ) -> None:
        try:
            async for candidate in candidates:
                if self.stop.is_set() or self._cancel_requested():
                    return
                self.run.add("found")
                await queue.put(candidate)
        except self.stop_exceptions:
            self._halt(partial=True)
            return
        except SourceError as exc:
            self.run.source_error(str(exc))
        except Exception as exc:
            log.exception("candidate source failed")
            self.run.source_error(f"{type(exc).__name__}: {exc}")
        if self.stop.is_set():
            # Stopping: the workers are being cancelled and would never take the end markers
            # (and a source's error may have replaced this task's own cancellation).
            return
        for _ in range(n):
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue[Candidate | None], fetcher: ImageFetcher) -> None:
        while not self.stop.is_set():
            candidate = await queue.get()
            if candidate is None:
                break
            if self._cancel_requested():
                return
            try:
                await self._handle(candidate, fetcher)
            except self.stop_exceptions:
                self._halt(partial=True)
                return
            except DedupUnavailable as exc:
                self.fatal = exc
                self._halt(partial=True)
                return
            except Exception:
                log.exception("unexpected error on %s", candidate.url)
                self.run.add("failed", "internal_error")
        self.workers_left -= 1
        if self.workers_left <= 0:
            self.stop.set()  # candidates exhausted and every worker done

    async def _tick(self) -> None:
        try:
            while True:
                try:
                    await asyncio.wait_for(self.stop.wait(), self.interval)
                    return  # stopping: the final report follows
                except TimeoutError:
                    pass
                if self._cancel_requested(force=True):
                    return
                self._report()
        except self.stop_exceptions:
            self._halt(partial=True)

    # --- one candidate --------------------------------------------------------------------

    async def _handle(self, candidate: Candidate, fetcher: ImageFetcher) -> None:
        run = self.run
        url = candidate.url
        if url in self.existing.urls:
            run.add("skipped_existing")
            return
        if url in self.seen_urls:
            run.add("duplicates")
            return
        self.seen_urls.add(url)
        try:
            image = await fetcher.fetch_image(url, referer=candidate.source_page)
        except FetchError as exc:
            if exc.reason == "not_an_image":
                run.add("invalid", exc.reason)
            else:
                run.add("failed", exc.reason)
            return
        run.add("downloaded")
        if self.stop.is_set():
            return
        loop = asyncio.get_running_loop()
        try:
            checked = await loop.run_in_executor(
                self.cpu, check_image, image.data, self.rules, self.budget
            )
        except InvalidImage as exc:
            run.add("invalid", exc.reason)
            return
        if checked.sha256 in self.existing.sha256s:
            run.add("skipped_existing")
            return
        if self.stop.is_set():
            return
        # Shielded: once handed to the keeper, a claim and its write complete even if this
        # download is cancelled because the target was reached meanwhile.
        await asyncio.shield(
            loop.run_in_executor(self.keeper, self._keep, candidate, image, checked, loop)
        )

    def _keep(
        self,
        candidate: Candidate,
        image: FetchedImage,
        checked: CheckedImage,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Write, claim and record one image (keeper thread, one image at a time). The claim
        is made under the file's final name, which no other crawl can hold."""
        run, folder = self.run, self.folder
        assert folder is not None
        if run.counts.kept >= self.need or run.fault is not None:
            return
        if self.quota is not None and not self.quota.take():
            loop.call_soon_threadsafe(self.stop.set)  # the item's shards have kept enough
            return
        claims: list[str] = []

        def decide(path: str) -> ManifestEntry | None:
            try:
                claim = self.dedup.claim(checked.sha256, checked.phash, path, self.threshold)
            except Exception as exc:
                raise DedupUnavailable(f"{type(exc).__name__}: {exc}") from exc
            if not claim.kept:
                return None
            claims.append(path)
            return ManifestEntry.from_checked(
                checked,
                path=path,
                size=len(image.data),
                category=run.category,
                keyword=run.keyword,
                url=candidate.url,
                final_url=image.final_url if image.final_url != candidate.url else None,
                source=candidate.source,
                source_page=candidate.source_page,
            )

        try:
            path = self.dataset.write_image(folder, checked.ext, image.data, decide)
        except OSError as exc:
            for claimed in claims:
                self.dedup.release(checked.sha256, claimed)
            self._return_quota()
            fault = storage_fault(exc, self.dataset.root, folder.path)
            if fault is None:
                log.error("cannot write into %s: %s", folder.path, exc)
                run.add("failed", "write_error")
                return
            # A full disk or a refused folder: every image after this one would fail too.
            # Not a failed download; the crawl stops, keeping what it saved.
            if run.set_fault(fault):
                log.error("stopping, cannot write into %s: %s", folder.path, exc)
            loop.call_soon_threadsafe(self._halt, True)
            return
        except BaseException:
            self._return_quota()
            raise
        if path is None:
            self._return_quota()
            run.add("duplicates")
            return
        run.kept(
            path, Thumbnail(path, checked.thumbnail, checked.thumb_width, checked.thumb_height)
        )
        for stale in self.emptied.pop(candidate.url, ()):
            with suppress(OSError):
                stale.unlink()  # the empty file a power cut left: its picture is back
        if run.counts.kept >= self.need:
            loop.call_soon_threadsafe(self.stop.set)

    def _return_quota(self) -> None:
        if self.quota is not None:
            try:
                self.quota.give_back()
            except Exception:
                log.exception("could not return a quota slot")

    # --- stopping and reporting -----------------------------------------------------------

    def _halt(self, partial: bool = False, cancelled: bool = False) -> None:
        self.run.partial = self.run.partial or partial
        self.run.cancelled = self.run.cancelled or cancelled
        self.stop.set()

    def _cancel_requested(self, force: bool = False) -> bool:
        if self.run.cancelled:
            return True
        if self.should_cancel is None:
            return False
        now = time.monotonic()
        if not force and now - self.last_cancel_check < _CANCEL_CHECK_EVERY:
            return False
        self.last_cancel_check = now
        try:
            cancel = bool(self.should_cancel())
        except Exception:
            log.exception("should_cancel failed")
            return False
        if cancel:
            self._halt(cancelled=True)
        return cancel

    def _report(self, final: bool = False) -> None:
        if self.progress is None:
            return
        if not final and self.run.version == self.reported_version:
            return
        self.reported_version = self.run.version
        try:
            self.progress(self.run.snapshot())
        except self.stop_exceptions:
            if not final:
                self._halt(partial=True)
        except Exception:
            log.exception("progress callback failed")


async def _close(candidates: AsyncIterator[Candidate]) -> None:
    aclose = getattr(candidates, "aclose", None)
    if aclose is not None:
        with suppress(Exception):
            await aclose()
