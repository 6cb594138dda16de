"""Events that arrive while a journey is paused: awaited ones are taken on resume, exit
criteria apply at once, and without the awaited event the wait still times out."""

import datetime as dt

import pytest

from customers.models import Customer, Event
from journeys import clock
from journeys.models import Enrolment, EnrolmentTransition
from journeys.services.journeys import journey_pause, journey_resume
from journeys.services.tick import enrolments_due_tick
from tests.customers.ingest.helpers import post
from tests.journeys.factories import live_journey
from tests.journeys.graphs import documented_example

pytestmark = pytest.mark.django_db


@pytest.fixture
def send(client, basic_auth, django_capture_on_commit_callbacks):
    counter = iter(range(1_000_000))

    def send(event: str, user_id: str = "u1", **properties):
        body = {
            "userId": user_id,
            "event": event,
            "properties": properties,
            "messageId": f"message-{next(counter)}",
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, "/v1/track", body, basic_auth)
        assert response.status_code == 200, response.content

    return send


@pytest.fixture
def cart(send, outbox):
    """The documented cart journey, with u1 waiting (1 h) for the order of cart c1."""
    journey = live_journey(documented_example(), name="Cart", exit_events=["Account Deleted"])
    send("Product Added", price=5, cart_id="c1")
    assert enrolment().current_step == "wait_order"
    return journey


def enrolment() -> Enrolment:
    return Enrolment.objects.get(customer=Customer.objects.get(external_id="u1"))


def reasons() -> list[str]:
    return list(
        EnrolmentTransition.objects.filter(enrolment=enrolment())
        .order_by("id")
        .values_list("reason", flat=True)
    )


def test_an_event_awaited_during_the_pause_is_taken_on_resume(send, cart, outbox):
    journey_pause(journey=cart)
    send("Order Completed", cart_id="other-cart")
    send("Order Completed", cart_id="c1")
    assert (enrolment().status, enrolment().current_step) == ("waiting", "wait_order")

    journey_resume(journey=cart)

    moved = enrolment()
    assert (moved.status, moved.current_step, moved.journey_paused) == (
        "completed",
        "bought",
        False,
    )
    (taken,) = EnrolmentTransition.objects.filter(enrolment=moved, reason="event")
    order = Event.objects.get(name="Order Completed", properties__cart_id="c1")
    assert (taken.actor, taken.data) == ("resume", {"event_id": str(order.pk)})
    # Its timer no longer fires, and nothing was sent.
    clock.clock_advance(by=dt.timedelta(hours=2))
    assert enrolments_due_tick() == 0
    assert outbox.enqueued == []


def test_a_resumed_wait_without_its_event_times_out(send, cart, outbox):
    journey_pause(journey=cart)
    send("Order Completed", cart_id="other-cart")  # not the awaited cart

    journey_resume(journey=cart)
    assert (enrolment().status, enrolment().current_step) == ("waiting", "wait_order")
    clock.clock_advance(by=dt.timedelta(hours=1, seconds=1))
    assert enrolments_due_tick() == 1

    assert reasons().count("event") == 0
    assert reasons().count("timeout") == 1
    assert enrolment().current_step == "wait_day"


def test_an_event_after_the_timeout_does_not_count_on_resume(send, cart, outbox):
    journey_pause(journey=cart)
    clock.clock_advance(by=dt.timedelta(hours=1, seconds=1))
    send("Order Completed", cart_id="c1")  # too late: the wait ended during the pause

    journey_resume(journey=cart)
    assert enrolment().current_step == "wait_order"
    assert enrolments_due_tick() == 1

    assert reasons().count("event") == 0
    assert reasons().count("timeout") == 1


def test_an_event_from_before_the_wait_started_does_not_count(send, outbox):
    journey = live_journey(documented_example(), name="Cart")
    send("Order Completed", cart_id="c1")  # an earlier order of the same cart id
    send("Product Added", price=5, cart_id="c1")
    journey_pause(journey=journey)

    journey_resume(journey=journey)

    assert (enrolment().status, enrolment().current_step) == ("waiting", "wait_order")
    assert reasons().count("event") == 0


def test_an_exit_event_during_the_pause_takes_the_customer_out_and_resume_keeps_it(
    send, cart, outbox
):
    journey_pause(journey=cart)
    send("Account Deleted")
    assert enrolment().status == "exited"

    journey_resume(journey=cart)
    clock.clock_advance(by=dt.timedelta(days=3))

    assert enrolments_due_tick() == 0
    assert enrolment().status == "exited"
    assert reasons()[-1] == "exit event Account Deleted"
    assert outbox.enqueued == []
