"""Several workers at once: each thread has its own database connection and transaction."""

import datetime as dt
import threading

import pytest
from django.db import connection

from customers.models import Event
from journeys import clock
from journeys.models import Enrolment, EnrolmentTransition
from journeys.reactors import on_events
from journeys.services.enrolments import journey_enrol
from journeys.services.tick import enrolments_due_tick
from tests.customers.factories import CustomerFactory
from tests.journeys.factories import live_journey
from tests.journeys.graphs import graph, linear, step

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(*functions):
    """Start the functions on threads at the same moment; return their results."""
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)
    errors: list = []

    def worker(index, function):
        try:
            barrier.wait()
            results[index] = function()
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=pair) for pair in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


def test_two_ticks_at_once_move_each_due_enrolment_exactly_once(outbox):
    journey = live_journey(linear(step("pause", "wait", {"duration": {"hours": 1}})))
    now = clock.now()
    for customer in CustomerFactory.create_batch(30):
        journey_enrol(journey=journey, customer=customer, now=now)
    due = now + dt.timedelta(hours=1)

    claimed = run_together(
        lambda: enrolments_due_tick(now=due, batch_size=4),
        lambda: enrolments_due_tick(now=due, batch_size=4),
    )

    assert sum(claimed) == 30
    assert Enrolment.objects.filter(status="completed").count() == 30
    moves = EnrolmentTransition.objects.filter(actor="tick", from_step="pause")
    assert moves.count() == 30
    assert moves.values("enrolment").distinct().count() == 30


def test_the_same_event_delivered_twice_at_once_moves_the_enrolment_once(outbox):
    waiting = graph(
        step("start", "trigger", {"type": "api"}, next="wait"),
        step(
            "wait",
            "wait_for_event",
            {"event": "Paid", "timeout": {"days": 1}},
            event="thanks",
            timeout="done",
        ),
        step("thanks", "send", {"channel": "email", "template": 1, "topic": "orders"}, next="done"),
        step("done", "exit"),
    )
    journey = live_journey(waiting)
    customer = CustomerFactory()
    enrolment = journey_enrol(journey=journey, customer=customer)
    event = Event.objects.create(
        customer=customer, type="track", name="Paid", timestamp=clock.now(), message_id="paid-1"
    )
    event.customer = customer

    run_together(lambda: on_events([event]), lambda: on_events([event]))

    enrolment.refresh_from_db()
    assert enrolment.status == "completed"
    assert EnrolmentTransition.objects.filter(enrolment=enrolment, reason="event").count() == 1
    assert [message.step_id for message in outbox.enqueued] == ["thanks"]
    assert len(outbox.dispatched) == 1


def test_two_entries_at_once_make_one_enrolment(outbox):
    journey = live_journey(linear(step("pause", "wait", {"duration": {"hours": 1}})))
    customer = CustomerFactory()
    from journeys.services.enrolments import EnrolmentRefused

    def enrol():
        try:
            return journey_enrol(journey=journey, customer=customer).pk
        except EnrolmentRefused as refused:
            return refused.code

    results = run_together(enrol, enrol)

    assert sorted(map(str, results))[-1] == "already_enrolled"
    assert Enrolment.objects.filter(customer=customer).count() == 1
