"""The journeys demo step on a small store: four live, valid journeys, created once."""

import datetime as dt

import pytest
from django.apps import apps

from customers.demo import store as demo
from customers.demo.credentials import DemoCredentials
from customers.demo.steps import DemoRun, demo_steps
from journeys import clock
from journeys.demo import CLOCK_STEPS, HIGH_CHURN_SEGMENT, load
from journeys.models import Enrolment, EnrolmentTransition, Journey, JourneyVersion
from journeys.services.journeys import journey_validate
from segments.models import Segment
from tests.customers.factories import CustomerFactory, EventFactory

NOW = dt.datetime(2026, 6, 1, 12, 30, tzinfo=dt.UTC)
NAMES = {
    "Demo: cart abandonment",
    "Demo: welcome series",
    "Demo: post-purchase cross-sell",
    "Demo: win-back",
}


@pytest.fixture(autouse=True)
def _templates_of_the_tests():
    """The demo uses campaigns' real templates, not the journeys tests' stand-ins."""
    yield


@pytest.fixture
def run() -> DemoRun:
    return DemoRun(
        url="http://testserver",
        store=demo.generate_store(customers=5, days=3, seed=11, now=NOW),
        credentials=DemoCredentials(
            username="admin",
            password=None,
            write_key="jl_demo",
            api_key_id=1,
            user_created=False,
            key_created=False,
        ),
    )


def test_the_app_registers_the_step():
    # Another test swaps a "journeys" step in and out, so register afresh here.
    demo_steps.unregister("journeys")
    apps.get_app_config("journeys").ready()

    assert dict(demo_steps.items())["journeys"] is load


@pytest.mark.django_db
def test_the_demo_publishes_four_valid_live_journeys_once(run):
    # given an empty database
    before = clock.now()

    # when the demo step runs twice
    first = load(run)
    second = load(run)

    # then four journeys are live, each with one version that validates
    journeys = list(Journey.objects.all())
    assert {journey.name for journey in journeys} == NAMES
    assert {journey.status for journey in journeys} == {Journey.Status.LIVE}
    assert JourneyVersion.objects.count() == 4
    for journey in journeys:
        assert journey_validate(graph=journey.live_version.graph) == []
    assert Segment.objects.filter(key=HIGH_CHURN_SEGMENT).count() == 1
    # the cart journey waits for the order of the same cart
    cart = Journey.objects.get(name="Demo: cart abandonment").live_version.graph
    wait = next(step for step in cart["steps"] if step["id"] == "wait_order")
    assert wait["config"]["correlation"]["property"] == "cart_id"
    # and the clock moved forward on each run, so waits come due
    moved = sum(CLOCK_STEPS, dt.timedelta())
    assert clock.offset() == 2 * moved
    assert clock.now() - before >= 2 * moved
    # and the lines name each journey's admin page
    for journey in journeys:
        assert f"http://testserver/admin/journeys/journey/{journey.pk}/change/" in "\n".join(first)
    assert len(first) == len(second) == 5
    assert first[0].startswith("Journeys: 0 recent store events replayed")


def _cart_events(customer, cart_id: str, *, ordered: bool, at: dt.datetime) -> None:
    EventFactory(
        customer=customer,
        name=demo.PRODUCT_ADDED,
        properties={"cart_id": cart_id, "price": 20},
        timestamp=at,
    )
    if ordered:
        EventFactory(
            customer=customer,
            name=demo.ORDER_COMPLETED,
            properties={"cart_id": cart_id, "order_id": "o-1", "total": 20},
            timestamp=at + dt.timedelta(minutes=10),
        )


@pytest.mark.django_db
def test_the_store_s_last_day_flows_through_the_cart_journey_once(run):
    # given one customer who abandoned a cart and one who ordered theirs
    abandoner, buyer = CustomerFactory(), CustomerFactory()
    _cart_events(abandoner, "cart-a", ordered=False, at=NOW)
    _cart_events(buyer, "cart-b", ordered=True, at=NOW)

    # when the demo step runs twice
    first = load(run)
    load(run)

    # then the three events were replayed once, into one cart enrolment each
    assert first[0].startswith("Journeys: 3 recent store events replayed")
    cart = Enrolment.objects.filter(journey__name="Demo: cart abandonment")
    assert cart.count() == 2
    assert not cart.filter(status__in=Enrolment.RUNNING).exists()
    bought = cart.get(customer=buyer)
    # the order, placed 10 minutes after the cart, is the journey's goal
    assert bought.converted_at == bought.entered_at + dt.timedelta(minutes=10)
    assert cart.get(customer=abandoner).converted_at is None
    if not bought.holdout:
        assert bought.current_step == "ordered"
    abandoned = cart.get(customer=abandoner)
    if not abandoned.holdout:
        # through the reminder and the day's wait to the SMS offer, each step once
        steps = list(
            EnrolmentTransition.objects.filter(enrolment=abandoned).values_list(
                "to_step", flat=True
            )
        )
        assert steps.count("remind") == 1
        assert steps.count("offer") == 1
        assert abandoned.current_step == "done"
    # and the buyer's order started one cross-sell, nothing more
    assert Enrolment.objects.filter(journey__name="Demo: post-purchase cross-sell").count() == 1
