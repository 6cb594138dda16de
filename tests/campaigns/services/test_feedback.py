import base64
import datetime as dt
import json

import pytest
from django.test import Client

from campaigns.models import Message, MessageStatus, ProviderEvent
from campaigns.services.dispatch import messages_dispatch
from campaigns.services.outbox import message_enqueue
from consent.models import ConsentEvent, Suppression
from consent.sms import twilio_signature
from customers.models import Event
from tests.campaigns.services.conftest import NOW, granted_customer, published_version

pytestmark = pytest.mark.django_db

AUTH = "Basic " + base64.b64encode(b"hook:secret").decode()


@pytest.fixture
def webhook_secret(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:secret"}


def sent_message(topic, *, channel="email", provider_id="pm-1", **customer):
    version = published_version(channel)
    customer = granted_customer(topic, **customer)
    message = message_enqueue(
        customer_id=customer.pk,
        channel=channel,
        template_version_id=version.pk,
        topic_key="news",
        idempotency_key=f"fb-{customer.pk}",
        now=NOW,
    )
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.SENT, provider_id=provider_id)
    return Message.objects.get(pk=message.pk)


def postmark(payload, auth=AUTH):
    return Client().post(
        "/anymail/postmark/tracking/",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )


def delivery(message):
    return {
        "RecordType": "Delivery",
        "MessageID": message.provider_id,
        "Recipient": message.customer.email,
        "DeliveredAt": "2026-03-10T12:01:00Z",
        "Details": "250 OK",
        "Metadata": {"journeyline_message_id": str(message.pk)},
    }


def test_a_delivery_webhook_updates_the_message_and_comes_back_as_an_event_once(
    webhook_secret, topic
):
    # given a sent email
    message = sent_message(topic)
    # when Postmark reports its delivery, twice
    first = postmark(delivery(message))
    second = postmark(delivery(message))
    # then the message is delivered, with one customer event carrying its origin
    assert (first.status_code, second.status_code) == (200, 200)
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    event = Event.objects.get()
    assert (event.name, event.customer_id) == ("Email Delivered", message.customer_id)
    assert event.properties["message_id"] == message.pk
    assert event.timestamp == dt.datetime(2026, 3, 10, 12, 1, tzinfo=dt.UTC)
    assert ProviderEvent.objects.count() == 1
    assert message.status_changes.filter(to_status="delivered").count() == 1


def test_a_webhook_without_the_secret_changes_nothing(webhook_secret, topic):
    message = sent_message(topic)
    response = postmark(delivery(message), auth="Basic " + base64.b64encode(b"x:y").decode())
    assert response.status_code == 400
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert Event.objects.count() == 0


def test_a_click_after_an_open_moves_forward_and_a_late_open_does_not_undo_it(
    webhook_secret, topic
):
    # given a sent email, found by the provider's id alone
    message = sent_message(topic)
    base = {"MessageID": message.provider_id, "Recipient": message.customer.email}
    # when it is opened, clicked, then an older open arrives late
    postmark({**base, "RecordType": "Open", "ReceivedAt": "2026-03-10T12:02:00Z"})
    postmark(
        {
            **base,
            "RecordType": "Click",
            "ReceivedAt": "2026-03-10T12:03:00Z",
            "OriginalLink": "https://shop.example.com/sale",
        }
    )
    postmark({**base, "RecordType": "Open", "ReceivedAt": "2026-03-10T12:01:30Z"})
    # then the message stays clicked, and each event came back once
    message.refresh_from_db()
    assert message.status == MessageStatus.CLICKED
    names = list(Event.objects.order_by("timestamp").values_list("name", flat=True))
    assert names == ["Email Opened", "Email Opened", "Email Link Clicked"]
    click = Event.objects.get(name="Email Link Clicked")
    assert click.properties["url"] == "https://shop.example.com/sale"


