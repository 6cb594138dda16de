"""An event acknowledged while Redis and the worker are down still reaches the reactors, once."""

import base64

import httpx
import pytest

from customers.models import Event
from tests.customers import reactor_log
from tests.processes import PrivateRedis, Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def stack(tmp_path):
    reactor_log.create_table()
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    stack = Stack(
        tmp_path,
        redis,
        JOURNEYLINE_EXTRA_REACTORS="tests.customers.reactor_log.record",
        INGEST_SWEEP_AFTER_SECONDS="0",
    )
    yield stack
    stack.stop_all()
    redis.stop()
    reactor_log.drop_table()


def test_event_acknowledged_during_an_outage_is_handed_over_once(stack, write_key):
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    url = stack.start_web()

    # Given: no worker, and Redis goes down after the web process started.
    stack.redis.stop()

    # When: an event arrives, it is acknowledged all the same.
    response = httpx.post(
        f"{url}/v1/track",
        json={"userId": "u1", "event": "Order Completed", "messageId": "outage-1"},
        headers={"Authorization": auth},
        timeout=30,
    )
    assert response.status_code == 200, stack.log("web")
    event = Event.objects.get(message_id="outage-1")
    assert event.handed_over_at is None
    assert reactor_log.times_handed_over() == {}
    assert "could not enqueue event hand-over" in stack.log("web")

    # Then: once Redis and a worker are back, the sweeper hands it over.
    stack.redis.start()
    stack.start_worker()
    stack.call("customers.events_sweep")
    wait_until(
        lambda: Event.objects.filter(pk=event.pk, handed_over_at__isnull=False).exists(),
        what="the hand-over",
    )
    assert reactor_log.times_handed_over() == {event.pk: 1}

    # And: a duplicate delivery of the task and another sweep change nothing.
    stack.call("customers.events_hand_over", [[event.pk]])
    stack.call("customers.events_sweep")
    stack.call("customers.events_hand_over", [[event.pk]])
    wait_until(
        lambda: "events_hand_over" in stack.log("worker") and _queue_empty(stack),
        what="idle worker",
    )
    stack.stop("worker")  # a stopped worker has finished every task it took
    assert reactor_log.times_handed_over() == {event.pk: 1}


def _queue_empty(stack: Stack) -> bool:
    import redis

    client = redis.Redis(unix_socket_path=str(stack.redis.socket))
    return client.llen("celery") == 0 and client.llen("ingest") == 0
