"""The Celery application: queues, routes and the reliability settings, built from `CelerySettings`.

`celery -A celery_core.worker.app worker` uses the module-level `app`; it reads the settings
only when Celery first asks for its configuration, so importing this module has no side effects.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from celery_core.settings.celery_settings import CelerySettings, get_settings

# Importing leases connects the worker signal handlers that renew and sweep message leases:
# every app this module builds hands a dead worker's messages back quickly. broker_loss keeps
# a worker that loses Redis alive, so it reconnects when Redis is back.
from celery_core.worker import broker_loss, leases  # noqa: F401

QUEUE_CRAWL = "crawl"
QUEUE_VALIDATION = "validation"
QUEUE_DEFAULT = "default"
QUEUES = (QUEUE_CRAWL, QUEUE_VALIDATION, QUEUE_DEFAULT)

# Exact task names, not globs: a glob that matches nothing sends every task to the default
# queue without a word, and tests check each registered task against this table.
TASK_ROUTES: dict[str, dict[str, str]] = {
    "pixcrawler.crawl_keyword": {"queue": QUEUE_CRAWL},
    "pixcrawler.finalize_dataset": {"queue": QUEUE_VALIDATION},
    "pixcrawler.health_check": {"queue": QUEUE_DEFAULT},
}

TASK_MODULES = ("celery_core.worker.tasks",)


def celery_config(settings: CelerySettings) -> dict[str, Any]:
    """The Celery configuration for `settings`, as plain keys (tests assert on it)."""
    transport_options = {
        "visibility_timeout": settings.visibility_timeout,
        # kombu's defaults sweep for abandoned messages only every 10 x 10 s.
        "unacked_restore_interval": 2,
        "unacked_restore_throttle": 1,
        "socket_timeout": 15,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 10,
        "retry_on_timeout": True,
    }
    exchange = Exchange("pixcrawler", type="direct")
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        "broker_transport_options": transport_options,
        "result_backend_transport_options": {
            "socket_timeout": 15,
            "socket_connect_timeout": 5,
            "retry_policy": {"timeout": 10.0},
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "broker_heartbeat": 0,  # Redis has no AMQP heartbeats; liveness comes from events
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_track_started": True,
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "result_extended": True,
        "result_expires": settings.result_expires,
        "result_backend_always_retry": True,
        "result_backend_max_retries": 20,
        # Retried writes sleep at most 1 s (Celery's default is 10 s): a worker blocked in them
        # while Redis restarts goes on within a second of its return.
        "result_backend_max_sleep_between_retries_ms": 1000,
        "task_acks_late": settings.task_acks_late,
        "task_acks_on_failure_or_timeout": True,
        "task_reject_on_worker_lost": settings.task_reject_on_worker_lost,
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_default_retry_delay": settings.task_default_retry_delay,
        "pixcrawler_max_retries": settings.task_max_retries,
        "pixcrawler_retry_backoff_max": settings.task_retry_backoff_max,
        "worker_prefetch_multiplier": settings.worker_prefetch_multiplier,
        "worker_max_tasks_per_child": settings.worker_max_tasks_per_child or None,
        "worker_max_memory_per_child": (settings.worker_max_memory_per_child_mb * 1024) or None,
        "worker_concurrency": settings.resolved_concurrency,
        "worker_pool": settings.resolved_pool,
        "worker_redirect_stdouts": False,
        "task_default_queue": QUEUE_DEFAULT,
        "task_default_exchange": exchange.name,
        "task_default_routing_key": QUEUE_DEFAULT,
        "task_queues": [Queue(name, exchange, routing_key=name) for name in QUEUES],
        "task_routes": TASK_ROUTES,
        "task_create_missing_queues": False,
        "broker_channel_error_retry": True,
        "imports": list(TASK_MODULES),
        "timezone": "UTC",
        "enable_utc": True,
    }


class SubmitterCelery(Celery):
    """An app for clients that submit jobs and read results from Redis themselves.

    Celery's Redis backend subscribes to every task's result channel as the task is sent, to
    make `AsyncResult.get()` fast. A client that follows jobs through job records (the desktop
    app, `pixcrawler crawl`) never calls get(): those subscriptions would only pile up unread
    messages, and unsubscribing from a garbage-collected result fails noisily once Redis is gone.
    Never call `AsyncResult.get()` on such an app: read `celery_core.jobs.control` instead.
    """

    def _get_backend(self) -> Any:
        from celery.app.backends import by_url
        from celery.backends.redis import RedisBackend

        backend_cls, url = by_url(self.conf.result_backend, self.loader)
        if isinstance(backend_cls, type) and issubclass(backend_cls, RedisBackend):
            backend_cls = _QuietRedisBackend
        return backend_cls(app=self, url=url)


def _quiet_backend() -> type:
    from celery.backends.redis import RedisBackend

    class QuietRedisBackend(RedisBackend):
        def on_task_call(self, producer: Any, task_id: str) -> None:
            """Do not subscribe to the result of each task sent."""

        def add_pending_result(self, result: Any, weak: bool = False, **_: Any) -> Any:
            return result  # nothing to follow: this app never waits on a result

        def remove_pending_result(self, result: Any) -> Any:
            return result  # called from AsyncResult.__del__, possibly after Redis is gone

    return QuietRedisBackend


_QuietRedisBackend = _quiet_backend()


def create_app(
    settings: CelerySettings | None = None,
    main: str = "pixcrawler",
    follow_results: bool = True,
) -> Celery:
    """A Celery app configured from `settings` (the process's settings when omitted).

    `follow_results=False` gives an app for job submitters (see `SubmitterCelery`).
    """
    app = (Celery if follow_results else SubmitterCelery)(main, set_as_current=False)
    if settings is None:
        # Deferred: Celery calls this the first time it needs its configuration.
        app.config_from_object(_LazyConfig())
    else:
        app.conf.update(celery_config(settings))
    # Tasks are shared tasks: importing the module registers them on every app.
    import celery_core.worker.tasks  # noqa: F401

    return app


class _LazyConfig:
    """Configuration object whose attributes are read from the settings on first access."""

    _data: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if self._data is None:
            self._data = celery_config(get_settings())
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> list[str]:
        if self._data is None:
            self._data = celery_config(get_settings())
        return list(self._data)


app = create_app()
