"""Decode memory as a budget: a byte semaphore per process that image checks take turns on.

Each crawl task checks images on one thread per core, and a worker runs one task per pool
process; without a bound, the memory a worker can take decoding grows with (threads x tasks)
x the largest image allowed. So every check first estimates what its decode will allocate
(`decode_cost`), and takes that many bytes from its process's `DecodeBudget` before decoding.
An image that does not fit now waits, in arrival order, until earlier decodes give their bytes
back; an image bigger than the whole budget is refused (`too_large_to_decode`) without waiting.

The budget's size comes from `CrawlerSettings.decode_memory_mb`, or, when that is 0, from this
computer's memory and the worker's pool processes (`automatic_bytes`). A worker tells its pool
processes how many of them there are through `POOL_PROCESSES_ENV`, set before the pool starts.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

MIB = 1024 * 1024
POOL_PROCESSES_ENV = "PIXCRAWLER_POOL_PROCESSES"

# The automatic budget. The whole worker gets a 64th of the computer's memory for decoding,
# at most 160 MB, shared out between its pool processes, each getting at least 32 MB:
# - the ceiling is about what is left for decoding when a desktop worker's process tree is to
#   stay under 400 MB (PSS) with 4 pool processes: idle, a worker takes about 45 MB plus 33 MB
#   per pool process, and its downloads, HTTP and bookkeeping take some more while it crawls;
# - the floor still admits what a crawl commonly meets: any baseline JPEG up to the pixel cap
#   (decoded at 1/8 scale, about 5 MB), a 4K screenshot as RGB PNG (34 MB), nearly a 12 MP
#   progressive JPEG (38 MB at 4:2:0; it fits the 40 MB that 4 processes get);
# - a 64th of the memory brings small machines below the ceiling (8 GB: 128 MB; 4 GB: 64 MB).
# Larger pictures are refused as too_large_to_decode unless decode_memory_mb is raised
# (docs/benchmarks.md, "Decode memory").
AUTO_FRACTION = 64
AUTO_WORKER_CEILING = 160 * MIB
AUTO_PROCESS_FLOOR = 32 * MIB
# After a decode this large, freed memory is handed back to the system before its bytes go
# back to the budget. glibc keeps freed blocks for reuse (up to 64 MB per thread's arena once
# its thresholds have grown), so without this a process's resident memory would follow the
# largest decodes each thread ever did, not the budget. Smaller decodes (all the pictures of
# the benchmark site) skip it: their memory is reused at once, and trimming it would only cost
# page faults.
TRIM_ABOVE = 32 * MIB


def total_memory() -> int:
    """Bytes of physical memory, or 0 when the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # Windows has neither name
        return _windows_memory()


def _windows_memory() -> int:
    try:
        import ctypes

        class _Status(ctypes.Structure):
            _fields_ = [
                ("length", ctypes.c_uint32),
                ("load", ctypes.c_uint32),
                ("total_phys", ctypes.c_uint64),
                ("rest", ctypes.c_uint64 * 6),
            ]

        status = _Status()
        status.length = ctypes.sizeof(_Status)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
            return int(status.total_phys)
    except Exception:
        pass
    return 0


def pool_processes() -> int:
    """The pool processes of the worker this process belongs to (1 outside a worker)."""
    try:
        return max(1, int(os.environ.get(POOL_PROCESSES_ENV, "1")))
    except ValueError:
        return 1


def automatic_bytes(memory: int, processes: int) -> int:
    """The automatic budget of one process, for `memory` bytes of RAM and `processes` pool
    processes (see the reasoning above AUTO_FRACTION)."""
    worker = min(memory // AUTO_FRACTION, AUTO_WORKER_CEILING) if memory > 0 else 0
    return max(worker // max(1, processes), AUTO_PROCESS_FLOOR)


def budget_bytes(decode_memory_mb: int, processes: int | None = None) -> int:
    """A process's budget: the setting in MB, or automatic when it is 0."""
    if decode_memory_mb > 0:
        return decode_memory_mb * MIB
    return automatic_bytes(total_memory(), processes or pool_processes())


class DecodeBudget:
    """A byte semaphore shared by the threads of one process: `hold(n)` takes n bytes for the
    duration of a decode, waiting in arrival order until they fit. A request larger than the
    capacity is let through only when nothing else is held (the caller refuses such images
    first; this only matters when the capacity shrank while it waited)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = max(1, capacity)
        self._used = 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition(threading.Lock())
        self.peak = 0  # the most bytes held at once
        self.waited = 0  # requests that had to wait

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def used(self) -> int:
        return self._used

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def resize(self, capacity: int) -> None:
        with self._changed:
            self._capacity = max(1, capacity)
            self._changed.notify_all()

    def fits(self, nbytes: int) -> bool:
        """Whether a request of `nbytes` can ever be granted."""
        return nbytes <= self._capacity

    def acquire(self, nbytes: int) -> None:
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            if not self._admissible(ticket, nbytes):
                self.waited += 1
                while not self._admissible(ticket, nbytes):
                    self._changed.wait()
            self._queue.popleft()
            self._used += nbytes
            self.peak = max(self.peak, self._used)
            self._changed.notify_all()  # the next in line may fit as well

    def release(self, nbytes: int) -> None:
        with self._changed:
            self._used -= nbytes
            self._changed.notify_all()

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        self.acquire(nbytes)
        try:
            yield
        finally:
            if nbytes >= TRIM_ABOVE:
                return_freed_memory()
            self.release(nbytes)

    def _admissible(self, ticket: object, nbytes: int) -> bool:
        if self._queue[0] is not ticket:
            return False
        return self._used + nbytes <= self._capacity or self._used == 0


def return_freed_memory() -> None:
    """Give memory freed inside this process back to the system (glibc's malloc_trim)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


_process_budget: DecodeBudget | None = None
_process_lock = threading.Lock()


def process_budget(capacity: int) -> DecodeBudget:
    """This process's budget, created on first use, resized to `capacity` (settings are read
    per crawl, so a changed setting applies from the next crawl on)."""
    global _process_budget
    with _process_lock:
        if _process_budget is None:
            _process_budget = DecodeBudget(capacity)
        elif _process_budget.capacity != capacity:
            _process_budget.resize(capacity)
        return _process_budget


def _forget_after_fork() -> None:
    # A forked child starts with nothing held; its parent's lock may have been taken mid-fork.
    global _process_budget, _process_lock
    _process_budget = None
    _process_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
