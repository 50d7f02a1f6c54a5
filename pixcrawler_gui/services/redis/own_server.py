"""PixCrawler's own Redis server, watched like a worker: started again when its process ends.

The app starts its own server (`celery_core.redis_server.embedded`) when nothing answers at
the configured local URL. Workers, the watcher and the status checks all hold URLs with that
server's port and password, so a server that dies is started again on the SAME port with the
SAME password and folder (its append-only file brings the data back): every client then
reconnects by itself. The keeper polls the process (reaping it: no zombie is left), waits as
the worker restart policy says (short delays here: every client waits on this server), and
after too many ends in a row stops trying and reports the server's last log lines.

Each change goes out as an `EmbeddedServerStatus` event.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from celery_core.redis_server.binary import RedisBinaryNotFound
from celery_core.redis_server.embedded import EmbeddedRedis, EmbeddedRedisError
from pixcrawler_gui.services.background import cancel_and_wait
from pixcrawler_gui.services.events import EmbeddedServerStatus, EventHub, OwnServerState
from pixcrawler_gui.services.workers.restart_policy import RestartPolicy

log = logging.getLogger(__name__)

# Every client waits on this server: start it again at once, and give up after about 8 s of
# failed starts (0.25 + 0.5 + 1 + 2 + 4 s apart) rather than a worker's minutes.
OWN_REDIS_POLICY = RestartPolicy(
    base_delay=0.25, factor=2.0, max_delay=4.0, jitter=0.2, max_crashes=6, stable_after=30.0
)
CHECK_EVERY_S = 0.2  # how often the process is looked at (a waitpid: no socket, no thread)
START_TIMEOUT_S = 10.0  # a server loading a large append-only file takes a while
LOG_LINES = 12


def next_restart(policy: RestartPolicy, crashes: int, uptime: float) -> tuple[int, float | None]:
    """After the server ended: its ends in a row (this one included) and the seconds to wait
    before starting it again, or None when the policy gives up.

    A server that ran for `policy.stable_after` seconds starts a new count.
    """
    crashes = 1 if uptime >= policy.stable_after else crashes + 1
    if policy.gives_up(crashes):
        return crashes, None
    return crashes, policy.delay(crashes)


def exit_facts(returncode: int | None) -> tuple[int | None, int | None]:
    """(exit code, signal) from a `Popen.returncode` (negative: the signal that ended it)."""
    if returncode is None:
        return None, None
    if returncode < 0:
        return None, -returncode
    return returncode, None


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True)
class _Ended:
    """How the server's process ended, and when."""

    exit_code: int | None
    signal: int | None
    down_since: float
    error: str | None = None  # why the last start did not work


class OwnRedisKeeper:
    """Watches the app's own Redis server and starts it again when its process ends."""

    def __init__(
        self,
        hub: EventHub,
        server: EmbeddedRedis,
        replaces: str | None,
        policy: RestartPolicy = OWN_REDIS_POLICY,
        check_every: float = CHECK_EVERY_S,
        start_timeout: float = START_TIMEOUT_S,
    ) -> None:
        self._hub = hub
        self.server = server
        self._replaces = replaces
        self._policy = policy
        self._check_every = check_every
        self._start_timeout = start_timeout
        # Its own thread: the shared pool may be stuck on calls to the very server that died.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="own-redis")
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0
        self.last: EmbeddedServerStatus | None = None

    def start(self) -> None:
        """Announce the running server and watch it."""
        self._publish(OwnServerState.RUNNING)
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="own redis")

    async def stop(self) -> None:
        """Stop watching (a start under way finishes in its thread; `server.stop()` waits)."""
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task, timeout=1.0)
        self._thread.shutdown(wait=False, cancel_futures=True)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        crashes = 0
        up_since = loop.time()
        while True:
            await asyncio.sleep(self._check_every)
            if self.server.running():  # reaps the process once it has ended
                continue
            ended = _Ended(*exit_facts(self.server.exit_code), down_since=time.time())
            uptime = loop.time() - up_since
            while True:
                crashes, delay = next_restart(self._policy, crashes, uptime)
                if delay is None:
                    self._give_up(crashes, ended)
                    return
                self._say_ended(crashes, ended)
                await self._countdown(delay, crashes, ended)
                self._publish(OwnServerState.RESTARTING, crashes, ended)
                try:
                    await loop.run_in_executor(
                        self._thread, self.server.restart, self._start_timeout
                    )
                except Exception as exc:  # whatever it was: the next try, or the failed state
                    expected = isinstance(exc, EmbeddedRedisError | RedisBinaryNotFound | OSError)
                    log.warning(
                        "PixCrawler's own Redis did not start again: %s", exc, exc_info=not expected
                    )
                    code, sig = exit_facts(self.server.exit_code)
                    ended = _Ended(code, sig, ended.down_since, error=str(exc))
                    uptime = 0.0
                    continue
                break
            self.restarts += 1
            up_since = loop.time()
            info = self.server.info
            log.info(
                "PixCrawler's own Redis runs again on %s:%d (pid %d), %.1f s after it ended",
                info.host,
                info.port,
                info.pid,
                time.time() - ended.down_since,
            )
            self._publish(OwnServerState.RUNNING, crashes)

    async def _countdown(self, delay: float, crashes: int, ended: _Ended) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while (left := deadline - loop.time()) > 0:
            self._publish(OwnServerState.DOWN, crashes, ended, restart_in=left)
            await asyncio.sleep(min(1.0, left))

    def _say_ended(self, crashes: int, ended: _Ended) -> None:
        if ended.error:
            how = f"could not start again ({ended.error})"
        elif ended.signal is not None:
            how = f"was ended by {signal_name(ended.signal)}"
        elif ended.exit_code is not None:
            how = f"exited with code {ended.exit_code}"
        else:
            how = "stopped"
        log.warning(
            "PixCrawler's own Redis (pid %d) %s; starting it again on port %d (%d in a row)",
            self.server.info.pid,
            how,
            self.server.info.port,
            crashes,
        )

    def _give_up(self, crashes: int, ended: _Ended) -> None:
        lines = tuple(self.server.log_lines(LOG_LINES))
        log.error(
            "PixCrawler's own Redis ended %d times in a row; not starting it again. Its log "
            "(%s) ends with:\n%s",
            crashes,
            self.server.log_file,
            "\n".join(lines),
        )
        self._publish(OwnServerState.FAILED, crashes, ended, last_lines=lines)

    def _publish(
        self,
        state: OwnServerState,
        crashes: int = 0,
        ended: _Ended | None = None,
        restart_in: float | None = None,
        last_lines: tuple[str, ...] = (),
    ) -> None:
        info = self.server.info
        status = EmbeddedServerStatus(
            state=state,
            port=info.port,
            version=info.version,
            replaces=self._replaces,
            error=ended.error if ended else None,
            restarts=self.restarts,
            crashes_in_a_row=crashes,
            restart_in=restart_in,
            exit_code=ended.exit_code if ended else None,
            signal=ended.signal if ended else None,
            down_since=ended.down_since if ended else None,
            last_lines=last_lines,
        )
        self.last = status
        self._hub.publish(status)
