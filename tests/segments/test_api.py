"""/api/v1/segments/ as an API client uses it."""

import datetime as dt

import pytest

from segments.models import Segment, SegmentMembership
from segments.services.definitions import segment_create
from segments.services.memberships import segment_recompute
from tests.customers.api_helpers import call
from tests.segments.factories import NOW, CustomerFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/segments/"
PRO = {"trait": {"key": "plan", "op": "equals", "value": "pro"}}


def test_create_then_read_and_list(client, write_api_key, django_capture_on_commit_callbacks):
    CustomerFactory(external_id="anna", traits={"plan": "pro"})
    CustomerFactory(external_id="bram", traits={"plan": "free"})

    with django_capture_on_commit_callbacks(execute=True):
        created = call(
            client, "post", LIST, write_api_key, {"key": "pro", "name": "Pro", "rules": PRO}
        )

    assert created.status_code == 201
    assert created.json()["rules"] == PRO
    # The recompute enqueued at save has run (tasks run eagerly in unit tests).
    detail = call(client, "get", "/api/v1/segments/pro/", write_api_key).json()
    assert (detail["member_count"], detail["version"], detail["kind"]) == (1, 1, "dynamic")
    listed = call(client, "get", LIST, write_api_key).json()
    assert [segment["key"] for segment in listed["results"]] == ["pro"]


def test_a_bad_rule_is_400_naming_the_rule_path_and_nothing_is_stored(client, write_api_key):
    rule = {
        "all": [
            PRO,
            {"reachable": {"channel": "email"}},
            {"event": {"name": "Order", "count": {"at_least": -2}}},
        ]
    }

    response = call(
        client, "post", LIST, write_api_key, {"key": "pro", "name": "Pro", "rules": rule}
    )

    assert response.status_code == 400
    assert response.json() == {
        "rules": {"$.all[2].event.count.at_least": "must be a whole number ≥ 0"}
    }
    assert Segment.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"name": "Pro", "rules": PRO}, {"key": ["This field is required."]}),
        (
            {"key": "Bad Key", "name": "Pro", "rules": PRO},
            {"key": ["use lower-case letters, digits, - and _, starting with a letter or digit"]},
        ),
        (
            {"key": "preview", "name": "Pro", "rules": PRO},
            {"key": ["preview is reserved; choose another key"]},
        ),
        (
            {"key": "pro", "name": "Pro", "rules": PRO, "colour": "red"},
            {"colour": ["is not a known field"]},
        ),
        (
            {"key": "pro", "name": "Pro", "kind": "magic"},
            {"kind": ['"magic" is not a valid choice.']},
        ),
        (
            {"key": "pro", "name": "Pro", "rules": "plan = pro"},
            {
                "rules": {
                    "$": "must be an object with one of the keys all, any, not, trait, profile, event, segment, reachable, score, cluster, consent, rfm"
                }
            },
        ),
    ],
)
def test_bad_input_is_400_with_the_field(client, write_api_key, body, errors):
    response = call(client, "post", LIST, write_api_key, body)

    assert response.status_code == 400
    assert response.json() == errors
    assert Segment.objects.count() == 0


def test_patch_changes_rules_and_refuses_bad_ones(client, write_api_key):
    segment_create(key="pro", name="Pro", rules=PRO)

    bad = call(
        client,
        "patch",
        "/api/v1/segments/pro/",
        write_api_key,
        {"rules": {"not": {"trait": {"key": "plan"}}}},
    )
    good = call(
        client,
        "patch",
        "/api/v1/segments/pro/",
        write_api_key,
        {"name": "Not pro", "rules": {"not": PRO}},
    )

    assert bad.status_code == 400
    assert bad.json() == {"rules": {"$.not.trait.op": "is required"}}
    assert good.status_code == 200
    assert (good.json()["name"], good.json()["rules"], good.json()["version"]) == (
        "Not pro",
        {"not": PRO},
        2,
    )


def test_count_and_members(client, read_key):
    anna = CustomerFactory(external_id="anna", traits={"plan": "pro"})
    CustomerFactory(external_id="bram", traits={"plan": "pro"})
    segment = segment_create(key="pro", name="Pro", rules=PRO)
    segment_recompute(segment=segment, now=NOW)
    SegmentMembership.objects.filter(customer=anna).update(entered_at=NOW + dt.timedelta(hours=1))
    CustomerFactory(external_id="cas", traits={"plan": "pro"})  # not recomputed yet

    count = call(client, "get", "/api/v1/segments/pro/count/", read_key)
    listed = call(client, "get", "/api/v1/segments/pro/members/", read_key)

    assert count.json() == {"members": 2, "matching_now": 3}
    assert listed.json()["count"] == 2
    assert [(m["external_id"], m["entered_at"]) for m in listed.json()["results"]] == [
        ("anna", "2026-03-10T13:00:00Z"),
        ("bram", "2026-03-10T12:00:00Z"),
    ]


def test_preview_counts_a_draft_rule_with_a_sample(client, read_key, write_api_key):
    CustomerFactory(external_id="anna", traits={"plan": "pro"})
    CustomerFactory(external_id="bram", traits={"plan": "free"})

    preview = call(client, "post", "/api/v1/segments/preview/", write_api_key, {"rules": PRO})
    bad = call(client, "post", "/api/v1/segments/preview/", write_api_key, {"rules": {"any": []}})
    read_only = call(client, "post", "/api/v1/segments/preview/", read_key, {"rules": PRO})

    assert preview.json() == {"count": 1, "sample": ["anna"]}
    assert (bad.status_code, bad.json()) == (
        400,
        {"rules": {"$.any": "must be a non-empty list of rules"}},
    )
    assert read_only.status_code == 403


def test_a_static_list_replaces_members(client, write_api_key):
    CustomerFactory(external_id="anna", email="anna@example.com")
    segment_create(key="fair", name="Fair", kind="static")
    segment_create(key="pro", name="Pro", rules=PRO)

    response = call(
        client,
        "put",
        "/api/v1/segments/fair/members/",
        write_api_key,
        {"entries": ["anna@example.com", "ghost"]},
    )
    dynamic = call(
        client, "put", "/api/v1/segments/pro/members/", write_api_key, {"entries": ["anna"]}
    )

    assert response.json() == {"matched": 1, "entered": 1, "exited": 0, "unknown": ["ghost"]}
    assert dynamic.status_code == 400
    assert dynamic.json() == {"detail": "segment pro is dynamic; only static segments take a list"}
    assert SegmentMembership.objects.filter(segment__key="pro").count() == 0


def test_unknown_segment_is_404_and_no_key_is_401(client, read_key):
    assert call(client, "get", "/api/v1/segments/nope/", read_key).status_code == 404
    assert call(client, "get", "/api/v1/segments/nope/count/", read_key).status_code == 404
    assert call(client, "get", LIST).status_code == 401
