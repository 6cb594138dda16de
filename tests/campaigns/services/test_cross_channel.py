import datetime as dt
import threading
from dataclasses import dataclass

import pytest
from django.db import connection

from campaigns.models import Message, MessageStatus
from campaigns.services.cross_channel import (
    ChannelChoice,
    JourneyOutbox,
    message_enqueue_best_channel,
)
from campaigns.services.dispatch import CUSTOMER_LOCK_CLASS, messages_dispatch, messages_tick
from campaigns.services.outbox import MessageError, NewMessage, messages_enqueue_many
from consent.models import Action, Source
from consent.services.ledger import consent_record
from tests.campaigns.factories import CustomerFactory
from tests.campaigns.services.conftest import NOW, granted_customer, published_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(db):
    return published_version("email"), published_version("sms")


def choices(versions):
    email, sms = versions
    return [ChannelChoice("email", email.pk), ChannelChoice("sms", sms.pk)]


def withdraw(customer, channel, topic):
    consent_record(
        customer_id=customer.pk,
        channel=channel,
        topic_key=topic.key,
        action=Action.WITHDRAW,
        source=Source.API,
        now=NOW - dt.timedelta(hours=1),
        occurred_at=NOW - dt.timedelta(hours=1),
    )


def test_the_first_channel_the_gate_allows_is_chosen(backends, topic, versions):
    # given a customer who withdrew email but allows SMS
    customer = granted_customer(topic)
    withdraw(customer, "email", topic)
    # when a journey asks for email, else SMS
    result = message_enqueue_best_channel(
        customer_id=customer.pk,
        choices=choices(versions),
        topic_key="news",
        idempotency_key="j-1",
        now=NOW,
    )
    # then the message is queued on SMS, and email's refusal is reported
    assert result.message.channel == "sms"
    assert result.message.status == MessageStatus.QUEUED
    assert result.decisions["email"].reason == "withdrawn"
    assert Message.objects.count() == 1


def test_a_customer_without_an_address_is_reached_on_the_next_channel(backends, topic, versions):
    # given a consenting customer with no email address
    customer = granted_customer(topic, email="")
    # when email, else SMS, is asked for
    result = message_enqueue_best_channel(
        customer_id=customer.pk, choices=choices(versions), topic_key="news", idempotency_key="j"
    )
    # then SMS is used
    assert result.message.channel == "sms"
    assert result.decisions["email"].reason == "unreachable"


def test_when_every_channel_refuses_a_skipped_message_says_why(backends, topic, versions):
    # given a customer with no consent at all
    customer = CustomerFactory()
    # when the best channel is asked for, and dispatch runs
    result = message_enqueue_best_channel(
        customer_id=customer.pk, choices=choices(versions), topic_key="news", idempotency_key="j"
    )
    messages_dispatch(message_ids=[result.message.pk], now=NOW)
    # then one skipped message records both refusals, and nothing was sent
    message = Message.objects.get()
    assert (message.status, message.channel) == (MessageStatus.SKIPPED, "email")
    assert message.failure_reason == "no channel allowed: email no_consent, sms no_consent"
    assert backends.envelopes == []


def test_a_channel_that_only_has_to_wait_is_used_when_none_allows_now(
    backends, topic, versions, settings
):
    # given email withdrawn and SMS in quiet hours
    settings.CONSENT_QUIET_HOURS = {"sms": ("21:00", "08:00")}
    customer = granted_customer(topic)
    withdraw(customer, "email", topic)
    night = dt.datetime(2026, 3, 10, 23, 0, tzinfo=dt.UTC)
    # when the best channel is asked for at night
    result = message_enqueue_best_channel(
        customer_id=customer.pk,
        choices=choices(versions),
        topic_key="news",
        idempotency_key="j",
        now=night,
    )
    # then the SMS is queued, to be deferred until morning at send time
    assert (result.message.channel, result.message.status) == ("sms", MessageStatus.QUEUED)
    assert result.decisions["sms"].reason == "quiet_hours"


def test_a_repeated_key_returns_the_stored_message(backends, topic, versions):
    customer = granted_customer(topic)
    first = message_enqueue_best_channel(
        customer_id=customer.pk, choices=choices(versions), topic_key="news", idempotency_key="j"
    )
    again = message_enqueue_best_channel(
        customer_id=customer.pk, choices=choices(versions), topic_key="news", idempotency_key="j"
    )
    assert again.message.pk == first.message.pk
    assert Message.objects.count() == 1


def test_no_choice_is_a_clear_error(topic):
    with pytest.raises(MessageError) as raised:
        message_enqueue_best_channel(
            customer_id=1, choices=[], topic_key="news", idempotency_key="j"
        )
    assert raised.value.field == "choices"
    assert Message.objects.count() == 0


@dataclass(frozen=True)
class Outbound:
    """The shape of journeys.ports.OutboundMessage (journeys is above campaigns)."""

    idempotency_key: str
    customer_id: int
    enrolment_id: int
    journey_id: int
    step_id: str
    channel: str
    template_id: int
    topic: str
    context: dict
    webhook: dict | None = None


def test_the_journey_outbox_stores_each_effect_once_and_dispatches_on_commit(
    backends, topic, versions, django_capture_on_commit_callbacks
):
    # given a journey effect naming a template
    email, _ = versions
    customer = granted_customer(topic)
    outbound = Outbound("e1:s1:1", customer.pk, 1, 2, "s1", "email", email.template_id, "news", {})
    outbox = JourneyOutbox()
    # when the runner applies it twice and dispatches after commit
    with django_capture_on_commit_callbacks(execute=True):
        outbox.enqueue([outbound])
        outbox.enqueue([outbound])
        outbox.dispatch(["e1:s1:1"])
    # then one message row exists, from the journey, and one email was sent
    message = Message.objects.get()
    assert (message.origin, message.enrolment_id, message.template_version_id) == (
        "journey",
        1,
        email.pk,
    )
    assert message.status == MessageStatus.SENT
    assert len(backends.envelopes) == 1


@pytest.mark.django_db(transaction=True)
def test_dispatch_waits_while_another_worker_holds_the_customer(backends, topic):
    # given a queued email, and another session holding the customer's lock
    customer = granted_customer(topic)
    # (stored without the on-commit dispatch: autocommit would run it at once)
    [message_id] = messages_enqueue_many(
        messages=[NewMessage(customer.pk, "email", published_version().pk, "news", "m")],
        dispatch=False,
    )
    message = Message.objects.get(pk=message_id)
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [CUSTOMER_LOCK_CLASS, customer.pk])
            locked.set()
            release.wait(10)
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [CUSTOMER_LOCK_CLASS, customer.pk])
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    locked.wait(10)
    # when dispatch runs meanwhile
    messages_dispatch(message_ids=[message.pk], now=NOW)
    # then it is deferred for a moment, nothing sent
    message.refresh_from_db()
    assert message.status == MessageStatus.DEFERRED
    assert message.failure_reason == "another message to this customer is being sent"
    assert backends.envelopes == []
    # when the other worker is done and the tick brings it back
    release.set()
    thread.join()
    later = NOW + dt.timedelta(seconds=2)
    messages_tick(now=later)
    messages_dispatch(message_ids=[message.pk], now=later)
    # then it is sent once
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert len(backends.envelopes) == 1
