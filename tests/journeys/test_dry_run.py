"""A dry run over recorded events takes the path the real run took on the same events."""

import datetime as dt

import pytest

from customers.models import Customer
from journeys import clock
from journeys.models import Enrolment, EnrolmentTransition
from journeys.services.dry_run import journey_dry_run
from journeys.services.tick import enrolments_due_tick
from tests.customers.ingest.helpers import post
from tests.journeys.factories import live_journey
from tests.journeys.graphs import documented_example

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("orders_after", [dt.timedelta(minutes=20), dt.timedelta(hours=3), None])
def test_dry_run_equals_the_real_run(
    client, basic_auth, django_capture_on_commit_callbacks, outbox, orders_after
):
    journey = live_journey(documented_example(), name="Cart")
    sent = iter(range(100))

    def send(event, **properties):
        body = {
            "userId": "u1",
            "event": event,
            "properties": properties,
            "messageId": f"m{next(sent)}",
            "timestamp": clock.now().isoformat(),
        }
        with django_capture_on_commit_callbacks(execute=True):
            assert post(client, "/v1/track", body, basic_auth).status_code == 200

    # The real run: events through the ingest API, time through the journeys clock.
    send("Product Added", cart_id="c1", price=12)
    Customer.objects.filter(external_id="u1").update(email="u1@example.com")
    if orders_after is not None:
        clock.clock_advance(by=orders_after)
        enrolments_due_tick()
        send("Order Completed", cart_id="c1")
    for _ in range(48):  # two days of a tick every hour
        clock.clock_advance(by=dt.timedelta(hours=1))
        enrolments_due_tick()
    enrolment = Enrolment.objects.get()
    real_path = list(
        EnrolmentTransition.objects.filter(enrolment=enrolment)
        .order_by("id")
        .values_list("from_step", "to_step", "reason")
    )
    real_messages = [(message.step_id, message.channel) for message in outbox.enqueued]

    # The dry run over the same recorded events.
    customer = Customer.objects.get(external_id="u1")
    customer.traits = {}  # the real run's profile update must not leak into the replay
    dry = journey_dry_run(
        graph=journey.live_version.graph, customer=customer, journey_id=journey.pk
    )

    assert [(p["from_step"] or "", p["to_step"] or "", p["reason"]) for p in dry.path] == real_path
    assert [(m["step"], m["channel"]) for m in dry.messages] == real_messages
    assert (dry.status, dry.current_step) == (enrolment.status, enrolment.current_step)
