import pytest

from campaigns.models import Message, MessageOrigin, MessageStatus, MessageStatusChange
from campaigns.services.outbox import (
    ALLOWED_TRANSITIONS,
    MessageError,
    NewMessage,
    Origin,
    message_enqueue,
    message_transition,
    messages_cancel,
    messages_enqueue_many,
)
from tests.campaigns.factories import CustomerFactory, TemplateContentFactory
from tests.campaigns.services.conftest import NOW, granted_customer, published_version

pytestmark = pytest.mark.django_db


def enqueue(customer, version, key="k-1", **kwargs):
    return message_enqueue(
        customer_id=customer.pk,
        channel="email",
        template_version_id=version.pk,
        topic_key="news",
        idempotency_key=key,
        now=NOW,
        **kwargs,
    )


def test_enqueue_stores_one_queued_row_with_its_history(topic):
    # given a customer and a published email version
    customer = granted_customer(topic)
    version = published_version()
    # when a journey step enqueues a message
    message = enqueue(
        customer,
        version,
        origin=Origin(
            kind=MessageOrigin.JOURNEY, journey_id=7, enrolment_id=9, step_id="s1", visit=1
        ),
        context={"event": {"name": "Order Completed", "properties": {"total": 12}}},
    )
    # then one queued row holds the origin, and the history has its first row
    message.refresh_from_db()
    assert (message.status, message.attempts, message.enrolment_id, message.step_id) == (
        MessageStatus.QUEUED,
        0,
        9,
        "s1",
    )
    assert message.next_attempt_at is not None  # the sweeper's deadline
    changes = list(MessageStatusChange.objects.values_list("from_status", "to_status"))
    assert changes == [("", "queued")]


def test_a_repeated_key_returns_the_stored_row_and_enqueues_nothing(
    topic, django_capture_on_commit_callbacks
):
    # given a message already enqueued
    customer = granted_customer(topic)
    version = published_version()
    first = enqueue(customer, version)
    # when the same key is enqueued again
    with django_capture_on_commit_callbacks() as callbacks:
        again = enqueue(customer, version)
    # then it is the same row and no dispatch was scheduled
    assert again.pk == first.pk
    assert Message.objects.count() == 1
    assert MessageStatusChange.objects.count() == 1
    assert callbacks == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"published": False}, "template_version_id"),
        ({"channel": "sms"}, "channel"),
        ({"channel": "fax"}, "channel"),
        ({"key": ""}, "idempotency_key"),
        ({"topic_key": ""}, "topic_key"),
        ({"customer_id": 999_999_999}, "customer_id"),
    ],
)
def test_bad_input_is_refused_with_the_field_and_nothing_is_written(topic, change, field):
    # given a customer and a version (a draft when the case says so)
    customer = granted_customer(topic)
    if change.get("published") is False:
        version = TemplateContentFactory().version
    else:
        version = published_version()
    # when the message is enqueued with one bad argument
    with pytest.raises(MessageError) as raised:
        message_enqueue(
            customer_id=change.get("customer_id", customer.pk),
            channel=change.get("channel", "email"),
            template_version_id=version.pk,
            topic_key=change.get("topic_key", "news"),
            idempotency_key=change.get("key", "k-1"),
        )
    # then the error names the field and no row exists
    assert raised.value.field == field
    assert Message.objects.count() == 0
    assert MessageStatusChange.objects.count() == 0


def test_enqueue_many_skips_stored_keys_and_returns_the_new_ids(topic):
    # given one message already stored
    customers = [granted_customer(topic) for _ in range(3)]
    version = published_version()
    enqueue(customers[0], version, key="b-0")
    # when a batch including that key is enqueued
    ids = messages_enqueue_many(
        messages=[
            NewMessage(
                customer_id=customer.pk,
                channel="email",
                template_version_id=version.pk,
                topic_key="news",
                idempotency_key=f"b-{index}",
                origin=Origin(kind=MessageOrigin.CAMPAIGN, campaign_id=3, variant="A"),
            )
            for index, customer in enumerate(customers)
        ],
        now=NOW,
    )
    # then only the two new rows are created, each with one history row
    assert len(ids) == 2
    assert Message.objects.count() == 3
    assert MessageStatusChange.objects.filter(message_id__in=ids).count() == 2
    assert set(Message.objects.filter(pk__in=ids).values_list("variant", flat=True)) == {"A"}


def test_every_status_transition_follows_the_table(topic):
    # given one message
    customer = CustomerFactory()
    message = enqueue(customer, published_version())
    history = MessageStatusChange.objects.count()
    for from_status in MessageStatus.values:
        for to_status in MessageStatus.values:
            Message.objects.filter(pk=message.pk).update(status=from_status)
            # when the transition is asked for
            moved = message_transition(message_id=message.pk, to_status=to_status, actor="test")
            # then it happens exactly when the table allows it, with a history row
            allowed = to_status in ALLOWED_TRANSITIONS[from_status]
            assert moved is allowed, (from_status, to_status)
            status = Message.objects.get(pk=message.pk).status
            assert status == (to_status if allowed else from_status)
            history += int(allowed)
            assert MessageStatusChange.objects.count() == history


def test_a_transition_from_a_stale_status_changes_nothing(topic):
    # given a message that is already sent
    message = enqueue(CustomerFactory(), published_version())
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.SENT)
    # when a caller that still believes it queued asks to skip it
    moved = message_transition(
        message_id=message.pk,
        to_status=MessageStatus.SKIPPED,
        actor="test",
        from_statuses=[MessageStatus.QUEUED],
    )
    # then nothing changes
    assert moved is False
    assert Message.objects.get(pk=message.pk).status == MessageStatus.SENT
    assert MessageStatusChange.objects.count() == 1


def test_cancel_skips_only_messages_not_yet_sent(topic):
    # given a queued, a deferred and a sent message
    version = published_version()
    queued, deferred, sent = (enqueue(CustomerFactory(), version, key=f"c-{i}") for i in range(3))
    Message.objects.filter(pk=deferred.pk).update(status=MessageStatus.DEFERRED)
    Message.objects.filter(pk=sent.pk).update(status=MessageStatus.SENT)
    # when all three are cancelled
    count = messages_cancel(
        message_ids=[queued.pk, deferred.pk, sent.pk], actor="admin", reason="cancelled"
    )
    # then the two unsent ones are skipped, each with a history row naming its old status
    assert count == 2
    assert dict(Message.objects.values_list("pk", "status")) == {
        queued.pk: "skipped",
        deferred.pk: "skipped",
        sent.pk: "sent",
    }
    skipped = MessageStatusChange.objects.filter(to_status="skipped")
    assert sorted(skipped.values_list("from_status", flat=True)) == ["deferred", "queued"]
