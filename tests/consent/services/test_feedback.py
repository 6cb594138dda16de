import datetime as dt

import pytest

from consent.models import ConsentEvent, Suppression
from consent.services.feedback import consent_feedback_record
from consent.services.gate import consent_decide
from consent.services.ledger import ConsentError, consent_record
from tests.consent.factories import CustomerFactory, TopicFactory

pytestmark = pytest.mark.django_db

NOON = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def test_a_hard_bounce_suppresses_the_address_and_records_no_consent_change():
    customer = CustomerFactory(email="gone@example.com")
    TopicFactory(key="news", channels=["email"])
    consent_record(
        customer_id=customer.pk, channel="email", topic_key="news", action="grant", source="api"
    )

    consent_feedback_record(
        customer_id=customer.pk, channel="email", address="Gone@Example.com", kind="hard_bounce"
    )

    assert Suppression.objects.get().reason == "hard_bounce"
    assert ConsentEvent.objects.count() == 1
    assert (
        consent_decide(customer_id=customer.pk, channel="email", topic_key="news", now=NOON).reason
        == "suppressed"
    )


def test_a_complaint_suppresses_and_withdraws_the_channel():
    customer = CustomerFactory()

    consent_feedback_record(
        customer_id=customer.pk,
        channel="email",
        address=customer.email,
        kind="complaint",
        note="fbl",
    )

    event = ConsentEvent.objects.get()
    assert (event.channel, event.topic_id, event.action, event.source) == (
        "email",
        None,
        "withdraw",
        "complaint",
    )
    assert Suppression.objects.get().reason == "complaint"


def test_unknown_feedback_is_refused_and_nothing_is_written():
    with pytest.raises(ConsentError) as error:
        consent_feedback_record(
            customer_id=None, channel="email", address="a@b.example", kind="soft_bounce"
        )
    assert error.value.field == "kind"
    assert Suppression.objects.count() == 0
