"""Condition steps speak the segment rule language (plus trigger-payload conditions): the
real runner branches on memberships, scores and event counts, a dry run takes the same
branch, and a bad rule is refused with its step and JSON path."""

import pytest
from django.utils import timezone

from customers.models import Customer
from journeys.models import Enrolment, EnrolmentTransition, Journey
from segments.models import CustomerScore, ModelVersion, Segment, SegmentMembership
from tests.customers.api_helpers import call
from tests.customers.ingest.helpers import post
from tests.journeys.factories import live_journey
from tests.journeys.graphs import graph, step

pytestmark = pytest.mark.django_db

WIN_BACK = {
    "all": [
        {"segment": {"key": "vip"}},
        {"score": {"model": "churn", "op": "above", "value": 0.7}},
        {"event": {"name": "Order Completed", "within_days": 30, "count": {"at_least": 2}}},
    ]
}


def branching(rule: dict) -> dict:
    return graph(
        step("start", "trigger", {"type": "event", "event": "Signed Up"}, next="check"),
        step("check", "condition", {"rule": rule}, yes="win_back", no="plain"),
        step("win_back", "exit", {"reason": "win back"}),
        step("plain", "exit", {"reason": "plain"}),
    )


@pytest.fixture
def send(client, basic_auth, django_capture_on_commit_callbacks):
    counter = iter(range(1_000_000))

    def send(event: str, user_id: str, **properties):
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
def churn_model(db) -> ModelVersion:
    return ModelVersion.objects.create(
        kind="churn", version=1, trained_at=timezone.now(), artefact=b"", is_active=True
    )


def customer_with(send, user_id: str, *, vip: bool, churn: float, orders: int, model) -> None:
    send("Identified", user_id)
    customer = Customer.objects.get(external_id=user_id)
    for number in range(orders):
        send("Order Completed", user_id, order_id=f"{user_id}-{number}")
    if vip:
        segment, _ = Segment.objects.get_or_create(
            key="vip", defaults={"name": "VIP", "kind": Segment.Kind.STATIC}
        )
        SegmentMembership.objects.create(
            segment=segment, customer=customer, entered_at=timezone.now()
        )
    CustomerScore.objects.create(
        customer=customer,
        kind="churn",
        model_version=model,
        score=churn,
        percentile=churn,
        scored_at=timezone.now(),
    )


def taken(user_id: str) -> str:
    return Enrolment.objects.get(customer__external_id=user_id).current_step


def test_membership_score_and_event_count_branch_the_real_run(send, outbox, churn_model):
    journey = live_journey(branching(WIN_BACK), name="Win back")
    customers = {
        "all_three": dict(vip=True, churn=0.9, orders=2),
        "one_order": dict(vip=True, churn=0.9, orders=1),
        "low_churn": dict(vip=True, churn=0.4, orders=3),
        "not_vip": dict(vip=False, churn=0.9, orders=2),
    }
    for user_id, facts in customers.items():
        customer_with(send, user_id, model=churn_model, **facts)

    for user_id in customers:
        send("Signed Up", user_id)

    assert Enrolment.objects.filter(journey=journey).count() == 4
    assert {user_id: taken(user_id) for user_id in customers} == {
        "all_three": "win_back",
        "one_order": "plain",
        "low_churn": "plain",
        "not_vip": "plain",
    }
    assert EnrolmentTransition.objects.filter(from_step="check", reason="yes").count() == 1


def test_a_dry_run_takes_the_branch_the_real_run_took(
    send, outbox, churn_model, client, write_api_key
):
    journey = live_journey(branching(WIN_BACK), name="Win back")
    customer_with(send, "all_three", vip=True, churn=0.9, orders=2, model=churn_model)
    customer_with(send, "one_order", vip=True, churn=0.9, orders=1, model=churn_model)
    send("Signed Up", "all_three")
    send("Signed Up", "one_order")

    for user_id, expected in [("all_three", "win_back"), ("one_order", "plain")]:
        response = call(
            client,
            "post",
            f"/api/v1/journeys/{journey.pk}/dry-run/",
            write_api_key,
            {"external_id": user_id},
        )
        assert response.status_code == 200, response.json()
        dry = response.json()
        assert (dry["status"], dry["current_step"]) == ("completed", expected)
        assert taken(user_id) == expected
        real = list(
            EnrolmentTransition.objects.filter(enrolment__customer__external_id=user_id)
            .order_by("id")
            .values_list("from_step", "to_step", "reason")
        )
        assert [(s["from_step"] or "", s["to_step"] or "", s["reason"]) for s in dry["path"]] == (
            real
        )