def test_a_hard_bounce_suppresses_the_address_and_the_next_send_is_refused(
    webhook_secret, topic, backends
):
    # given a sent email
    message = sent_message(topic, email="gone@example.com")
    # when Postmark reports a hard bounce
    response = postmark(
        {
            "RecordType": "Bounce",
            "ID": 4323372036854775807,
            "Type": "HardBounce",
            "MessageID": message.provider_id,
            "Email": "gone@example.com",
            "BouncedAt": "2026-03-10T12:05:00Z",
            "Description": "The server was unable to deliver your message",
        }
    )
    # then the message bounced, the address is suppressed, an event came back
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == MessageStatus.BOUNCED
    assert Suppression.objects.filter(reason="hard_bounce").count() == 1
    assert Event.objects.get().name == "Email Bounced"
    # when another message to that customer is dispatched
    again = message_enqueue(
        customer_id=message.customer_id,
        channel="email",
        template_version_id=message.template_version_id,
        topic_key="news",
        idempotency_key="after-bounce",
        now=NOW,
    )
    messages_dispatch(message_ids=[again.pk], now=NOW)
    # then it is skipped as suppressed and nothing reaches the server
    again.refresh_from_db()
    assert (again.status, again.decision_reason) == (MessageStatus.SKIPPED, "suppressed")
    assert backends.envelopes == []


def test_a_soft_bounce_does_not_suppress(webhook_secret, topic):
    message = sent_message(topic)
    postmark(
        {
            "RecordType": "Bounce",
            "ID": 77,
            "Type": "SoftBounce",
            "MessageID": message.provider_id,
            "Email": message.customer.email,
            "BouncedAt": "2026-03-10T12:05:00Z",
        }
    )
    assert Suppression.objects.count() == 0


def test_a_complaint_suppresses_and_withdraws_the_channel(webhook_secret, topic):
    message = sent_message(topic)
    before = ConsentEvent.objects.count()
    postmark(
        {
            "RecordType": "SpamComplaint",
            "ID": 99,
            "Type": "SpamComplaint",
            "MessageID": message.provider_id,
            "Email": message.customer.email,
            "BouncedAt": "2026-03-10T12:05:00Z",
        }
    )
    message.refresh_from_db()
    assert message.status == MessageStatus.COMPLAINED
    assert Suppression.objects.filter(reason="complaint").count() == 1
    assert ConsentEvent.objects.count() == before + 1


URL = "http://testserver/campaigns/sms/twilio/status/"


TOKEN = "twilio-token"


def twilio_post(params, signature=None):
    signature = signature or twilio_signature(
        url=URL, params={k: [v] for k, v in params.items()}, auth_token=TOKEN
    )
    return Client().post(URL, data=params, HTTP_X_TWILIO_SIGNATURE=signature)


def test_a_signed_twilio_callback_marks_the_sms_delivered_once(settings, topic):
    # given a sent SMS
    settings.TWILIO_AUTH_TOKEN = TOKEN
    message = sent_message(topic, channel="sms", provider_id="SM42")
    params = {"MessageSid": "SM42", "MessageStatus": "delivered", "To": "+447700900123"}
    # when Twilio calls back twice
    responses = [twilio_post(params), twilio_post(params)]
    # then the SMS is delivered and one SMS Delivered event came back
    assert [r.status_code for r in responses] == [204, 204]
    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert list(Event.objects.values_list("name", flat=True)) == ["SMS Delivered"]


def test_an_unreachable_number_suppresses_it(settings, topic):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    message = sent_message(topic, channel="sms", provider_id="SM43", phone="+447700900999")
    twilio_post({"MessageSid": "SM43", "MessageStatus": "undelivered", "ErrorCode": "30005"})
    message.refresh_from_db()
    assert message.status == MessageStatus.BOUNCED
    assert Suppression.objects.filter(kind="phone").count() == 1


def test_a_badly_signed_or_incomplete_twilio_callback_is_refused(settings, topic):
    # given a sent SMS
    settings.TWILIO_AUTH_TOKEN = TOKEN
    message = sent_message(topic, channel="sms", provider_id="SM44")
    params = {"MessageSid": "SM44", "MessageStatus": "delivered"}
    # when the signature is wrong, or the status missing
    forged = twilio_post(params, signature="bm9wZQ==")
    incomplete = twilio_post({"MessageSid": "SM44"})
    # then both are refused with the reason, and nothing changed
    assert (forged.status_code, incomplete.status_code) == (403, 400)
    assert b"MessageStatus" in incomplete.content
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert Event.objects.count() == 0
    assert ProviderEvent.objects.count() == 0
