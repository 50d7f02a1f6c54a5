"""The app's own Redis going away, without processes: when the keeper starts it again and when
it gives up, how the status bar words each state, and how a worker hands back the messages it
dropped when Redis went away."""

from __future__ import annotations

import itertools
import logging
import random
import signal
from types import SimpleNamespace
from typing import Any

import pytest

from celery_core.worker import broker_loss, leases
from pixcrawler_gui.presentation.redis_text import own_server_shown
from pixcrawler_gui.services.events import EmbeddedServerStatus, OwnServerState
from pixcrawler_gui.services.redis.own_server import OWN_REDIS_POLICY, exit_facts, next_restart
from pixcrawler_gui.services.workers.restart_policy import RestartPolicy

# -- when to start it again --------------------------------------------------------------------


def test_the_first_restart_comes_at_once_and_later_ones_back_off() -> None:
    policy = OWN_REDIS_POLICY
    crashes, delays = 0, []
    while True:
        crashes, delay = next_restart(policy, crashes, uptime=0.5)
        if delay is None:
            break
        delays.append(delay)
    assert crashes == policy.max_crashes
    assert delays[0] <= 0.3  # with detection and start, back within 2 s
    assert all(later > earlier for earlier, later in itertools.pairwise(delays))
    assert sum(delays) < 10  # a server that cannot run is reported within seconds


def test_a_server_that_ran_a_while_starts_a_new_count() -> None:
    policy = RestartPolicy(base_delay=1.0, jitter=0.0, max_crashes=3, stable_after=30.0)
    assert next_restart(policy, 2, uptime=5.0) == (3, None)  # the third end in a row: give up
    assert next_restart(policy, 2, uptime=31.0) == (1, 1.0)  # it ran 31 s: a first end again


def test_delays_stay_within_the_jitter() -> None:
    rng = random.Random(7)
    for crashes in range(1, 6):
        raw = min(OWN_REDIS_POLICY.max_delay, 0.25 * 2 ** (crashes - 1))
        delay = OWN_REDIS_POLICY.delay(crashes, rng)
        assert raw * 0.8 <= delay <= raw * 1.2


@pytest.mark.parametrize(
    ("returncode", "facts"),
    [(None, (None, None)), (0, (0, None)), (1, (1, None)), (-9, (None, 9)), (-15, (None, 15))],
)
def test_exit_facts(returncode: int | None, facts: tuple[int | None, int | None]) -> None:
    assert exit_facts(returncode) == facts


# -- the status bar's words --------------------------------------------------------------------


def _status(state: OwnServerState, **facts: Any) -> EmbeddedServerStatus:
    return EmbeddedServerStatus(
        state, port=6390, version="redis 7.0.15", replaces="redis://localhost:6379/0", **facts
    )


def test_running_the_first_time_says_why_and_where() -> None:
    shown = own_server_shown(_status(OwnServerState.RUNNING))
    assert shown is not None and shown.color == "#2e9d5b"
    assert shown.text == "Own Redis on port 6390"
    assert "nothing answered at redis://localhost:6379/0" in shown.tooltip
    assert shown.message == (
        "Started PixCrawler's own Redis: nothing answered at redis://localhost:6379/0"
    )


def test_running_again_says_it_came_back() -> None:
    shown = own_server_shown(_status(OwnServerState.RUNNING, restarts=2))
    assert shown is not None and shown.text == "Own Redis on port 6390"
    assert "started again 2 times, on the same port with its data" in shown.tooltip
    assert shown.message is not None and "running again on port 6390" in shown.message


def test_down_is_red_and_says_it_restarts() -> None:
    killed = _status(OwnServerState.DOWN, signal=signal.SIGKILL, restart_in=0.25)
    shown = own_server_shown(killed)
    assert shown is not None and shown.color == "#d03b3b"
    assert shown.text == "Own Redis stopped: restarting…"
    assert "(port 6390) was ended by SIGKILL (ended from outside PixCrawler)" in shown.tooltip
    assert "workers and jobs wait, then go on by themselves" in shown.tooltip
    later = own_server_shown(_status(OwnServerState.DOWN, exit_code=1, restart_in=3.2))
    assert later is not None and later.text == "Own Redis stopped: restarting in 4 s"
    assert "exited with code 1" in later.tooltip
    starting = own_server_shown(_status(OwnServerState.RESTARTING, crashes_in_a_row=3))
    assert starting is not None and starting.text == "Own Redis stopped: restarting…"
    assert "It stopped 3 times in a row." in starting.tooltip


