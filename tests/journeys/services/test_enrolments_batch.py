"""Entering many customers at once: the same entry policy as one at a time, in a fixed
number of statements whatever the batch size (so the batching cannot silently regress)."""

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from customers.models import Customer, Event
from journeys import clock, reactors
from journeys.models import Enrolment, EnrolmentTransition, Journey
from journeys.services.enrolments import EnrolmentRefused, Entry, journeys_enrol_many
from journeys.services.journeys import journey_pause
from tests.customers.factories import CustomerFactory, EventFactory
from tests.journeys.factories import live_journey
from tests.journeys.graphs import linear, step

pytestmark = pytest.mark.django_db

INSTANT = linear()  # trigger -> exit: every entry finishes at once
# trigger -> hello (send) -> pause (wait): 3 transitions and one message per entrant
WELCOME = linear(
    step("hello", "send", {"channel": "email", "template": 1, "topic": "news"}),
    step("pause", "wait", {"duration": {"days": 1}}),
)
# The statements of one batch into one journey with a send step, whatever its size: lock
# the customers, read the journeys, the latest enrolments, reserve ids, insert the
# enrolments, read the (new) version's graph, insert the transitions, update the
# enrolments, and three savepoints with their releases (the tests' outbox runs no query).
BATCH_QUERIES = 14


def customers(count: int, tag: str = "c") -> list[Customer]:
    return Customer.objects.bulk_create(
        Customer(external_id=f"{tag}-{n}", email=f"{tag}{n}@example.com") for n in range(count)
    )


def codes(outcomes) -> list[str]:
    return [
        outcome.code if isinstance(outcome, EnrolmentRefused) else "entered" for outcome in outcomes
    ]


@pytest.mark.parametrize("size", [3, 30])
def test_a_batch_enters_everyone_in_a_fixed_number_of_queries(
    size, outbox, django_capture_on_commit_callbacks
):
    # Given: a live welcome journey and customers never in it
    journey = live_journey(WELCOME)
    people = customers(size)
    now = clock.now()

    # When: they all enter in one call
    with (
        django_capture_on_commit_callbacks(execute=True),
        CaptureQueriesContext(connection) as queries,
    ):
        outcomes = journeys_enrol_many(
            entries=[Entry(journey_id=journey.pk, customer=c, payload={"n": 1}) for c in people],
            now=now,
        )

    # Then: each entered, sent its message and waits; the query count does not grow
    assert codes(outcomes) == ["entered"] * size
    assert len(queries) == BATCH_QUERIES, [query["sql"] for query in queries]
    assert Enrolment.objects.filter(journey=journey, status="waiting").count() == size
    assert set(Enrolment.objects.values_list("current_step", flat=True)) == {"pause"}
    assert EnrolmentTransition.objects.count() == 3 * size
    assert len(outbox.enqueued) == size
    assert sorted(outbox.dispatched) == sorted(m.idempotency_key for m in outbox.enqueued)
    enrolment = Enrolment.objects.get(pk=outcomes[0].pk)
    assert enrolment.state["enrolment_id"] == str(enrolment.pk)
    assert enrolment.trigger_payload == {"n": 1}


def test_repeated_entries_in_one_batch_follow_the_policy_in_order(outbox):
    # Given: one journey per policy, all finishing at once, and one that waits
    once = live_journey(INSTANT, name="once", entry_policy=Journey.EntryPolicy.ONCE)
    weekly = live_journey(
        INSTANT,
        name="weekly",
        entry_policy=Journey.EntryPolicy.ONCE_PER_PERIOD,
        entry_period_days=7,
    )
    again = live_journey(INSTANT, name="again")
    waiting = live_journey(linear(step("pause", "wait", {"duration": {"days": 1}})), name="w")
    person = CustomerFactory()

    # When: the same customer asks twice for each in one batch
    outcomes = journeys_enrol_many(
        entries=[
            Entry(journey_id=journey.pk, customer=person)
            for journey in (once, weekly, again, waiting)
            for _ in range(2)
        ]
    )

    # Then: exactly what two calls one after the other would have decided
    assert codes(outcomes) == [
        "entered",
        "entered_before",
        "entered",
        "entered_recently",
        "entered",
        "entered",
        "entered",
        "already_enrolled",
    ]
    counts = dict(
        Journey.objects.filter(enrolments__customer=person)
        .values_list("name")
        .annotate(n=Count("enrolments"))
    )
    assert counts == {"once": 1, "weekly": 1, "again": 2, "w": 1}
    assert Enrolment.objects.filter(journey=waiting, status="waiting").count() == 1


