import datetime as dt

import pytest
from django.test import Client

from consent.models import ConsentEvent
from consent.services.gate import consent_decide
from consent.services.ledger import consent_record
from consent.sms import keyword_of, twilio_signature
from tests.consent.factories import CustomerFactory, TopicFactory

NOON_IN_AMSTERDAM = dt.datetime(2026, 3, 10, 11, 0, tzinfo=dt.UTC)
URL = "http://testserver/consent/sms/twilio/"
TOKEN = "twilio-test-token"


def test_the_signature_matches_twilios_documented_example():
    params = {
        "CallSid": ["CA1234567890ABCDE"],
        "Caller": ["+12349013030"],
        "Digits": ["1234"],
        "From": ["+12349013030"],
        "To": ["+18005551212"],
    }
    assert (
        twilio_signature(
            url="https://mycompany.com/myapp.php?foo=1&bar=2", params=params, auth_token="12345"
        )
        == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    )


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("STOP", "stop"),
        (" stop ", "stop"),
        ("Stop.", "stop"),
        ("STOPALL", "stop"),
        ("unsubscribe", "stop"),
        ("CANCEL", "stop"),
        ("end", "stop"),
        ("Quit", "stop"),
        ("START", "start"),
        ("unstop", "start"),
        ("HELP", "help"),
        ("please don't stop", None),
        ("", None),
    ],
)
def test_keywords_are_the_whole_message_in_any_case(body, keyword):
    assert keyword_of(body) == keyword


@pytest.fixture
def twilio(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN

    def post(body, from_number="+31 6 1000 0001", signature=None, **extra):
        params = {"From": from_number, "To": "+3197010000000", "Body": body, "MessageSid": "SM1"}
        signed = twilio_signature(
            url=URL, params={k: [v] for k, v in params.items()}, auth_token=TOKEN
        )
        return Client().post(
            "/consent/sms/twilio/",
            params,
            HTTP_X_TWILIO_SIGNATURE=signature if signature is not None else signed,
        )

    return post


@pytest.mark.django_db
def test_stop_withdraws_every_sms_topic_and_start_lifts_it(twilio):
    customer = CustomerFactory(phone="+31610000001")
    TopicFactory(key="deals", channels=["sms"])
    consent_record(
        customer_id=customer.pk, channel="sms", topic_key="deals", action="grant", source="api"
    )

    stopped = twilio("Stop")

    assert stopped.status_code == 200
    assert stopped["Content-Type"] == "text/xml"
    assert "<Response><Message>You are unsubscribed" in stopped.content.decode()
    assert consent_decide(customer_id=customer.pk, channel="sms", topic_key="deals").reason == (
        "withdrawn"
    )
    row = ConsentEvent.objects.get(customer=customer, source="sms_keyword")
    assert (row.channel, row.topic_id, row.action) == ("sms", None, "withdraw")

    started = twilio("START")

    assert "subscribed to our text messages again" in started.content.decode()
    assert ConsentEvent.objects.filter(customer=customer, source="sms_keyword").count() == 2
    assert consent_decide(
        customer_id=customer.pk, channel="sms", topic_key="deals", now=NOON_IN_AMSTERDAM
    ).allowed


@pytest.mark.django_db
def test_help_answers_and_other_text_gets_an_empty_reply_and_nothing_is_recorded(twilio):
    CustomerFactory(phone="+31610000001")

    helped = twilio("help")
    other = twilio("What time do you open?")

    assert "Reply STOP to unsubscribe" in helped.content.decode()
    assert other.content.decode().endswith("<Response></Response>")
    assert ConsentEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_bad_signature_is_refused_and_changes_nothing(twilio):
    CustomerFactory(phone="+31610000001")

    response = twilio("STOP", signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    unsigned = twilio("STOP", signature="")

    assert response.status_code == 403
    assert unsigned.status_code == 403
    assert ConsentEvent.objects.count() == 0


@pytest.mark.django_db
def test_without_an_auth_token_the_webhook_is_unavailable(twilio, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    CustomerFactory(phone="+31610000001")

    assert twilio("STOP").status_code == 503
    assert ConsentEvent.objects.count() == 0


@pytest.mark.django_db
def test_stop_from_an_unknown_number_suppresses_it_until_start(twilio):
    twilio("STOP", from_number="+31 6 2000 0002")
    later = CustomerFactory(phone="+31620000002")
    TopicFactory(key="deals", channels=["sms"])
    consent_record(
        customer_id=later.pk, channel="sms", topic_key="deals", action="grant", source="import"
    )

    assert (
        consent_decide(
            customer_id=later.pk, channel="sms", topic_key="deals", now=NOON_IN_AMSTERDAM
        ).reason
        == "suppressed"
    )

    twilio("START", from_number="+31 6 2000 0002")

    assert consent_decide(
        customer_id=later.pk, channel="sms", topic_key="deals", now=NOON_IN_AMSTERDAM
    ).allowed