def test_failed_shows_the_log_and_what_to_do() -> None:
    failed = _status(
        OwnServerState.FAILED,
        crashes_in_a_row=6,
        error="port 6390 is in use by another program",
        last_lines=("# Warning: Could not create server TCP listening socket *:6390",),
    )
    shown = own_server_shown(failed)
    assert shown is not None and shown.color == "#d03b3b"
    assert shown.text == "Own Redis failed: not restarted"
    assert "stopped 6 times in a row and is not started again" in shown.tooltip
    assert "could not start: port 6390 is in use by another program" in shown.tooltip
    assert "The end of its log:\n# Warning: Could not create server" in shown.tooltip
    assert "Quit and reopen PixCrawler" in shown.tooltip
    assert shown.message is not None and shown.message_ms == 0  # stays until something else


def test_no_redis_and_stopped() -> None:
    none = own_server_shown(EmbeddedServerStatus(OwnServerState.UNAVAILABLE, error="no binary"))
    assert none is not None and (none.text, none.tooltip) == ("No Redis", "no binary")
    assert own_server_shown(EmbeddedServerStatus(OwnServerState.STOPPED)) is None


# -- the worker's side -------------------------------------------------------------------------


def test_backend_retry_warnings_lose_their_traceback_but_keep_the_reason() -> None:
    try:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")
    except ConnectionError as exc:
        info = (type(exc), exc, exc.__traceback__)
    record = logging.LogRecord(
        "celery.backends.base", logging.WARNING, __file__, 1,
        "Failed operation %s. Retrying %s more times.", ("_store_result", 19), info,
    )  # fmt: skip
    assert broker_loss._OneLineRetries().filter(record)
    assert record.exc_info is None
    assert record.getMessage() == (
        "Failed operation _store_result. Retrying 19 more times. "
        "(ConnectionError: Error 111 connecting to 127.0.0.1:6390. Connection refused.)"
    )


class _Client:
    def __init__(self, unacked: set[str]) -> None:
        self.unacked = unacked

    def hexists(self, key: str, tag: str) -> bool:
        return tag in self.unacked

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _Channel:
    unacked_key = "unacked"

    def __init__(self, unacked: set[str]) -> None:
        self.client = _Client(unacked)
        self.restored: list[str] = []
        self.qos = SimpleNamespace(restore_by_tag=self._restore)

    def conn_or_acquire(self) -> _Client:
        return self.client

    def _restore(self, tag: str, client: _Client, leftmost: bool = False) -> None:
        assert leftmost
        self.restored.append(tag)
        client.unacked.discard(tag)


class _Ch:
    def __init__(self, closed: bool) -> None:
        self.closed = closed


class _Request:
    """What the keeper reads of a Celery request (hashable by identity, as Celery's are)."""

    def __init__(self, tag: str, closed: bool) -> None:
        self.message = SimpleNamespace(delivery_tag=tag, channel=_Ch(closed))


def _request(tag: str, closed: bool) -> Any:
    return _Request(tag, closed)


def test_messages_whose_channel_closed_are_handed_back_once_the_worker_lets_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held: dict[str, Any] = {}
    monkeypatch.setattr(leases.worker_state, "requests", held)
    for name in ("reserved_requests", "active_requests", "scheduled_requests"):
        monkeypatch.setattr(leases.worker_state, name, set())
    channel = _Channel({"running", "cancelled", "acked-meanwhile"})
    checks: list[float] = []
    keeper = leases.LeaseKeeper(
        SimpleNamespace(), renew_s=5.0, ttl_s=15.0, maintain_pool=lambda: checks.append(1)
    )
    monkeypatch.setattr(keeper, "_channel", lambda: channel)
    monkeypatch.setattr(keeper, "renew", lambda: None)
    monkeypatch.setattr(keeper, "sweep", lambda: 0)

    # Working normally: nothing is handed back.
    held.update(running=_request("running", False), cancelled=_request("cancelled", False))
    keeper.tick()
    assert channel.restored == [] and checks == []

    # Redis went away: the consumer's channel closed under both messages; the worker cancels
    # one task at once and the other a moment later. Each goes back once it is let go.
    for request in held.values():
        request.message.channel.closed = True
    del held["cancelled"]
    keeper.tick()
    assert channel.restored == ["cancelled"]
    assert checks  # the pool replaces the process the cancel ended without waiting 5 s
    keeper.tick()
    assert channel.restored == ["cancelled"]  # still held: not yet
    del held["running"]
    keeper.tick()
    assert channel.restored == ["cancelled", "running"]
    keeper.tick()
    assert channel.restored == ["cancelled", "running"]  # once each


