"""The Celery app's configuration: routes, serializers, reliability options."""

from __future__ import annotations

from celery_core.settings.celery_settings import CelerySettings
from celery_core.worker.app import QUEUES, TASK_ROUTES, celery_config, create_app

EXPECTED_QUEUE = {
    "pixcrawler.crawl_keyword": "crawl",
    "pixcrawler.finalize_dataset": "validation",
    "pixcrawler.health_check": "default",
}


def test_every_registered_task_routes_to_its_queue() -> None:
    app = create_app(CelerySettings.load())
    ours = sorted(name for name in app.tasks if name.startswith("pixcrawler."))
    assert ours, "no pixcrawler task registered"
    assert set(ours) <= set(TASK_ROUTES), "a task has no explicit route"
    for name in ours:
        route = app.amqp.router.route({}, name)
        assert route["queue"].name == EXPECTED_QUEUE[name], name
    assert set(TASK_ROUTES) <= set(ours), "a route names a task that does not exist"


def test_only_json_crosses_the_broker() -> None:
    conf = celery_config(CelerySettings.load())
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert conf["accept_content"] == conf["result_accept_content"] == ["json"]
    assert conf["event_serializer"] == "json"


def test_reliability_settings_are_set_on_purpose() -> None:
    s = CelerySettings.load()
    conf = celery_config(s)
    assert conf["broker_connection_retry_on_startup"] is True
    assert conf["worker_cancel_long_running_tasks_on_connection_loss"] is True
    assert conf["task_track_started"] is True
    assert conf["worker_send_task_events"] is True and conf["task_send_sent_event"] is True
    assert conf["result_extended"] is True
    assert conf["task_acks_late"] is True and conf["task_reject_on_worker_lost"] is True
    options = conf["broker_transport_options"]
    assert options["visibility_timeout"] > conf["task_time_limit"]
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= 5
    assert [q.name for q in conf["task_queues"]] == list(QUEUES)
