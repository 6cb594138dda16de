"""Queues per concern: message dispatch waits in its own queue, taken by workers of its own."""

import redis as redis_client
from django.conf import settings

from config import stack
from config.celery import app as celery_app
from tests.processes import PrivateRedis


def _queues_of(command: list[str]) -> set[str]:
    return set(command[command.index("--queues") + 1].split(","))


def test_dispatch_tasks_are_routed_to_the_dispatch_queue_and_nothing_else_is():
    # given the Celery app configured by the settings
    router = celery_app.amqp.router
    # when tasks of each concern are routed
    queues = {
        name: router.route({}, name)["queue"].name
        for name in (
            "campaigns.dispatch",
            "campaigns.dispatch_tick",
            "campaigns.campaign_send",
            "customers.events_hand_over",
            "journeys.tick",
        )
    }
    # then only dispatch goes to "dispatch"; ticks, journeys and ingest go elsewhere
    assert queues == {
        "campaigns.dispatch": "dispatch",
        "campaigns.dispatch_tick": "celery",
        "campaigns.campaign_send": "celery",
        "customers.events_hand_over": "ingest",
        "journeys.tick": "celery",
    }


def test_make_serve_runs_a_dispatch_worker_beside_the_general_one(monkeypatch):
    # given no queue settings in the environment
    for name in ("CELERY_QUEUES", "CELERY_DISPATCH_QUEUES", "CELERY_DISPATCH_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    # when make serve builds its process commands
    commands = stack._commands(8000)
    # then one worker takes only dispatch, the other everything else, and every routed
    # queue has a worker
    general, dispatch = _queues_of(commands["worker"]), _queues_of(commands["dispatch"])
    assert dispatch == {"dispatch"}
    assert general == {"celery", "ingest"}
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed | {"celery"} <= general | dispatch
    assert commands["dispatch"][commands["dispatch"].index("--prefetch-multiplier") + 1] == "1"
    assert commands["worker"][-1] != commands["dispatch"][-1]  # distinct node names


def test_a_dispatch_task_waits_in_the_dispatch_queue_of_a_real_broker(tmp_path):
    from campaigns.tasks import messages_dispatch_task
    from customers.tasks import events_hand_over_task

    # given a private Redis as the broker, and tasks really published (not run eagerly)
    broker = PrivateRedis(tmp_path / "redis")
    broker.start()
    celery_app.conf.task_always_eager = False
    try:
        with celery_app.connection_for_write(f"redis+socket://{broker.socket}") as connection:
            # when a dispatch task and an ingest hand-over are enqueued
            messages_dispatch_task.apply_async(args=[[1, 2, 3]], connection=connection)
            events_hand_over_task.apply_async(args=[[7]], connection=connection)
        # then each waits in its own list on the broker, none in the default queue
        client = redis_client.Redis(unix_socket_path=str(broker.socket))
        assert (client.llen("dispatch"), client.llen("ingest"), client.llen("celery")) == (1, 1, 0)
    finally:
        broker.stop()
