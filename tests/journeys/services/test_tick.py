import datetime as dt

import pytest

from journeys import clock
from journeys.models import Enrolment, EnrolmentTransition
from journeys.services.enrolments import journey_enrol
from journeys.services.journeys import journey_pause, journey_resume
from journeys.services.tick import enrolments_due_tick
from tests.customers.factories import CustomerFactory
from tests.journeys.factories import live_journey
from tests.journeys.graphs import linear, step

pytestmark = pytest.mark.django_db

TWO_WAITS = linear(
    step("first", "wait", {"duration": {"hours": 1}}),
    step("second", "wait", {"duration": {"days": 1}}),
)


def test_the_tick_moves_only_due_enrolments_and_each_once():
    journey = live_journey(TWO_WAITS)
    now = clock.now()
    early = journey_enrol(journey=journey, customer=CustomerFactory(), now=now)
    late = journey_enrol(
        journey=journey, customer=CustomerFactory(), now=now + dt.timedelta(minutes=30)
    )

    assert enrolments_due_tick(now=now + dt.timedelta(minutes=59)) == 0
    assert enrolments_due_tick(now=now + dt.timedelta(hours=1)) == 1
    assert enrolments_due_tick(now=now + dt.timedelta(hours=1)) == 0

    early.refresh_from_db()
    late.refresh_from_db()
    assert (early.current_step, early.wake_at) == ("second", now + dt.timedelta(hours=1, days=1))
    assert late.current_step == "first"
    assert EnrolmentTransition.objects.filter(actor="tick").count() == 1


def test_the_tick_follows_the_moved_clock():
    journey = live_journey(TWO_WAITS)
    enrolment = journey_enrol(journey=journey, customer=CustomerFactory())

    clock.clock_advance(by=dt.timedelta(hours=1, seconds=1))
    assert enrolments_due_tick() == 1
    clock.clock_advance(by=dt.timedelta(days=1))
    assert enrolments_due_tick() == 1

    enrolment.refresh_from_db()
    assert enrolment.status == "completed"
    assert enrolment.finished_at is not None


def test_the_clock_only_moves_forward():
    with pytest.raises(ValueError, match="forward"):
        clock.clock_advance(by=dt.timedelta(seconds=-1))


def test_a_paused_journey_keeps_its_waiting_customers_until_it_resumes():
    journey = live_journey(TWO_WAITS)
    now = clock.now()
    enrolment = journey_enrol(journey=journey, customer=CustomerFactory(), now=now)
    journey_pause(journey=journey)

    assert enrolments_due_tick(now=now + dt.timedelta(hours=5)) == 0
    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.current_step) == ("waiting", "first")
    # Out of the tick's partial index, so a paused journey costs the tick nothing.
    assert enrolment.journey_paused is True

    journey_resume(journey=journey)
    assert enrolments_due_tick(now=now + dt.timedelta(hours=5)) == 1
    enrolment.refresh_from_db()
    assert (enrolment.current_step, enrolment.journey_paused) == ("second", False)


def test_the_tick_works_in_bounded_batches():
    journey = live_journey(TWO_WAITS)
    now = clock.now()
    for customer in CustomerFactory.create_batch(7):
        journey_enrol(journey=journey, customer=customer, now=now)

    later = now + dt.timedelta(hours=2)
    assert enrolments_due_tick(now=later, batch_size=3, max_batches=2) == 6
    assert enrolments_due_tick(now=later, batch_size=3, max_batches=2) == 1
    assert Enrolment.objects.filter(current_step="second").count() == 7


def test_the_tick_task_round_trips_through_celery():
    from journeys.tasks import journeys_tick_task

    journey = live_journey(TWO_WAITS)
    journey_enrol(journey=journey, customer=CustomerFactory())
    clock.clock_advance(by=dt.timedelta(hours=2))

    assert journeys_tick_task.delay().get() == 1
