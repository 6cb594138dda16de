"""New events reach every registered reactor once, after commit."""

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import Event
from customers.reactors import reactors
from customers.services.handover import events_hand_over, events_sweep
from tests.customers import reactor_log
from tests.customers.ingest.helpers import post

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged():
    reactor_log.create_table()
    reactors.register("test-log", reactor_log.record)
    yield reactor_log.times_handed_over
    reactors.unregister("test-log")
    reactor_log.drop_table()


def batch_of(*message_ids):
    return {
        "batch": [
            {"type": "track", "userId": "u", "event": "E", "messageId": m} for m in message_ids
        ]
    }


def test_new_events_are_handed_over_after_commit(
    client, basic_auth, logged, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post(client, "/v1/batch", batch_of("a", "b"), basic_auth)
        assert logged() == {}  # nothing before the commit

    assert len(callbacks) == 1  # one task per request
    callbacks[0]()

    ids = set(Event.objects.values_list("pk", flat=True))
    assert logged() == {pk: 1 for pk in ids}
    assert Event.objects.filter(handed_over_at=None).count() == 0


def test_repeated_message_ids_are_not_handed_over_again(
    client, basic_auth, logged, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post(client, "/v1/batch", batch_of("a"), basic_auth)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        post(client, "/v1/batch", batch_of("a"), basic_auth)

    assert callbacks == []
    assert list(logged().values()) == [1]


def test_a_task_delivered_twice_hands_over_once(client, basic_auth, logged):
    post(client, "/v1/batch", batch_of("a", "b"), basic_auth)
    ids = list(Event.objects.values_list("pk", flat=True))

    assert events_hand_over(event_ids=ids) == 2
    assert events_hand_over(event_ids=ids) == 0
    assert sorted(logged().values()) == [1, 1]


def test_a_failing_reactor_leaves_the_events_for_later(client, basic_auth, logged):
    post(client, "/v1/batch", batch_of("a"), basic_auth)
    ids = list(Event.objects.values_list("pk", flat=True))

    def broken(events):
        raise RuntimeError("reactor down")

    reactors.register("broken", broken)
    try:
        with pytest.raises(RuntimeError):
            events_hand_over(event_ids=ids)
    finally:
        reactors.unregister("broken")

    assert logged() == {}
    assert Event.objects.get().handed_over_at is None
    assert events_hand_over(event_ids=ids) == 1
    assert list(logged().values()) == [1]


def test_the_sweeper_hands_over_what_a_lost_task_left_behind(client, basic_auth, logged):
    post(client, "/v1/batch", batch_of("old", "fresh"), basic_auth)  # on_commit never ran
    Event.objects.filter(message_id="old").update(
        received_at=timezone.now() - dt.timedelta(minutes=5)
    )

    swept = events_sweep(older_than=dt.timedelta(seconds=30))

    # Only the old one was swept; the task it queued takes everything waiting.
    assert swept == 1
    old, fresh = Event.objects.get(message_id="old"), Event.objects.get(message_id="fresh")
    assert logged() == {old.pk: 1, fresh.pk: 1}
    assert Event.objects.filter(handed_over_at=None).count() == 0
    assert events_sweep(older_than=dt.timedelta(seconds=30)) == 0


def test_the_task_arguments_round_trip_as_json(client, basic_auth, logged):
    import json

    from customers.tasks import events_hand_over_task

    post(client, "/v1/batch", batch_of("a"), basic_auth)
    ids = json.loads(json.dumps(list(Event.objects.values_list("pk", flat=True))))
    assert events_hand_over_task.delay(ids).get() == 1


def test_the_sweeper_waits_while_hand_overs_are_still_queued(
    client, basic_auth, logged, settings, tmp_path
):
    from kombu import Connection

    from config.celery import app
    from tests.processes import PrivateRedis

    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    broker = "redis+socket://" + str(redis.socket)
    previous = app.conf.broker_url
    app.conf.broker_url = broker
    app.conf.task_always_eager = False  # a real queue to look at; nothing is sent to it
    try:
        post(client, "/v1/batch", batch_of("old"), basic_auth)
        Event.objects.update(received_at=timezone.now() - dt.timedelta(minutes=5))
        with Connection(broker) as connection:
            queue = connection.SimpleQueue("ingest")
            queue.put({"a task": "still waiting for a worker"})
            queue.close()

        assert events_sweep(older_than=dt.timedelta(seconds=30)) == 0
        assert Event.objects.get().handed_over_at is None
    finally:
        app.conf.broker_url = previous
        redis.stop()


def test_activity_of_a_known_customer_is_handed_over_once(
    client, basic_auth, logged, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post(client, "/v1/identify", {"userId": "u"}, basic_auth)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        post(client, "/v1/batch", batch_of("t1", "t2"), basic_auth)
        post(client, "/v1/batch", batch_of("t1", "t2"), basic_auth)  # repeated: nothing new

    assert len(callbacks) == 1
    assert sorted(logged().values()) == [1, 1, 1]
    assert Event.objects.filter(handed_over_at=None).count() == 0


def test_while_a_hand_over_is_queued_requests_queue_no_other(
    client, basic_auth, logged, tmp_path, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    from config.celery import app
    from customers.services.handover import QUEUED_FLAG, events_hand_over_queued
    from tests.processes import PrivateRedis

    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    previous = app.conf.broker_url
    app.conf.broker_url = "redis+socket://" + str(redis.socket)
    _forget_broker_connections(app)
    app.conf.task_always_eager = False
    cache.delete(QUEUED_FLAG)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            post(client, "/v1/batch", batch_of("a"), basic_auth)
        with django_capture_on_commit_callbacks(execute=True):
            post(client, "/v1/batch", batch_of("b"), basic_auth)
        import redis as redis_client

        queued = redis_client.Redis(unix_socket_path=str(redis.socket)).llen("ingest")
        assert queued == 1  # the second request saw the first one's task queued

        # The one task, when it runs, hands over both.
        first = Event.objects.get(message_id="a")
        assert events_hand_over_queued(event_ids=[first.pk]) == 2
        assert sorted(logged().values()) == [1, 1]
        assert cache.get(QUEUED_FLAG) is None  # the next request queues a task again
    finally:
        app.conf.broker_url = previous
        _forget_broker_connections(app)
        cache.delete(QUEUED_FLAG)
        redis.stop()


def _forget_broker_connections(app) -> None:
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
