"""Condition steps in the admin use the segments rule builder: no raw JSON needed, faults
named beside the rule with their path, and a live count of the customers it holds for."""

import json

import pytest
from django.contrib.auth import get_user_model

from journeys.models import Journey
from segments.models import Segment
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

RULE = {
    "all": [
        {"trait": {"key": "plan", "op": "equals", "value": "pro"}},
        {"not": {"segment": {"key": "vip"}}},
    ]
}


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("builder", "b@example.com", None)
    client.force_login(user)
    return client


@pytest.fixture
def journey():
    return Journey.objects.create(name="Welcome", draft_graph={})


def url(journey) -> str:
    return f"/admin/journeys/journey/{journey.pk}/steps/add/condition/"


def test_the_condition_form_carries_the_rule_builder_with_the_segments_to_pick(
    admin_client, journey
):
    Segment.objects.create(key="vip", name="VIP", kind=Segment.Kind.STATIC)

    page = admin_client.get(url(journey)).content.decode()

    assert 'id="segment-builder-options"' in page
    assert 'class="segment-rules"' in page
    assert '"segmentKeys": ["vip"]' in page
    assert "function groupEditor" in page  # the builder script itself


def test_a_rule_written_by_the_builder_is_saved_in_the_draft(admin_client, journey):
    response = admin_client.post(
        url(journey), {"id": "check", "rule": json.dumps(RULE), "exit_yes": "", "exit_no": ""}
    )

    assert response.status_code == 302
    journey.refresh_from_db()
    (saved,) = journey.draft_graph["steps"]
    assert (saved["id"], saved["kind"], saved["config"]) == ("check", "condition", {"rule": RULE})


def test_a_faulty_rule_is_named_beside_the_field_by_its_path_and_nothing_is_saved(
    admin_client, journey
):
    bad = '{"all": [{"segment": {"key": "vip"}}, {"score": {"model": "churn", "op": "above", "value": 3}}]}'

    response = admin_client.post(url(journey), {"id": "check", "rule": bad})

    assert response.status_code == 200
    assert "$.all[1].score.value: must be a number from 0 to 1" in response.content.decode()
    journey.refresh_from_db()
    assert journey.draft_graph == {}


def test_the_live_count_counts_the_customers_the_rule_holds_for_now(admin_client, journey):
    CustomerFactory(external_id="pro-1", traits={"plan": "pro"})
    CustomerFactory(external_id="free-1", traits={"plan": "free"})

    response = admin_client.post(url(journey), {"rules": RULE}, content_type="application/json")

    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "sample": [{"id": response.json()["sample"][0]["id"], "label": "pro-1"}],
    }
    journey.refresh_from_db()
    assert journey.draft_graph == {}


def test_the_live_count_names_faults_by_path_and_does_not_count_payload_rules(
    admin_client, journey
):
    faulty = {"trait": {"key": "plan", "op": "is", "value": "pro"}}
    response = admin_client.post(url(journey), {"rules": faulty}, content_type="application/json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["$.trait.op"]

    payload = {"payload": {"key": "cart_total", "op": "greater_than", "value": 100}}
    response = admin_client.post(url(journey), {"rules": payload}, content_type="application/json")
    assert response.status_code == 200
    assert "not counted" in response.json()["errors"]["$"]
