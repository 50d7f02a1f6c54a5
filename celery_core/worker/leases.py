"""Fast hand-back of messages held by a worker that died.

With late acks on Redis, a message a worker took stays in kombu's `unacked` hash until the
worker acks it. If the worker is killed, kombu hands the message out again only once it is
older than the visibility timeout, which must exceed the longest task (or long tasks would run
twice): with a 30-minute limit a killed worker's job would wait an hour.

So each worker renews a short lease for every message it holds (reserved, scheduled or
running), and every worker sweeps the `unacked` index: a message older than the lease lifetime
whose lease has lapsed belongs to a dead worker and is restored to its queue with kombu's own
`restore_by_tag` (a WATCH/MULTI transaction, so two sweepers cannot restore it twice). The
visibility timeout remains the last resort for a worker that lost Redis altogether.

A worker that loses Redis mid-task (the server restarted) cancels its running tasks and can no
longer acknowledge the messages it holds (their channel closed): they stay in Redis's
`unacked` set. The keeper notes each such message and, as soon as Redis answers and the worker
is done with it, puts it back in its queue, so the work goes on within about a second of Redis
answering instead of waiting for the lease sweep. For a while after, it also asks the prefork
pool to replace processes that ended: the one whose task was cancelled exits as Redis comes
back, and after the consumer's restart the pool would notice only at its next 5 s check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown
from celery.worker import state as worker_state

logger = logging.getLogger(__name__)

LEASE_PREFIX = "pixcrawler:lease:"
# How often a worker renews the lease of each message it holds, and how long a lease lives.
# A lapsed lease means its worker died; the visibility timeout stays as a last resort above
# the hard time limit.
LEASE_RENEW_S = 5.0
LEASE_TTL_S = 15.0
# How often the keeper looks at Redis: renewals keep their own pace; a worker that lost Redis
# hands its dropped messages back within this time of Redis answering again.
TICK_S = 1.0
REPAIR_S = 30.0  # how long after a loss the pool is kept whole at every tick


class LeaseKeeper:
    """Renews this worker's leases and restores messages whose lease lapsed."""

    def __init__(
        self,
        app: Celery,
        renew_s: float,
        ttl_s: float,
        maintain_pool: Callable[[], object] | None = None,
    ) -> None:
        self.app = app
        self._maintain_pool = maintain_pool
        self._repair_until = 0.0
        self.renew_s = renew_s
        self.ttl_s = ttl_s
        self._connection: Any = None
        self._connected_since: float | None = None
        self._renewed_at: float | None = None
        self._seen: dict[str, Any] = {}  # delivery tag -> message, held at the last tick
        self._dropped: set[str] = set()  # their channel closed under them: to hand back
        self._down_since: float | None = None

    def _channel(self) -> Any:
        if self._connection is None:
            connection = self.app.connection_for_write()
            try:
                # One attempt: kombu's default would retry for seconds in the worker's loop.
                connection.ensure_connection(max_retries=0)
            except BaseException:
                connection.release()
                raise
            self._connection = connection
            self._connected_since = time.monotonic()
        return self._connection.default_channel

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            finally:
                self._connection = None

    def held_tags(self) -> list[str]:
        return list(self._held())

    def _held(self) -> dict[str, Any]:
        # Also the sets (by identity): `requests` is keyed by task id, and a task cancelled on a
        # connection loss, once its pool process is gone, pops the entry of its own redelivery.
        requests = {
            *list(worker_state.requests.values()),
            *list(worker_state.reserved_requests),
            *list(worker_state.active_requests),
            *list(worker_state.scheduled_requests),
        }
        held = {}
        for request in requests:
            try:
                held[str(request.message.delivery_tag)] = request.message
            except AttributeError:
                continue
        return held

    def _note_dropped(self) -> None:
        """Messages whose channel closed (Redis went away) can never be acked: note them."""
        held = self._held()
        for tag, message in {**self._seen, **held}.items():
            if _channel_closed(message) and tag not in self._dropped:
                self._dropped.add(tag)
                self._repair_until = time.monotonic() + REPAIR_S
        self._seen = held

    def tick(self) -> None:
        """Hand back dropped messages; every `renew_s`, renew, then sweep.

        Errors are logged (once per outage), never raised into the worker's loop.
        """
        now = time.monotonic()
        self._note_dropped()
        if now < self._repair_until and self._maintain_pool is not None:
            try:
                self._maintain_pool()
            except Exception as exc:
                logger.warning("could not check the pool's processes: %s", exc)
        try:
            if self._dropped:
                self.hand_back()
            if self._renewed_at is None or now - self._renewed_at >= self.renew_s:
                self.renew()
                self._renewed_at = now
                self.sweep()
        except Exception as exc:  # Redis down: the next tick tries again on a new connection
            if self._down_since is None:
                self._down_since = now
                logger.warning("lost Redis (%s); retrying every %.0f s", exc, TICK_S)
            self._renewed_at = None
            self.close()
            return
        if self._down_since is not None:
            logger.info("Redis answers again after %.1f s", now - self._down_since)
            self._down_since = None

    def hand_back(self) -> int:
        """Restore the messages noted as dropped that this worker no longer runs."""
        held = set(self._seen)
        done = self._dropped - held
        if not done:
            return 0
        channel = self._channel()
        restored = 0
        with channel.conn_or_acquire() as client:
            for tag in sorted(done):
                # A no-op for a message already acked or restored (checked in a transaction).
                if client.hexists(channel.unacked_key, tag):
                    channel.qos.restore_by_tag(tag, client, leftmost=True)
                    restored += 1
        self._dropped &= held
        if restored:
            logger.warning("handed back %d message(s) dropped when Redis went away", restored)
        return restored

    def renew(self) -> None:
        channel = self._channel()
        tags = self.held_tags()
        if not tags:
            return
        ttl_ms = int(self.ttl_s * 1000)
        with channel.conn_or_acquire() as client:
            pipe = client.pipeline(transaction=False)
            for tag in tags:
                pipe.set(LEASE_PREFIX + tag, "1", px=ttl_ms)
            pipe.execute()

    def sweep(self) -> int:
        """Restore messages older than the lease lifetime that nobody holds; return how many."""
        channel = self._channel()
        # Right after (re)connecting, other workers may not have renewed yet.
        if self._connected_since is None or time.monotonic() - self._connected_since < self.ttl_s:
            return 0
        ceiling = time.time() - self.ttl_s
        restored = 0
        with channel.conn_or_acquire() as client:
            stale = client.zrangebyscore(channel.unacked_index_key, 0, ceiling, start=0, num=100)
            if not stale:
                return 0
            pipe = client.pipeline(transaction=False)
            for tag in stale:
                pipe.exists(LEASE_PREFIX + _text(tag))
            alive = pipe.execute()
            for tag, held in zip(stale, alive, strict=True):
                if held:
                    continue
                channel.qos.restore_by_tag(_text(tag), client, leftmost=True)
                restored += 1
        if restored:
            logger.warning("restored %d message(s) held by a worker that stopped", restored)
        return restored


def _channel_closed(message: Any) -> bool:
    channel = getattr(message, "channel", None)
    return channel is None or bool(getattr(channel, "closed", False))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_keepers: dict[int, tuple[LeaseKeeper, Any]] = {}


@worker_ready.connect(weak=False)
def _start_keeper(sender: Any = None, **_: Any) -> None:
    consumer = sender
    if consumer is None or not str(consumer.app.conf.broker_url or "").startswith(
        ("redis", "unix")
    ):
        return
    pool = getattr(getattr(consumer, "pool", None), "_pool", None)  # prefork: billiard's pool
    keeper = LeaseKeeper(
        consumer.app, LEASE_RENEW_S, LEASE_TTL_S, getattr(pool, "maintain_pool", None)
    )
    keeper.tick()
    tref = consumer.timer.call_repeatedly(TICK_S, keeper.tick)
    _keepers[id(consumer.app)] = (keeper, tref)


@worker_shutdown.connect(weak=False)
def _stop_keepers(**_: Any) -> None:
    for keeper, tref in list(_keepers.values()):
        try:
            tref.cancel()
        finally:
            keeper.close()
    _keepers.clear()
