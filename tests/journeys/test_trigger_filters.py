"""Trigger property filters accept the segment rule language's value operators too."""

import pytest

from journeys.models import Enrolment
from tests.customers.api_helpers import call
from tests.customers.ingest.helpers import post
from tests.journeys.factories import live_journey
from tests.journeys.graphs import graph, step

pytestmark = pytest.mark.django_db


def shoes(filters: list[dict]) -> dict:
    return graph(
        step(
            "start",
            "trigger",
            {"type": "event", "event": "Product Added", "filters": filters},
            next="done",
        ),
        step("done", "exit"),
    )


FILTERS = [
    {"property": "price", "op": "between", "value": [10, 100]},
    {"property": "item.sku", "op": "starts_with", "value": "SHOE-"},
]


def test_segment_operators_filter_which_events_start_the_journey(
    client, basic_auth, django_capture_on_commit_callbacks, outbox
):
    live_journey(shoes(FILTERS), name="Shoes")
    sent = [
        ("in", {"price": 50, "item": {"sku": "SHOE-1"}}),
        ("cheap", {"price": 5, "item": {"sku": "SHOE-2"}}),
        ("hat", {"price": 50, "item": {"sku": "HAT-1"}}),
        ("text_price", {"price": "50", "item": {"sku": "SHOE-3"}}),
    ]
    for number, (user_id, properties) in enumerate(sent):
        body = {
            "userId": user_id,
            "event": "Product Added",
            "properties": properties,
            "messageId": f"m-{number}",
        }
        with django_capture_on_commit_callbacks(execute=True):
            assert post(client, "/v1/track", body, basic_auth).status_code == 200

    assert list(Enrolment.objects.values_list("customer__external_id", flat=True)) == ["in"]


def test_a_faulty_segment_operator_filter_is_named_with_its_step_and_path(client, write_api_key):
    bad = [
        {"property": "price", "op": "between", "value": [100, 10]},
        {"property": "sku", "op": "starts_with"},
        {"property": "sku", "op": "begins"},
    ]
    response = call(
        client, "post", "/api/v1/journeys/validate/", write_api_key, {"graph": shoes(bad)}
    )

    assert response.json()["valid"] is False
    assert {(p["step"], p["field"]) for p in response.json()["problems"]} == {
        ("start", "config.filters[0].value"),
        ("start", "config.filters[1].value"),
        ("start", "config.filters[2].op"),
    }
