import datetime as dt

import pytest

from journeys.models import Enrolment
from journeys.services.date_triggers import date_triggers_run
from tests.customers.factories import CustomerFactory
from tests.journeys.factories import live_journey
from tests.journeys.graphs import graph, step

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2027, 3, 10, 8, 0, tzinfo=dt.UTC)


def date_journey(**trigger):
    return live_journey(
        graph(
            step("start", "trigger", {"type": "date_trait", **trigger}, next="done"),
            step("done", "exit"),
        )
    )


def test_renewal_three_days_before_enters_once_a_day():
    journey = date_journey(trait="renewal_date", offset_days=-3)
    due = CustomerFactory(traits={"renewal_date": "2027-03-13"})
    CustomerFactory(traits={"renewal_date": "2027-03-14"})
    CustomerFactory(traits={"renewal_date": "not a date"})
    CustomerFactory(traits={})

    assert date_triggers_run(now=NOW) == 1
    assert date_triggers_run(now=NOW + dt.timedelta(hours=5)) == 0  # again the same day

    enrolment = Enrolment.objects.get(journey=journey)
    assert enrolment.customer_id == due.pk
    assert enrolment.trigger_payload == {"trait": "renewal_date", "date": "2027-03-13"}


def test_birthdays_every_year_with_29_february_on_the_28th():
    date_journey(trait="birthday", offset_days=0, annual=True)
    today = CustomerFactory(traits={"birthday": "1990-03-10"})
    CustomerFactory(traits={"birthday": "1990-03-11"})
    leap = CustomerFactory(traits={"birthday": "2000-02-29T00:00:00Z"})

    assert date_triggers_run(now=NOW) == 1
    assert date_triggers_run(now=dt.datetime(2027, 2, 28, 9, 0, tzinfo=dt.UTC)) == 1
    assert set(Enrolment.objects.values_list("customer_id", flat=True)) == {today.pk, leap.pk}