def test_payload_conditions_combine_with_segment_rules(send, outbox):
    rule = {
        "all": [
            {"payload": {"key": "cart_total", "op": "greater_than", "value": 100}},
            {"trait": {"key": "plan", "op": "equals", "value": "pro"}},
        ]
    }
    live_journey(branching(rule), name="Big carts")
    for user_id in ("pro", "free"):
        send("Identified", user_id)
    Customer.objects.filter(external_id="pro").update(traits={"plan": "pro"})

    send("Signed Up", "pro", cart_total=150)
    send("Signed Up", "free", cart_total=150)

    assert (taken("pro"), taken("free")) == ("win_back", "plain")


def test_a_small_cart_goes_the_no_way(send, outbox):
    rule = {"payload": {"key": "cart_total", "op": "greater_than", "value": 100}}
    live_journey(branching(rule), name="Big carts")

    send("Signed Up", "small", cart_total=20)
    send("Signed Up", "text", cart_total="500")  # a string is not a number

    assert (taken("small"), taken("text")) == ("plain", "plain")


def test_a_bad_rule_is_refused_with_its_step_and_json_path(client, write_api_key):
    bad = {
        "all": [
            {"segment": {"key": "vip"}},
            {"score": {"model": "churn", "op": "above", "value": 7}},
            {"event": {"name": "Order Completed", "count": {"at_least": -1}}},
            {"payload": {"key": "cart_total", "op": "greater_than", "value": "lots"}},
        ]
    }
    response = call(
        client, "post", "/api/v1/journeys/validate/", write_api_key, {"graph": branching(bad)}
    )

    assert response.status_code == 200, response.json()
    assert response.json()["valid"] is False
    assert {(p["step"], p["field"]) for p in response.json()["problems"]} == {
        ("check", "config.rule.all[1].score.value"),
        ("check", "config.rule.all[2].event.count.at_least"),
        ("check", "config.rule.all[3].payload.value"),
    }


def test_publishing_a_bad_rule_changes_nothing(client, write_api_key):
    bad = branching({"trait": {"key": "plan", "op": "is", "value": "pro"}})
    created = call(
        client, "post", "/api/v1/journeys/", write_api_key, {"name": "Bad", "graph": bad}
    )
    journey_id = created.json()["id"]

    response = call(client, "post", f"/api/v1/journeys/{journey_id}/publish/", write_api_key)

    assert response.status_code == 400
    (problem,) = response.json()["graph"]
    assert (problem["step"], problem["field"]) == ("check", "config.rule.trait.op")
    assert Journey.objects.get(pk=journey_id).live_version_id is None


def test_a_consent_condition_reads_the_customers_consent_state(send, outbox):
    from consent.services.ledger import consent_record
    from tests.consent.factories import TopicFactory

    TopicFactory(key="offers")
    rule = {"consent": {"channel": "email", "topic": "offers", "state": "allowed"}}
    live_journey(branching(rule), name="Offers")
    for user_id in ("granted", "withdrawn", "never_asked"):
        send("Identified", user_id)
    for user_id, action in [("granted", "grant"), ("withdrawn", "withdraw")]:
        consent_record(
            customer_id=Customer.objects.get(external_id=user_id).pk,
            channel="email",
            topic_key="offers",
            action=action,
            source="api",
        )

    for user_id in ("granted", "withdrawn", "never_asked"):
        send("Signed Up", user_id)

    assert [taken(user_id) for user_id in ("granted", "withdrawn", "never_asked")] == [
        "win_back",
        "plain",
        "plain",
    ]


def test_an_rfm_condition_reads_the_customers_rfm_scores(send, outbox, client, write_api_key):
    from segments.models import CustomerRFM

    journey = live_journey(branching({"rfm": {"segment": "champions"}}), name="Champions")
    for user_id, recency, segment in [("champion", 5, "champions"), ("sleeper", 1, "hibernating")]:
        send("Identified", user_id)
        CustomerRFM.objects.create(
            customer=Customer.objects.get(external_id=user_id), recency_days=1, frequency=1,
            monetary=1, recency_score=recency, frequency_score=5, monetary_score=3,
            segment=segment, computed_at=timezone.now(),
        )  # fmt: skip
    send("Identified", "never_ordered")

    for user_id in ("champion", "sleeper", "never_ordered"):
        send("Signed Up", user_id)

    assert [taken(user_id) for user_id in ("champion", "sleeper", "never_ordered")] == [
        "win_back",
        "plain",
        "plain",
    ]
    # And a dry run reads the same scores
    response = call(
        client,
        "post",
        f"/api/v1/journeys/{journey.pk}/dry-run/",
        write_api_key,
        {"external_id": "champion"},
    )
    assert response.status_code == 200, response.json()
    assert response.json()["current_step"] == "win_back"
