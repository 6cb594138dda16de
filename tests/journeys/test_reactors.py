"""Events sent through the ingest API start, resume, exit and convert enrolments."""

import datetime as dt

import pytest

from customers.models import Customer
from journeys import clock
from journeys.models import Enrolment, EnrolmentTransition
from journeys.services.tick import enrolments_due_tick
from tests.customers.ingest.helpers import post
from tests.journeys.factories import live_journey
from tests.journeys.graphs import documented_example, graph, step

pytestmark = pytest.mark.django_db


@pytest.fixture
def send(client, basic_auth, django_capture_on_commit_callbacks):
    counter = iter(range(1_000_000))

    def send(event: str, user_id: str = "u1", message_id: str | None = None, **properties):
        body = {
            "userId": user_id,
            "event": event,
            "properties": properties,
            "messageId": message_id or f"message-{next(counter)}",
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, "/v1/track", body, basic_auth)
        assert response.status_code == 200, response.content

    return send


def cart_journey(**settings):
    return live_journey(documented_example(), name="Cart abandonment", **settings)


def enrolment_of(user_id: str = "u1") -> Enrolment:
    return Enrolment.objects.get(customer=Customer.objects.get(external_id=user_id))


def test_a_matching_event_starts_the_journey_and_a_filtered_out_one_does_not(send, outbox):
    cart_journey()

    send("Product Added", user_id="free", price=0)  # the trigger filter wants price > 0
    send("Product Viewed", user_id="other", price=5)
    send("Product Added", user_id="u1", price=5, cart_id="c1")

    assert Enrolment.objects.count() == 1
    enrolment = enrolment_of("u1")
    assert (enrolment.status, enrolment.current_step, enrolment.awaited_event) == (
        "waiting",
        "wait_order",
        "Order Completed",
    )
    assert enrolment.trigger_payload == {"price": 5, "cart_id": "c1"}
    assert enrolment.state["awaiting"] == {
        "event": "Order Completed",
        "property": "cart_id",
        "value": "c1",
    }


def test_the_correlated_event_resumes_the_waiting_enrolment_once(send, outbox):
    cart_journey()
    send("Product Added", price=5, cart_id="c1")

    send("Order Completed", cart_id="other-cart")
    assert enrolment_of().current_step == "wait_order"

    send("Order Completed", cart_id="c1", message_id="order-1")
    send("Order Completed", cart_id="c1", message_id="order-1")  # redelivered by the source

    enrolment = enrolment_of()
    assert (enrolment.status, enrolment.current_step) == ("completed", "bought")
    assert EnrolmentTransition.objects.filter(enrolment=enrolment, reason="event").count() == 1
    assert outbox.enqueued == []


def test_the_timeout_path_sends_and_waits_again(send, outbox):
    cart_journey()
    send("Product Added", price=5, cart_id="c1")
    Customer.objects.filter(external_id="u1").update(traits={"plan": "vip"}, email="u1@example.com")

    clock.clock_advance(by=dt.timedelta(hours=1, seconds=1))
    assert enrolments_due_tick() == 1

    enrolment = enrolment_of()
    assert enrolment.current_step == "wait_day"
    assert [(m.step_id, m.channel) for m in outbox.enqueued] == [("remind_best", "email")]
    assert Customer.objects.get(external_id="u1").traits == {"plan": "vip", "cart_reminded": True}


def test_an_exit_event_takes_the_customer_out_during_a_wait(send, outbox):
    cart_journey(exit_events=["Account Deleted"])
    send("Product Added", price=5, cart_id="c1")

    send("Account Deleted")

    enrolment = enrolment_of()
    assert (enrolment.status, enrolment.wake_at) == ("exited", None)
    assert EnrolmentTransition.objects.filter(enrolment=enrolment).last().reason == (
        "exit event Account Deleted"
    )
    # Its wait no longer fires.
    clock.clock_advance(by=dt.timedelta(days=3))
    assert enrolments_due_tick() == 0


def test_a_goal_within_its_window_converts_and_outside_it_does_not(send, outbox):
    simple = graph(
        step("start", "trigger", {"type": "event", "event": "Signed Up"}, next="pause"),
        step("pause", "wait", {"duration": {"days": 5}}, next="done"),
        step("done", "exit"),
    )
    live_journey(simple, goal_event="Subscribed", goal_window_hours=48)
    send("Signed Up", user_id="quick")
    send("Signed Up", user_id="slow")

    send("Subscribed", user_id="quick")
    clock.clock_advance(by=dt.timedelta(hours=49))
    send("Subscribed", user_id="slow")

    quick, slow = enrolment_of("quick"), enrolment_of("slow")
    assert (quick.status, quick.converted_at is not None) == ("converted", True)
    assert (slow.status, slow.converted_at) == ("waiting", None)


def test_the_trigger_index_follows_publishing_and_pausing(send, outbox):
    from journeys.services.journeys import journey_pause, journey_resume

    journey = cart_journey()
    journey_pause(journey=journey)
    send("Product Added", user_id="a", price=5)
    assert Enrolment.objects.count() == 0

    journey_resume(journey=journey)
    send("Product Added", user_id="b", price=5)
    assert Enrolment.objects.count() == 1


def test_a_segment_trigger_starts_on_entering_and_leaving_another_segment_exits(send, outbox):
    waiting = graph(
        step(
            "start", "trigger", {"type": "segment", "segment": "vip", "on": "entered"}, next="pause"
        ),
        step("pause", "wait", {"duration": {"days": 3}}, next="done"),
        step("done", "exit"),
    )
    live_journey(waiting, exit_segments=["subscribers"])

    send("Segment Entered", segment_key="churn-risk")
    assert Enrolment.objects.count() == 0
    send("Segment Entered", segment_key="vip")
    assert enrolment_of().status == "waiting"

    send("Segment Exited", segment_key="vip")  # not an exit criterion
    assert enrolment_of().status == "waiting"
    send("Segment Exited", segment_key="subscribers")
    enrolment = enrolment_of()
    assert enrolment.status == "exited"
    assert EnrolmentTransition.objects.filter(enrolment=enrolment).last().reason == (
        "left segment subscribers"
    )


def test_a_condition_on_segment_membership_reads_current_memberships(send, outbox):
    from segments.models import Segment, SegmentMembership

    branching = graph(
        step("start", "trigger", {"type": "event", "event": "Signed Up"}, next="vip"),
        step("vip", "condition", {"rule": {"segment": "vip"}}, yes="gold", no="plain"),
        step("gold", "exit", {"reason": "vip"}),
        step("plain", "exit", {"reason": "not vip"}),
    )
    live_journey(branching)
    send("Identified", user_id="member")
    segment = Segment.objects.create(key="vip", name="VIP", kind=Segment.Kind.STATIC)
    SegmentMembership.objects.create(
        segment=segment, customer=Customer.objects.get(external_id="member"), entered_at=clock.now()
    )

    send("Signed Up", user_id="member")
    send("Signed Up", user_id="stranger")

    assert EnrolmentTransition.objects.filter(to_step="gold").count() == 1
    assert enrolment_of("member").current_step == "gold"
    assert enrolment_of("stranger").current_step == "plain"
