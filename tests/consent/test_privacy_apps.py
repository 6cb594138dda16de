"""Export and erasure reach the messages and journey enrolments of a customer too."""

import datetime as dt

import pytest

from campaigns.models import Message, MessageStatusChange
from consent.services.privacy import customer_erase, customer_export
from journeys.models import Enrolment, EnrolmentTransition
from tests.campaigns.factories import TemplateVersionFactory
from tests.consent.factories import CustomerFactory
from tests.consent.test_privacy import _columns_containing
from tests.journeys.factories import live_journey
from tests.journeys.graphs import linear, step

pytestmark = pytest.mark.django_db

EMAIL = "greta.private@example.org"
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def greta():
    customer = CustomerFactory(email=EMAIL, traits={})
    message = Message.objects.create(
        customer=customer,
        channel="email",
        template_version=TemplateVersionFactory(),
        topic_key="news",
        idempotency_key="privacy-test-1",
        origin="campaign",
        context={"event": {"email": EMAIL}},
        subject=f"Hello {EMAIL}",
        status="sent",
    )
    MessageStatusChange.objects.create(
        message=message, from_status="queued", to_status="sent", actor="test", data={"to": EMAIL}
    )
    journey = live_journey(linear(step("pause", "wait", {"duration": {"days": 1}})))
    enrolment = Enrolment.objects.create(
        journey=journey,
        version=journey.live_version,
        customer=customer,
        status="waiting",
        current_step="pause",
        wake_at=NOW,
        trigger_payload={"email": EMAIL},
        entered_at=NOW,
        state={"payload": {"email": EMAIL}},
    )
    EnrolmentTransition.objects.create(
        enrolment=enrolment, from_step="start", to_step="pause", reason="entered",
        data={"email": EMAIL}, actor="test", created_at=NOW,
    )  # fmt: skip
    return customer


def test_the_export_lists_messages_and_enrolments(greta):
    document = customer_export(customer_id=greta.pk, requested_by="dpo", channel="admin")

    assert [m["subject"] for m in document["messages"]] == [f"Hello {EMAIL}"]
    assert document["messages"][0]["status_history"][0]["to"] == "sent"
    assert [e["trigger_payload"] for e in document["journeys"]] == [{"email": EMAIL}]


def test_erasure_strips_messages_and_enrolments_and_ends_waits(greta):
    erasure = customer_erase(customer_id=greta.pk, requested_by="dpo", channel="admin")

    assert _columns_containing(EMAIL) == []
    assert erasure.summary["messages_erased"] == 1
    assert erasure.summary["journeys_erased"] == 1
    enrolment = Enrolment.objects.get()
    assert (enrolment.status, enrolment.wake_at) == ("exited", None)
    assert Message.objects.get().status == "sent"  # the record that it was sent stays
