import datetime as dt

import pytest

from consent.models import ConsentEvent
from consent.services.identify import consent_from_identify, identify_consent_parse
from consent.services.ledger import ConsentError
from tests.consent.factories import CustomerFactory, TopicFactory

pytestmark = pytest.mark.django_db

SENT = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def _identify(preferences):
    return {
        "type": "identify",
        "userId": "u-1",
        "messageId": "m-1",
        "context": {
            "ip": "203.0.113.5",
            "userAgent": "Shop/1.0",
            "page": {"url": "https://shop.example.com/signup"},
            "consent": {"wordingVersion": "signup-v2", "preferences": preferences},
        },
    }


def test_identify_consent_is_recorded_with_evidence_and_the_message_time():
    customer = CustomerFactory()
    TopicFactory(key="news", channels=["email"])
    TopicFactory(key="deals", channels=["email", "sms"])

    events = consent_from_identify(
        customer_id=customer.pk,
        message=_identify({"email": {"news": True, "deals": False}, "sms": {"*": False}}),
        timestamp=SENT,
    )

    assert [(e.channel, e.topic.key if e.topic else None, e.action) for e in events] == [
        ("email", "news", "grant"),
        ("sms", None, "withdraw"),
    ]  # deals was not granted: nothing to withdraw
    assert events[0].occurred_at == SENT
    assert events[0].source == "identify"
    assert events[0].evidence == {
        "ip": "203.0.113.5",
        "user_agent": "Shop/1.0",
        "page": "https://shop.example.com/signup",
        "wording_version": "signup-v2",
        "note": "identify m-1",
    }


@pytest.mark.parametrize(
    ("preferences", "field"),
    [
        ("yes", "context.consent.preferences"),
        ({"fax": {"news": True}}, "context.consent.preferences.fax"),
        ({"email": True}, "context.consent.preferences.email"),
        ({"email": {"news": "yes"}}, "context.consent.preferences.email.news"),
    ],
)
def test_a_malformed_consent_is_refused_before_anything_is_written(preferences, field):
    with pytest.raises(ConsentError) as error:
        identify_consent_parse(_identify(preferences))
    assert error.value.field == field


def test_an_unknown_topic_names_the_field_and_writes_nothing():
    customer = CustomerFactory()
    TopicFactory(key="news", channels=["email"])

    with pytest.raises(ConsentError) as error:
        consent_from_identify(
            customer_id=customer.pk,
            message=_identify({"email": {"news": True, "ghost": True}}),
            timestamp=SENT,
        )

    assert error.value.field == "context.consent.preferences.email.ghost"
    assert ConsentEvent.objects.count() == 0


def test_a_message_without_consent_records_nothing():
    customer = CustomerFactory()
    assert consent_from_identify(customer_id=customer.pk, message={"type": "identify"}) == []
