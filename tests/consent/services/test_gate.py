import datetime as dt

import pytest

from consent.models import PrivacyRequest
from consent.services.gate import consent_decide, consent_decide_many
from consent.services.ledger import ConsentError, consent_record
from consent.services.sends import consent_record_send
from consent.services.suppression import suppression_add
from tests.consent.factories import CustomerFactory, DeviceFactory, TopicFactory

pytestmark = pytest.mark.django_db

NOON = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)  # 13:00 in Amsterdam: no quiet hours


def _grant(customer, channel="email", topic="news"):
    consent_record(
        customer_id=customer.pk,
        channel=channel,
        topic_key=topic,
        action="grant",
        source="api",
        now=NOON,
    )


def test_a_broadcast_is_decided_in_a_fixed_number_of_queries(django_assert_num_queries):
    TopicFactory(key="news")
    customers = CustomerFactory.create_batch(30)
    for customer in customers[:20]:
        _grant(customer)
    suppression_add(kind="email", address=customers[0].email, reason="hard_bounce")
    consent_record(
        customer_id=customers[1].pk,
        channel="email",
        topic_key=None,
        action="withdraw",
        source="one_click_unsubscribe",
        now=NOON,
    )
    customers[2].email = ""
    customers[2].save()
    PrivacyRequest.objects.create(
        kind="erasure", customer_id=customers[3].pk, requested_by="dpo", channel="command"
    )
    for _ in range(3):
        consent_record_send(
            customer_id=customers[4].pk,
            channel="email",
            topic_key="news",
            sent_at=NOON - dt.timedelta(hours=2),
        )

    with django_assert_num_queries(3):
        decisions = consent_decide_many(
            customer_ids=[c.pk for c in customers] + [10**9],
            channel="email",
            topic_key="news",
            now=NOON,
        )

    reasons = {pk: d.reason for pk, d in decisions.items()}
    assert reasons[customers[0].pk] == "suppressed"
    assert reasons[customers[1].pk] == "withdrawn"
    assert reasons[customers[2].pk] == "unreachable"
    assert reasons[customers[3].pk] == "erased"
    assert reasons[customers[4].pk] == "frequency_capped"
    assert [reasons[c.pk] for c in customers[5:20]] == ["allowed"] * 15
    assert [reasons[c.pk] for c in customers[20:]] == ["no_consent"] * 10
    assert reasons[10**9] == "unreachable"


def test_transactional_sends_are_neither_capped_nor_counted():
    customer = CustomerFactory()
    TopicFactory(key="news")
    _grant(customer)
    for _ in range(5):
        consent_record_send(
            customer_id=customer.pk, channel="email", topic_key="transactional", sent_at=NOON
        )

    assert consent_decide(
        customer_id=customer.pk, channel="email", topic_key="news", now=NOON
    ).allowed
    assert consent_decide(
        customer_id=customer.pk, channel="email", topic_key="transactional", now=NOON
    ).allowed


def test_push_uses_the_devices_and_sms_the_phone_in_the_customers_zone():
    customer = CustomerFactory(timezone="Asia/Tokyo")
    TopicFactory(key="news")
    _grant(customer, channel="push")
    _grant(customer, channel="sms")
    at_night_in_tokyo = dt.datetime(2026, 3, 10, 14, 0, tzinfo=dt.UTC)  # 23:00 there

    assert (
        consent_decide(customer_id=customer.pk, channel="push", topic_key="news", now=NOON).reason
        == "unreachable"
    )
    DeviceFactory(customer=customer)
    assert consent_decide(
        customer_id=customer.pk, channel="push", topic_key="news", now=NOON
    ).allowed
    decision = consent_decide(
        customer_id=customer.pk, channel="sms", topic_key="news", now=at_night_in_tokyo
    )
    assert decision.reason == "quiet_hours"
    assert decision.retry_at == dt.datetime(2026, 3, 10, 23, 0, tzinfo=dt.UTC)  # 08:00 there


def test_an_unknown_channel_is_a_clear_error():
    with pytest.raises(ConsentError) as error:
        consent_decide(customer_id=1, channel="pigeon", topic_key="news", now=NOON)
    assert error.value.field == "channel"


def test_transactional_messages_do_not_depend_on_the_topic_row_surviving_a_flush():
    from consent.models import Topic

    customer = CustomerFactory()
    Topic.objects.filter(key="transactional").delete()  # as a database flush would

    decision = consent_decide(
        customer_id=customer.pk, channel="email", topic_key="transactional", now=NOON
    )

    assert decision.allowed
    assert Topic.objects.get(key="transactional").is_transactional
