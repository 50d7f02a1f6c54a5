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
"""

from __future__ import annotations

import logging
import time
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


class LeaseKeeper:
    """Renews this worker's leases and restores messages whose lease lapsed."""

    def __init__(self, app: Celery, renew_s: float, ttl_s: float) -> None:
        self.app = app
        self.renew_s = renew_s
        self.ttl_s = ttl_s
        self._connection: Any = None
        self._connected_since: float | None = None

    def _channel(self) -> Any:
        if self._connection is None:
            self._connection = self.app.connection_for_write()
            self._connected_since = time.monotonic()
        return self._connection.default_channel

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            finally:
                self._connection = None

    def held_tags(self) -> list[str]:
        tags = []
        for request in list(worker_state.requests.values()):
            try:
                tags.append(str(request.message.delivery_tag))
            except AttributeError:
                continue
        return tags

    def tick(self) -> None:
        """Renew, then sweep. Errors are logged, never raised into the worker's loop."""
        try:
            self.renew()
            self.sweep()
        except Exception as exc:  # Redis down: the next tick tries again on a new connection
            logger.warning("lease tick failed: %s", exc)
            self.close()

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
    keeper = LeaseKeeper(consumer.app, LEASE_RENEW_S, LEASE_TTL_S)
    keeper.tick()
    tref = consumer.timer.call_repeatedly(LEASE_RENEW_S, keeper.tick)
    _keepers[id(consumer.app)] = (keeper, tref)


@worker_shutdown.connect(weak=False)
def _stop_keepers(**_: Any) -> None:
    for keeper, tref in list(_keepers.values()):
        try:
            tref.cancel()
        finally:
            keeper.close()
    _keepers.clear()
