"""The journeys REST API as a client uses it: JSON and a Bearer key."""

import copy
import datetime as dt

import pytest

from customers.models import Event
from journeys import clock
from journeys.models import Enrolment, EnrolmentTransition, Journey, JourneyVersion
from tests.customers.api_helpers import call
from tests.customers.factories import CustomerFactory
from tests.journeys.factories import live_journey
from tests.journeys.graphs import documented_example, linear, step

pytestmark = pytest.mark.django_db

API_GRAPH = {
    "schema": 1,
    "steps": [
        {"id": "start", "kind": "trigger", "config": {"type": "api"}, "exits": {"next": "hello"}},
        {
            "id": "hello",
            "kind": "send",
            "config": {"channel": "email", "template": 1, "topic": "news"},
            "exits": {"next": "pause"},
        },
        {
            "id": "pause",
            "kind": "wait",
            "config": {"duration": {"days": 1}},
            "exits": {"next": "done"},
        },
        {"id": "done", "kind": "exit"},
    ],
}


def create(client, key, **fields):
    body = {"name": "Welcome", "graph": API_GRAPH, **fields}
    return call(client, "post", "/api/v1/journeys/", key, body)


def test_create_publish_pause_resume_archive(client, write_api_key, outbox):
    created = create(client, write_api_key)
    assert created.status_code == 201, created.json()
    journey_id = created.json()["id"]
    assert created.json()["status"] == "draft"

    published = call(client, "post", f"/api/v1/journeys/{journey_id}/publish/", write_api_key)
    assert published.status_code == 201
    assert published.json()["number"] == 1

    for action, expected in [("pause", "paused"), ("resume", "live"), ("archive", "archived")]:
        response = call(client, "post", f"/api/v1/journeys/{journey_id}/{action}/", write_api_key)
        assert (response.status_code, response.json()["status"]) == (200, expected)

    again = call(client, "post", f"/api/v1/journeys/{journey_id}/resume/", write_api_key)
    assert again.status_code == 409
    assert again.json() == {"detail": "a archived journey cannot become live (only from paused)"}

    listed = call(client, "get", "/api/v1/journeys/", write_api_key)
    assert [j["name"] for j in listed.json()["results"]] == ["Welcome"]


def test_publishing_an_invalid_draft_names_each_step_and_field_and_publishes_nothing(
    client, write_api_key
):
    broken = copy.deepcopy(API_GRAPH)
    broken["steps"][1]["config"]["template"] = 3  # an SMS template on an email step
    broken["steps"][2]["config"] = {"duration": {"hours": -1}}
    journey_id = create(client, write_api_key, graph=broken).json()["id"]

    response = call(client, "post", f"/api/v1/journeys/{journey_id}/publish/", write_api_key)

    assert response.status_code == 400
    assert response.json() == {
        "graph": [
            {
                "step": "hello",
                "field": "config.template",
                "message": "template 3 is a sms template, not email",
            },
            {
                "step": "pause",
                "field": "config.duration.hours",
                "message": "must be a whole number ≥ 0",
            },
        ]
    }
    assert JourneyVersion.objects.count() == 0
    assert Journey.objects.get().status == "draft"


def test_bad_settings_are_refused_with_the_field(client, write_api_key):
    response = create(client, write_api_key, entry_policy="once_per_period", holdout_share=2)
    assert response.status_code == 400
    assert set(response.json()) == {"holdout_share"}
    response = create(client, write_api_key, entry_policy="once_per_period")
    assert response.json() == {
        "entry_period_days": ["is required for the once_per_period entry policy"]
    }
    response = create(client, write_api_key, graph=[1, 2])
    assert response.json() == {"graph": ["must be an object with schema and steps"]}
    assert Journey.objects.count() == 0


def test_validate_returns_every_problem(client, read_key, write_api_key):
    unreachable = linear()
    unreachable["steps"].append(step("lost", "exit"))
    response = call(
        client, "post", "/api/v1/journeys/validate/", write_api_key, {"graph": unreachable}
    )
    assert response.status_code == 200
    assert response.json() == {
        "valid": False,
        "problems": [
            {"step": "lost", "field": "id", "message": "is not reachable from the trigger"}
        ],
    }
    ok = call(
        client, "post", "/api/v1/journeys/validate/", write_api_key, {"graph": documented_example()}
    )
    assert ok.json() == {"valid": True, "problems": []}
    # Validating is a write-scoped action (POST); a read key may not.
    assert (
        call(client, "post", "/api/v1/journeys/validate/", read_key, {"graph": {}}).status_code
        == 403
    )


