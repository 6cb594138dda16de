"""Journey messages go out in small dispatch tasks: a customer's message never waits
behind hundreds of others in one task while another worker process idles."""

import pytest
from celery.signals import task_prerun

from campaigns.models import Message, MessageStatus
from campaigns.services.cross_channel import JourneyOutbox
from tests.campaigns.services.conftest import granted_customer, published_version
from tests.campaigns.services.test_cross_channel import Outbound

pytestmark = pytest.mark.django_db


@pytest.fixture
def dispatch_tasks():
    """The message ids of each dispatch task run (tasks run eagerly in unit tests)."""
    seen: list[list[int]] = []

    def record(sender=None, args=None, **kwargs):
        if sender is not None and sender.name == "campaigns.dispatch":
            seen.append(list(args[0]))

    task_prerun.connect(record, weak=False)
    yield seen
    task_prerun.disconnect(record)


def test_a_batch_of_journey_messages_is_dispatched_in_tasks_of_the_journey_size(
    backends, topic, settings, dispatch_tasks, django_capture_on_commit_callbacks
):
    # Given: 45 customers reaching a send step in one runner batch
    settings.JOURNEYS_DISPATCH_BATCH_SIZE = 20
    settings.DISPATCH_BATCH_SIZE = 200
    email = published_version("email")
    customers = [granted_customer(topic) for _ in range(45)]
    outbound = [
        Outbound(f"j:{n}:hello:1", c.pk, n, 1, "hello", "email", email.template_id, "news", {})
        for n, c in enumerate(customers)
    ]

    # When: the journey outbox stores them and dispatches them on commit
    outbox = JourneyOutbox()
    with django_capture_on_commit_callbacks(execute=True):
        outbox.enqueue(outbound)
        outbox.dispatch([message.idempotency_key for message in outbound])

    # Then: three tasks of 20, 20 and 5 messages, and every message sent once
    assert [len(ids) for ids in dispatch_tasks] == [20, 20, 5]
    assert len({i for ids in dispatch_tasks for i in ids}) == 45
    assert Message.objects.filter(status=MessageStatus.SENT).count() == 45
    assert len(backends.envelopes) == 45