def test_refused_entries_write_nothing_and_the_rest_of_the_batch_enters(outbox):
    # Given: a customer already inside, one who entered a once-ever journey before, a
    # paused journey, and a newcomer
    journey = live_journey(WELCOME, name="welcome", entry_policy=Journey.EntryPolicy.ONCE)
    paused = live_journey(WELCOME, name="paused")
    journey_pause(journey=paused)
    inside, newcomer = CustomerFactory(), CustomerFactory()
    journeys_enrol_many(entries=[Entry(journey_id=journey.pk, customer=inside)])
    enrolments_before = Enrolment.objects.count()
    transitions_before = EnrolmentTransition.objects.count()
    outbox.enqueued.clear()

    # When
    outcomes = journeys_enrol_many(
        entries=[
            Entry(journey_id=journey.pk, customer=inside),
            Entry(journey_id=paused.pk, customer=newcomer),
            Entry(journey_id=journey.pk, customer=newcomer),
        ]
    )

    # Then: only the newcomer entered the live journey; nothing else was written
    assert codes(outcomes) == ["already_enrolled", "not_live", "entered"]
    assert Enrolment.objects.count() == enrolments_before + 1
    assert EnrolmentTransition.objects.count() == transitions_before + 3
    assert [m.customer_id for m in outbox.enqueued] == [newcomer.pk]
    assert Enrolment.objects.filter(journey=paused).count() == 0


def test_holdouts_in_a_batch_run_no_step(outbox):
    # Given: a journey keeping half its entrants out
    journey = live_journey(WELCOME, holdout_share="0.500")
    people = customers(40)

    # When
    journeys_enrol_many(entries=[Entry(journey_id=journey.pk, customer=c) for c in people])

    # Then: every entrant is either held out (one holdout row, no message) or waiting
    held = Enrolment.objects.filter(holdout=True, status="exited")
    waiting = Enrolment.objects.filter(holdout=False, status="waiting")
    assert held.count() + waiting.count() == 40
    assert 0 < held.count() < 40
    assert EnrolmentTransition.objects.filter(reason="holdout").count() == held.count()
    assert EnrolmentTransition.objects.count() == held.count() + 3 * waiting.count()
    assert len(outbox.enqueued) == waiting.count()


def test_the_reactor_starts_a_batch_of_events_in_as_many_queries_as_one(outbox):
    # Given: a live journey started by "Signed Up", and sign-ups of 1 and then 20 people
    live_journey(WELCOME)
    warm_up, one, twenty = (
        [EventFactory(name="Signed Up") for _ in range(size)] for size in (1, 1, 20)
    )
    reactors.on_events(load(warm_up))  # builds the trigger index, compiles the version
    queries = {}

    # When: the reactor gets each batch
    for name, events in (("one", one), ("twenty", twenty)):
        with CaptureQueriesContext(connection) as captured:
            reactors.on_events(load(events))
        queries[name] = [query["sql"] for query in captured]

    # Then: everyone entered, with one INSERT of enrolments per batch, and the batch of
    # twenty took exactly as many queries as the batch of one
    assert Enrolment.objects.filter(status="waiting").count() == 22
    assert len(outbox.enqueued) == 22
    for sqls in queries.values():
        assert sum("INSERT INTO journeys_enrolment\n" in sql for sql in sqls) == 1
    assert len(queries["twenty"]) == len(queries["one"]), queries["twenty"]


def load(events: list[Event]) -> list[Event]:
    return list(Event.objects.select_related("customer").filter(pk__in=[e.pk for e in events]))
