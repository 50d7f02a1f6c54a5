"""A worker that loses Redis mid-task keeps running, and reconnects when Redis is back.

kombu 5.7's Redis transport crashes the worker when the broker goes away while the worker
holds a message (always, mid-crawl, with late acks): Celery first drops the transport
(`Connection.collect()` sets its client to None), then closes the channel, whose QoS tries to
put the held messages back in their queue and builds a Redis client from the missing
connection details. The `AttributeError` is not a connection error, so it escapes, and the
worker logs "Unrecoverable error" and exits instead of reconnecting.

`install()` makes that restore a no-op when the transport is gone: Redis is unreachable then
anyway, and the messages stay in Redis's `unacked` set, from which the worker's lease keeper
hands them back as soon as Redis answers again (see `leases.py`).

It also keeps the log readable during the outage: Celery's result backend retries each write
(`result_backend_always_retry`) and logs every attempt with a full traceback; one line each
says the same.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_init

logger = logging.getLogger(__name__)

_PATCHED = "_pixcrawler_detached_restore"
_BACKEND_LOGGER = "celery.backends.base"
_RETRY_MESSAGE = "Failed operation %s. Retrying %s more times."


class _OneLineRetries(logging.Filter):
    """The backend's retry warnings without their traceback (the reason stays in the line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _RETRY_MESSAGE and record.exc_info:
            reason = record.exc_info[1]
            record.msg = _RETRY_MESSAGE + " (%s)"
            args = record.args if isinstance(record.args, tuple) else ()
            record.args = (*args, f"{type(reason).__name__}: {reason}")
            record.exc_info = None
            record.exc_text = None
        return True


@worker_init.connect(weak=False)
def _on_worker_init(**_: Any) -> None:
    install()  # in the worker's main process, before the pool's processes fork


def install() -> None:
    """Patch kombu's Redis QoS once per process and shorten retry warnings (idempotent)."""
    backend_logger = logging.getLogger(_BACKEND_LOGGER)
    if not any(isinstance(f, _OneLineRetries) for f in backend_logger.filters):
        backend_logger.addFilter(_OneLineRetries())
    from kombu.transport import redis as kombu_redis

    qos = kombu_redis.QoS
    if getattr(qos, _PATCHED, False):
        return
    original = qos.restore_unacked

    def restore_unacked(self: Any, client: Any = None) -> Any:
        if client is None and getattr(self.channel.connection, "client", None) is None:
            held = len(self._delivered)
            if held:
                logger.warning(
                    "lost Redis while holding %d message(s); they stay in Redis and are "
                    "handed back once it answers again",
                    held,
                )
            self._delivered.clear()
            return None
        return original(self, client)

    qos.restore_unacked = restore_unacked  # type: ignore[method-assign]
    setattr(qos, _PATCHED, True)