def test_a_dropped_message_already_gone_from_redis_is_not_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = {"done": _request("done", True)}
    monkeypatch.setattr(leases.worker_state, "requests", held)
    for name in ("reserved_requests", "active_requests", "scheduled_requests"):
        monkeypatch.setattr(leases.worker_state, name, set())
    channel = _Channel(set())  # acked before Redis went away
    keeper = leases.LeaseKeeper(SimpleNamespace(), renew_s=5.0, ttl_s=15.0)
    monkeypatch.setattr(keeper, "_channel", lambda: channel)
    monkeypatch.setattr(keeper, "renew", lambda: None)
    monkeypatch.setattr(keeper, "sweep", lambda: 0)
    keeper.tick()
    held.clear()
    keeper.tick()
    assert channel.restored == []


# -- the keeper, on a stand-in server ----------------------------------------------------------


class _Server:
    """An `EmbeddedRedis` stand-in: dies on request, starts again or fails to."""

    def __init__(self, fail_starts: int = 0) -> None:
        from celery_core.redis_server.state import ServerInfo

        self.info = ServerInfo("127.0.0.1", 6390, "secret", 100, "redis-server", "/tmp/r")
        self.alive = True
        self.exit_code: int | None = None
        self.fail_starts = fail_starts
        self.log_file = "/tmp/r/server.log"

    def running(self) -> bool:
        return self.alive

    def kill(self) -> None:
        self.alive, self.exit_code = False, -signal.SIGKILL

    def restart(self, timeout: float) -> Any:
        from dataclasses import replace

        from celery_core.redis_server.embedded import EmbeddedRedisError

        self.exit_code = None
        if self.fail_starts:
            self.fail_starts -= 1
            raise EmbeddedRedisError("port 6390 is in use by another program")
        self.info = replace(self.info, pid=self.info.pid + 1)
        self.alive = True
        return self.info

    def log_lines(self, count: int = 15) -> list[str]:
        return ["* Ready to accept connections"]


def _keep(server: _Server, policy: RestartPolicy) -> list[EmbeddedServerStatus]:
    import asyncio

    from pixcrawler_gui.services.events import EventHub
    from pixcrawler_gui.services.redis.own_server import OwnRedisKeeper

    hub = EventHub()
    seen: list[EmbeddedServerStatus] = []
    hub.subscribe(EmbeddedServerStatus, seen.append)

    async def scenario() -> None:
        keeper = OwnRedisKeeper(hub, server, "redis://localhost:6379/0", policy, 0.01)  # type: ignore[arg-type]
        keeper.start()
        for _ in range(200):
            await asyncio.sleep(0.01)
            if seen[-1].state == OwnServerState.FAILED:
                break
            if seen[-1].state == OwnServerState.RUNNING and server.alive and len(seen) > 1:
                break
            if seen[-1].state == OwnServerState.RUNNING and len(seen) == 1:
                server.kill()
        await keeper.stop()

    asyncio.run(scenario())
    return seen


def test_the_keeper_starts_a_dead_server_again_and_says_each_step() -> None:
    server = _Server()
    seen = _keep(server, RestartPolicy(base_delay=0.01, jitter=0.0, max_crashes=3))
    states = [s.state for s in seen]
    assert states[0] == OwnServerState.RUNNING and states[-1] == OwnServerState.RUNNING
    assert OwnServerState.DOWN in states and OwnServerState.RESTARTING in states
    down = next(s for s in seen if s.state == OwnServerState.DOWN)
    assert (down.signal, down.exit_code, down.port, down.crashes_in_a_row) == (9, None, 6390, 1)
    assert seen[-1].restarts == 1 and server.info.pid == 101


def test_the_keeper_gives_up_with_the_log_when_starts_keep_failing() -> None:
    server = _Server(fail_starts=5)
    seen = _keep(server, RestartPolicy(base_delay=0.01, jitter=0.0, max_crashes=3))
    failed = seen[-1]
    assert failed.state == OwnServerState.FAILED and failed.crashes_in_a_row == 3
    assert failed.error == "port 6390 is in use by another program"
    assert failed.last_lines == ("* Ready to accept connections",)
    assert server.fail_starts == 3  # two starts tried, then the third end was the last
