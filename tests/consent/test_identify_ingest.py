"""Consent carried by identify calls, end to end through the ingest API."""

import pytest

from consent.models import ConsentEvent, ConsentState
from customers.models import Customer, Event
from tests.consent.factories import TopicFactory
from tests.customers.ingest.helpers import post

pytestmark = pytest.mark.django_db


def identify(consent) -> dict:
    return {
        "userId": "u1",
        "traits": {"email": "ada@example.com"},
        "context": {"ip": "203.0.113.5", "consent": consent},
    }


def test_identify_consent_is_recorded_once_when_the_event_is_handed_over(
    client, basic_auth, django_capture_on_commit_callbacks
):
    TopicFactory(key="newsletter")
    consent = {"wordingVersion": "signup-v2", "preferences": {"email": {"newsletter": True}}}

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "/v1/identify", identify(consent), basic_auth)

    assert response.status_code == 200
    entry = ConsentEvent.objects.get()
    assert (entry.channel, entry.topic.key, entry.action, entry.source) == (
        "email", "newsletter", "grant", "identify",
    )  # fmt: skip
    assert entry.evidence["wording_version"] == "signup-v2"
    assert entry.evidence["ip"] == "203.0.113.5"
    assert ConsentState.objects.get().action == "grant"


@pytest.mark.parametrize(
    ("consent", "field"),
    [
        ("yes", "context.consent"),
        ({"preferences": {"fax": {"news": True}}}, "context.consent.preferences.fax"),
        ({"preferences": {"email": {"news": "yes"}}}, "context.consent.preferences.email.news"),
    ],
)
def test_malformed_identify_consent_is_a_400_and_stores_nothing(client, basic_auth, consent, field):
    response = post(client, "/v1/identify", identify(consent), basic_auth)

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert Event.objects.count() == 0
    assert Customer.objects.count() == 0
    assert ConsentEvent.objects.count() == 0


def test_an_unknown_topic_keeps_the_event_but_records_no_consent(
    client, basic_auth, django_capture_on_commit_callbacks
):
    consent = {"preferences": {"email": {"no-such-topic": True}}}
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "/v1/identify", identify(consent), basic_auth)

    assert response.status_code == 200
    assert Event.objects.get().handed_over_at is not None
    assert ConsentEvent.objects.count() == 0