def test_enrol_by_api_and_read_the_enrolment_with_its_transitions(client, write_api_key, outbox):
    journey = live_journey(API_GRAPH)
    CustomerFactory(external_id="ann", email="ann@example.com")

    response = call(
        client,
        "post",
        f"/api/v1/journeys/{journey.pk}/enrolments/",
        write_api_key,
        {"external_id": "ann", "payload": {"coupon": "HELLO10"}},
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["current_step"], body["trigger_payload"]) == (
        "waiting",
        "pause",
        {"coupon": "HELLO10"},
    )
    assert [(t["from_step"], t["to_step"], t["reason"]) for t in body["transitions"]] == [
        ("", "start", "enrolled"),
        ("start", "hello", "next"),
        ("hello", "pause", "next"),
    ]
    read = call(client, "get", f"/api/v1/enrolments/{body['id']}/", write_api_key)
    assert read.json() == body

    again = call(
        client,
        "post",
        f"/api/v1/journeys/{journey.pk}/enrolments/",
        write_api_key,
        {"external_id": "ann"},
    )
    assert again.status_code == 409
    assert again.json()["code"] == "already_enrolled"


def test_enrolling_an_unknown_customer_is_a_400_and_writes_nothing(client, write_api_key):
    journey = live_journey(API_GRAPH)
    response = call(
        client,
        "post",
        f"/api/v1/journeys/{journey.pk}/enrolments/",
        write_api_key,
        {"external_id": "nobody", "payload": "not an object"},
    )
    assert response.status_code == 400
    assert set(response.json()) == {"payload"}
    response = call(
        client,
        "post",
        f"/api/v1/journeys/{journey.pk}/enrolments/",
        write_api_key,
        {"external_id": "nobody"},
    )
    assert response.json() == {"external_id": ["no customer has this user id"]}
    assert Enrolment.objects.count() == 0
    assert EnrolmentTransition.objects.count() == 0


def test_export_then_import_round_trips_the_journey(client, write_api_key):
    create(
        client,
        write_api_key,
        graph=documented_example(),
        exit_events=["Account Deleted"],
        goal_event="Order Completed",
        goal_window_hours=72,
        holdout_share="0.1",
    )
    journey = Journey.objects.get()
    exported = call(client, "get", f"/api/v1/journeys/{journey.pk}/export/", write_api_key).json()
    assert exported["holdout_share"] == 0.1
    assert exported["graph"] == documented_example()

    changed = {**exported, "description": "edited in git"}
    response = call(client, "post", "/api/v1/journeys/import/", write_api_key, changed)
    assert response.status_code == 200
    assert Journey.objects.get().description == "edited in git"

    fresh = {**exported, "name": "Copy"}
    assert call(client, "post", "/api/v1/journeys/import/", write_api_key, fresh).status_code == 201
    assert Journey.objects.count() == 2


def test_import_refuses_an_invalid_graph_and_changes_nothing(client, write_api_key):
    bad = {"name": "Bad", "graph": {"schema": 1, "steps": [{"id": "x", "kind": "exit"}]}}
    response = call(client, "post", "/api/v1/journeys/import/", write_api_key, bad)
    assert response.status_code == 400
    assert response.json()["graph"][0]["field"] == "steps"
    assert Journey.objects.count() == 0


def test_dry_run_replays_recorded_events_and_sends_nothing(client, write_api_key, outbox):
    create(client, write_api_key, graph=documented_example())
    journey = Journey.objects.get()
    customer = CustomerFactory(external_id="bob", email="bob@example.com", traits={"plan": "vip"})
    start = clock.now() - dt.timedelta(days=3)
    for minutes, name, properties in [
        (0, "Product Viewed", {}),
        (1, "Product Added", {"cart_id": "c9", "price": 20}),
        (90, "Order Completed", {"cart_id": "c9"}),
    ]:
        Event.objects.create(
            customer=customer,
            type="track",
            name=name,
            properties=properties,
            timestamp=start + dt.timedelta(minutes=minutes),
            message_id=f"dry-{minutes}",
        )

    response = call(
        client,
        "post",
        f"/api/v1/journeys/{journey.pk}/dry-run/",
        write_api_key,
        {"external_id": "bob"},
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert [p["to_step"] for p in body["path"]] == [
        "start",
        "wait_order",
        "is_vip",
        "remind_best",
        "mark",
        "wait_day",
        "bought",
    ]
    assert [(m["step"], m["channel"]) for m in body["messages"]] == [("remind_best", "email")]
    assert body["status"] == "completed"
    assert Enrolment.objects.count() == 0
    assert outbox.enqueued == []
    assert customer.__class__.objects.get(pk=customer.pk).traits == {"plan": "vip"}
