"""Conversion goals are measured on the event's own time (sentAt-corrected ``timestamp``),
so late-delivered events count in the window they happened in, and never before entry."""

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import Customer
from journeys.models import Enrolment, EnrolmentTransition
from journeys.services.enrolments import journey_enrol
from tests.customers.factories import CustomerFactory
from tests.customers.ingest.helpers import post
from tests.journeys.factories import live_journey
from tests.journeys.graphs import graph, step

pytestmark = pytest.mark.django_db

WINDOW_HOURS = 48


@pytest.fixture
def send_late(client, basic_auth, django_capture_on_commit_callbacks):
    """Send an event that happened ``hours_ago`` but is delivered now (an offline mobile
    batch): the device's ``timestamp`` and ``sentAt`` on its own, skewed clock."""

    def send_late(event: str, user_id: str, hours_ago: float, message_id: str):
        device_now = timezone.now() + dt.timedelta(minutes=7)  # the device clock is off
        body = {
            "userId": user_id,
            "event": event,
            "messageId": message_id,
            "timestamp": (device_now - dt.timedelta(hours=hours_ago)).isoformat(),
            "sentAt": device_now.isoformat(),
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, "/v1/track", body, basic_auth)
        assert response.status_code == 200, response.content

    return send_late


@pytest.fixture
def journey(outbox):
    waiting = graph(
        step("start", "trigger", {"type": "api"}, next="pause"),
        step("pause", "wait", {"duration": {"days": 5}}, next="done"),
        step("done", "exit"),
    )
    return live_journey(waiting, goal_event="Subscribed", goal_window_hours=WINDOW_HOURS)


def entered(journey, user_id: str, hours_ago: float) -> Enrolment:
    customer = CustomerFactory(external_id=user_id)
    return journey_enrol(
        journey=journey, customer=customer, now=timezone.now() - dt.timedelta(hours=hours_ago)
    )


def state(user_id: str) -> tuple[str, bool]:
    enrolment = Enrolment.objects.get(customer=Customer.objects.get(external_id=user_id))
    return enrolment.status, enrolment.converted_at is not None


def test_a_late_event_that_happened_within_the_window_converts(journey, send_late):
    entered(journey, "late", hours_ago=60)

    # Happened 40 h after entering, delivered 60 h after: within the 48 h window.
    send_late("Subscribed", "late", hours_ago=20, message_id="m-late")

    assert state("late") == ("converted", True)
    enrolment = Enrolment.objects.get()
    assert enrolment.converted_at == pytest.approx(
        enrolment.entered_at + dt.timedelta(hours=40), abs=dt.timedelta(seconds=5)
    )
    assert EnrolmentTransition.objects.filter(enrolment=enrolment, actor="goal").count() == 1


def test_an_event_that_happened_after_the_window_does_not_convert(journey, send_late):
    entered(journey, "slow", hours_ago=60)

    send_late("Subscribed", "slow", hours_ago=5, message_id="m-slow")  # 55 h after entry

    assert state("slow") == ("waiting", False)
    assert EnrolmentTransition.objects.filter(actor="goal").count() == 0


def test_an_event_that_happened_before_entry_is_never_credited(journey, send_late):
    entered(journey, "early", hours_ago=30)

    # Delivered after entry, but it happened an hour before the customer entered.
    send_late("Subscribed", "early", hours_ago=31, message_id="m-early")

    assert state("early") == ("waiting", False)
    assert EnrolmentTransition.objects.filter(actor="goal").count() == 0
