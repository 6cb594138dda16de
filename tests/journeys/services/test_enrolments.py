import datetime as dt

import pytest

from customers.models import Customer
from journeys import clock
from journeys.models import Enrolment, EnrolmentTransition, Journey
from journeys.services.enrolments import EnrolmentRefused, journey_enrol
from journeys.services.journeys import journey_pause
from tests.customers.factories import CustomerFactory
from tests.journeys.factories import live_journey
from tests.journeys.graphs import linear, step

pytestmark = pytest.mark.django_db

INSTANT = linear()  # trigger -> exit: every entry finishes at once
WAITING = linear(step("pause", "wait", {"duration": {"days": 1}}))


def refused_code(**kwargs) -> str:
    with pytest.raises(EnrolmentRefused) as refused:
        journey_enrol(**kwargs)
    return refused.value.code


def test_never_twice_at_once_whatever_the_policy():
    journey = live_journey(WAITING)
    customer = CustomerFactory()
    journey_enrol(journey=journey, customer=customer)

    assert refused_code(journey=journey, customer=customer) == "already_enrolled"
    assert Enrolment.objects.filter(customer=customer).count() == 1


def test_once_ever():
    journey = live_journey(INSTANT, entry_policy=Journey.EntryPolicy.ONCE)
    customer = CustomerFactory()
    first = journey_enrol(journey=journey, customer=customer)
    first.refresh_from_db()
    assert first.status == "completed"

    assert refused_code(journey=journey, customer=customer) == "entered_before"
    assert Enrolment.objects.filter(customer=customer).count() == 1


def test_once_per_period():
    journey = live_journey(
        INSTANT, entry_policy=Journey.EntryPolicy.ONCE_PER_PERIOD, entry_period_days=7
    )
    customer = CustomerFactory()
    now = clock.now()
    journey_enrol(journey=journey, customer=customer, now=now)

    six_days = now + dt.timedelta(days=6)
    assert refused_code(journey=journey, customer=customer, now=six_days) == "entered_recently"
    journey_enrol(journey=journey, customer=customer, now=now + dt.timedelta(days=7, seconds=1))
    assert Enrolment.objects.filter(customer=customer).count() == 2


def test_again_after_leaving():
    journey = live_journey(INSTANT)
    customer = CustomerFactory()
    for _ in range(3):
        journey_enrol(journey=journey, customer=customer)
    assert Enrolment.objects.filter(customer=customer, status="completed").count() == 3


def test_a_paused_or_draft_journey_takes_no_entries_and_writes_nothing():
    journey = live_journey(WAITING)
    journey_pause(journey=journey)
    customer = CustomerFactory()

    assert refused_code(journey=journey, customer=customer) == "not_live"
    assert Enrolment.objects.count() == 0
    assert EnrolmentTransition.objects.count() == 0


def test_holdout_share_keeps_about_that_share_out_and_runs_no_step_for_them():
    journey = live_journey(WAITING, holdout_share="0.250")
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"holdout-{n}", email=f"h{n}@example.com") for n in range(200)
    )
    for customer in customers:
        journey_enrol(journey=journey, customer=customer)

    held = Enrolment.objects.filter(holdout=True)
    # 50 expected; 25..75 is more than four standard deviations (6.1) either side.
    assert 25 <= held.count() <= 75
    assert set(held.values_list("status", flat=True)) == {"exited"}
    assert set(
        EnrolmentTransition.objects.filter(enrolment__holdout=True).values_list("reason", flat=True)
    ) == {"holdout"}
    assert Enrolment.objects.filter(holdout=False, status="waiting").count() == 200 - held.count()
