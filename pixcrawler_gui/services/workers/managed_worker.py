"""One local worker over its lifetime: runs, crashes, restarts with backoff, stops, fails.

All methods run on the event loop's thread. Each change of what the panel shows goes out as a
`WorkerChanged` event with a fresh snapshot; log lines go out as `WorkerLog` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from pixcrawler_gui.services.events import (
    EventHub,
    Location,
    TaskEventKind,
    WorkerChanged,
    WorkerCrashed,
    WorkerLog,
    WorkerSnapshot,
    WorkerState,
)
from pixcrawler_gui.services.workers.restart_policy import RestartPolicy, crash_verdict
from pixcrawler_gui.services.workers.worker_command import WorkerSpec
from pixcrawler_gui.services.workers.worker_process import ProcessExit, WorkerProcess

LOG_KEEP = 2000
TAIL_LINES = 12


@dataclass(frozen=True)
class Launch:
    """What a run needs besides the spec: built by the supervisor once the endpoints are known."""

    argv: list[str]
    env: Mapping[str, str]
    cwd: str | None


class ManagedWorker:
    def __init__(
        self,
        worker_id: str,
        spec: WorkerSpec,
        hub: EventHub,
        launch: Callable[[WorkerSpec], Awaitable[Launch]],
        graceful_stop: Callable[[ManagedWorker], Awaitable[None]],
        policy: RestartPolicy,
        grace_period: float,
    ) -> None:
        self.worker_id = worker_id
        self.spec = spec
        self._hub = hub
        self._launch = launch
        self._graceful_stop = graceful_stop
        self._policy = policy
        self._grace = grace_period
        self.log: deque[str] = deque(maxlen=LOG_KEEP)
        self.process: WorkerProcess | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop_requested = False
        self._ready = asyncio.Event()
        self._snapshot = WorkerSnapshot(
            worker_id=worker_id,
            node=spec.name,
            location=Location.LOCAL,
            state=WorkerState.STOPPED,
            pool=spec.pool,
            concurrency=spec.concurrency,
            queues=spec.queues,
        )
        self.last_heartbeat: float | None = None
        # Tasks this worker took and has not finished, in the order it took them (task
        # events); a crash hands them back to the queue.
        self._held: dict[str, None] = {}
        self._task_events_seen = False  # in this run: if not, the held tasks are unknown
        self._last_crash_at: float | None = None

    @property
    def snapshot(self) -> WorkerSnapshot:
        return self._snapshot

    @property
    def state(self) -> WorkerState:
        return self._snapshot.state

    def active(self) -> bool:
        """True while the worker runs or is about to run again."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.active():
            return
        self._stop_requested = False
        self._update(restarts=0, error=None, last_lines=(), exit_code=None)
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"worker {self.spec.name}"
        )

    async def stop(self, grace: float | None = None) -> None:
        """Warm shutdown, then a hard kill of the process group after the grace period (or
        `grace` seconds)."""
        self._stop_requested = True
        process = self.process
        grace = self._grace if grace is None else grace
        if process is not None and process.running():
            self._update(state=WorkerState.STOPPING, restart_in=None)
            await self._graceful_stop(self)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                self._note(f"still running after {grace:.0f} s: killing it")
                process.kill()
                await process.wait()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        self._held.clear()
        self._task_events_seen = False
        if self.state not in (WorkerState.FAILED,):
            self._update(state=WorkerState.STOPPED, restart_in=None, pid=None, active_tasks=0)

    def detach(self) -> None:
        """Stop supervising and leave the process running (the app is closing)."""
        if self.process is not None and self.process.running():
            self.process.detach()
        if self._task is not None:
            self._task.cancel()

    def on_node_event(self, kind: str, active: int, processed: int) -> None:
        """A heartbeat, online or offline event for this node, from the cluster monitor."""
        self.last_heartbeat = time.monotonic()
        if kind == "offline" or self.state not in (
            WorkerState.STARTING,
            WorkerState.READY,
            WorkerState.BUSY,
        ):
            return
        self._ready.set()
        state = WorkerState.BUSY if active > 0 else WorkerState.READY
        self._update(state=state, active_tasks=active, processed=processed, heartbeat_age=None)

    def on_task_event(self, kind: TaskEventKind, task_id: str) -> None:
        """A task event for this node: it took a task, started it, or is done with it."""
        self._task_events_seen = True
        if kind == "ended":
            self._held.pop(task_id, None)
        elif self.state in (WorkerState.STARTING, WorkerState.READY, WorkerState.BUSY):
            self._held[task_id] = None

    def set_heartbeat_age(self, seconds: float | None) -> None:
        """Report a worker that stopped sending heartbeats (None: it is beating again)."""
        self._update(heartbeat_age=seconds)

    def heartbeat_age(self) -> float | None:
        if self.last_heartbeat is None:
            return None
        return time.monotonic() - self.last_heartbeat

    async def _run(self) -> None:
        crashes = 0
        while True:
            started = time.monotonic()
            result = await self._run_once()
            verdict = crash_verdict(result.exit_code, result.crashed, self._stop_requested)
            if verdict == "stopped":
                self._note(f"worker stopped (exit code {result.exit_code})")
                self._update(state=WorkerState.STOPPED, pid=None, exit_code=result.exit_code)
                return
            tail = tuple(list(self.log)[-TAIL_LINES:])
            if verdict == "usage":
                self._note("the worker refused its command line (exit code 2); not restarting")
                self._update(
                    state=WorkerState.FAILED,
                    pid=None,
                    exit_code=result.exit_code,
                    error=_usage_error(tail),
                    last_lines=tail,
                )
                return
            if time.monotonic() - started >= self._policy.stable_after:
                crashes = 0
            crashes += 1
            reason = result.error or _crash_reason(result)
            held = self._take_held()
            self._update(
                state=WorkerState.CRASHED,
                pid=None,
                exit_code=result.exit_code,
                error=reason,
                last_lines=tail,
                active_tasks=0,
            )
            if self._policy.gives_up(crashes):
                self._note(f"worker {reason}; it crashed {crashes} times in a row: giving up")
                self._update(
                    state=WorkerState.FAILED,
                    error=f"crashed {crashes} times in a row; last: {reason}",
                )
                self._announce_crash(result, crashes, held, None)
                return
            delay = self._policy.delay(crashes)
            self._note(f"worker {reason}; restarting in {delay:.1f} s")
            self._announce_crash(result, crashes, held, delay)
            await self._countdown(delay)
            self._update(restarts=self._snapshot.restarts + 1)

    async def _run_once(self) -> ProcessExit:
        self._ready.clear()
        self.last_heartbeat = None
        self._update(state=WorkerState.STARTING, restart_in=None, active_tasks=0)
        launch = await self._launch(self.spec)
        self._note(f"starting: {' '.join(launch.argv)}")
        process = WorkerProcess(launch.argv, launch.env, launch.cwd, self._add_lines)
        self.process = process
        try:
            process.start()
            self._update(pid=process.pid)
            return await process.wait()
        except asyncio.CancelledError:
            # The app is closing without waiting for the worker: do not leave an orphan behind
            # unless it was detached on purpose.
            if process.running():
                process.kill()
            raise
        finally:
            self.process = None if not process.running() else process

    def _take_held(self) -> tuple[tuple[str, ...], int]:
        """The tasks a crashed run held (ids known from events, and how many in all)."""
        ids = tuple(self._held)
        self._held.clear()
        seen, self._task_events_seen = self._task_events_seen, False
        # No task event in this run (the app was not listening when it took them): the last
        # heartbeat's count is all there is. Otherwise events are newer than any heartbeat.
        return ids, len(ids) if seen else self._snapshot.active_tasks

    def _announce_crash(
        self,
        result: ProcessExit,
        crashes: int,
        held: tuple[tuple[str, ...], int],
        restart_in: float | None,
    ) -> None:
        ids, count = held
        now = time.time()
        previous, self._last_crash_at = self._last_crash_at, now
        if count:
            self._note(f"{count} task(s) it held go back to the queue and run again")
        self._hub.publish(
            WorkerCrashed(
                worker_id=self.worker_id,
                node=self.spec.name,
                at=now,
                exit_code=result.exit_code,
                signal=result.signal,
                restarted=restart_in is not None,
                restart_in=restart_in,
                crashes_in_a_row=crashes,
                previous_crash_at=previous,
                tasks_handed_back=count,
                task_ids=ids,
            )
        )

    async def _countdown(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while (left := deadline - loop.time()) > 0:
            self._update(state=WorkerState.RESTARTING, restart_in=left)
            await asyncio.sleep(min(1.0, left))

    def _note(self, text: str) -> None:
        """A line of our own in the worker's log, set apart from what the worker writes."""
        self._add_lines([f"── {text}"])

    def _add_lines(self, lines: list[str]) -> None:
        self.log.extend(lines)
        self._hub.publish(WorkerLog(self.worker_id, tuple(lines)))
        if not self._ready.is_set() and any(f"{self.spec.name} ready." in li for li in lines):
            self._ready.set()
            if self.state == WorkerState.STARTING:
                self._update(state=WorkerState.READY)

    def _update(self, **changes: object) -> None:
        new = replace(self._snapshot, **changes)  # type: ignore[arg-type]
        if new != self._snapshot:
            self._snapshot = new
            self._hub.publish(WorkerChanged(new))


def _crash_reason(result: ProcessExit) -> str:
    if result.signal is not None:
        return f"killed by signal {result.signal}"
    if result.crashed:
        return "killed by a signal"
    return f"exited with code {result.exit_code}"


def _usage_error(tail: tuple[str, ...]) -> str:
    """The worker's own complaint about its command line (argparse prints it last)."""
    for line in reversed(tail):
        if "error:" in line:
            return line.split("error:", 1)[1].strip()
    return "the worker refused its command line (exit code 2)"
