"""The segments admin, through the client logged in as staff."""

import datetime as dt

import orjson
import pytest
from django.contrib.auth.models import Permission

from segments.models import Segment, SegmentMembership
from segments.selectors import segment_size_history
from segments.services.definitions import segment_create
from segments.services.memberships import segment_recompute
from tests.segments.factories import NOW, CustomerFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/segments/segment/add/"
PREVIEW = "/admin/segments/segment/preview/"
PRO = {"trait": {"key": "plan", "op": "equals", "value": "pro"}}


def change_url(segment: Segment) -> str:
    return f"/admin/segments/segment/{segment.pk}/change/"


def form(**fields) -> dict:
    data = {
        "key": "pro",
        "name": "Pro",
        "description": "",
        "kind": "dynamic",
        "rules": orjson.dumps(PRO).decode(),
        "static_entries": "",
    }
    data.update(fields)
    return data


def test_the_add_page_carries_the_rule_builder(admin_client):
    segment_create(key="vip", name="VIP", rules=PRO)

    response = admin_client.get(ADD)

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="segment-builder-options"' in page
    assert "rule-builder" in page
    assert response.context["builder_options"]["segmentKeys"] == ["vip"]


def test_adding_a_segment_goes_through_the_service(admin_client):
    response = admin_client.post(
        ADD, form(rules=orjson.dumps({"all": [PRO, {"reachable": {"channel": "sms"}}]}).decode())
    )

    assert response.status_code == 302
    segment = Segment.objects.get()
    assert (segment.key, segment.version, segment.rules["all"][1]) == (
        "pro",
        1,
        {"reachable": {"channel": "sms"}},
    )


def test_an_invalid_rule_is_a_form_error_with_paths_and_nothing_is_saved(admin_client):
    rule = {
        "all": [
            PRO,
            {"event": {"name": "Order", "count": {"at_least": -1}}},
            {"segment": {"key": "ghost"}},
        ]
    }

    response = admin_client.post(ADD, form(rules=orjson.dumps(rule).decode()))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "rules": [
            "$.all[1].event.count.at_least: must be a whole number ≥ 0",
        ]
    }
    assert Segment.objects.count() == 0
    unknown = admin_client.post(
        ADD, form(rules=orjson.dumps({"segment": {"key": "ghost"}}).decode())
    )
    assert unknown.context["adminform"].form.errors == {
        "rules": ["$.segment.key: there is no segment with the key ghost"]
    }
    assert Segment.objects.count() == 0


def test_changing_the_rules_bumps_the_version(admin_client):
    segment = segment_create(key="pro", name="Pro", rules=PRO)

    response = admin_client.post(
        change_url(segment), form(name="Pro plan", rules=orjson.dumps({"not": PRO}).decode())
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    segment.refresh_from_db()
    assert (segment.name, segment.rules, segment.version) == ("Pro plan", {"not": PRO}, 2)


def test_the_change_page_shows_membership_size_over_time(admin_client):
    anna = CustomerFactory(traits={"plan": "pro"})
    segment = segment_create(key="pro", name="Pro", rules=PRO)
    segment_recompute(segment=segment, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    SegmentMembership.objects.filter(customer=anna).update(
        exited_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    )

    response = admin_client.get(change_url(segment))

    page = response.content.decode()
    assert response.status_code == 200
    assert "<polyline points=" in page
    chart = response.context["chart"]
    assert len(chart["days"]) == 30
    assert [point["size"] for point in chart["days"]][-5:] == [0, 1, 1, 0, 0]
    assert chart["top"] == 1


def test_size_history_counts_stays_per_day():
    segment = segment_create(key="pro", name="Pro", rules=PRO)
    customers = CustomerFactory.create_batch(3)
    day = dt.timedelta(days=1)
    SegmentMembership.objects.create(
        segment=segment, customer=customers[0], entered_at=NOW - 40 * day
    )
    SegmentMembership.objects.create(
        segment=segment, customer=customers[1], entered_at=NOW - 2 * day, exited_at=NOW - day
    )
    SegmentMembership.objects.create(segment=segment, customer=customers[1], entered_at=NOW)
    SegmentMembership.objects.create(
        segment=segment, customer=customers[2], entered_at=NOW - 50 * day, exited_at=NOW - 3 * day
    )

    history = segment_size_history(segment=segment, days=5, now=NOW)

    assert history == [
        (dt.date(2026, 3, 6), 2),
        (dt.date(2026, 3, 7), 1),
        (dt.date(2026, 3, 8), 2),
        (dt.date(2026, 3, 9), 1),
        (dt.date(2026, 3, 10), 2),
    ]


def test_the_live_preview_counts_a_draft_rule(admin_client):
    CustomerFactory(external_id="anna", traits={"plan": "pro"})
    CustomerFactory(external_id="bram", traits={"plan": "free"})

    counted = admin_client.post(
        PREVIEW, orjson.dumps({"rules": PRO}), content_type="application/json"
    )
    refused = admin_client.post(
        PREVIEW,
        orjson.dumps({"rules": {"trait": {"key": "plan", "op": "near"}}}),
        content_type="application/json",
    )
    garbage = admin_client.post(PREVIEW, b"{not json", content_type="application/json")

    assert counted.json()["count"] == 1
    assert [person["label"] for person in counted.json()["sample"]] == ["anna"]
    assert refused.status_code == 400
    assert list(refused.json()["errors"]) == ["$.trait.op"]
    assert (garbage.status_code, garbage.json()) == (400, {"errors": {"$": "the body is not JSON"}})
    assert admin_client.get(PREVIEW).status_code == 405


def test_the_preview_needs_a_staff_user_allowed_to_edit_segments(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_segment"))
    client.force_login(viewer)

    response = client.post(PREVIEW, orjson.dumps({"rules": PRO}), content_type="application/json")

    assert response.status_code == 403


def test_the_recompute_action_says_what_it_did(admin_client):
    CustomerFactory.create_batch(2, traits={"plan": "pro"})
    dynamic = segment_create(key="pro", name="Pro", rules=PRO)
    static = segment_create(key="fair", name="Fair", kind="static")

    response = admin_client.post(
        "/admin/segments/segment/",
        {"action": "recompute", "_selected_action": [dynamic.pk, static.pk]},
        follow=True,
    )

    assert [str(message) for message in response.context["messages"]] == [
        "Recomputed 1 segment: 2 entered, 0 left. 1 static, skipped."
    ]
    assert SegmentMembership.objects.filter(segment=dynamic).count() == 2


def test_a_static_list_is_uploaded_with_the_form(admin_client):
    CustomerFactory(external_id="anna", email="anna@example.com")

    response = admin_client.post(
        ADD,
        form(
            key="fair",
            name="Fair",
            kind="static",
            rules="",
            static_entries="anna@example.com\nghost, nobody@example.com",
        ),
        follow=True,
    )

    shown = [str(message) for message in response.context["messages"]]
    assert (
        shown[0]
        == "1 customers matched the list: 1 entered, 0 left. 2 entries matched no customer."
    )
    assert shown[1].endswith("was added successfully.")
    assert SegmentMembership.objects.filter(segment__key="fair").count() == 1


def test_a_segment_used_by_another_is_not_deleted(admin_client):
    pro = segment_create(key="pro", name="Pro", rules=PRO)
    segment_create(key="pro-sms", name="Pro by SMS", rules={"segment": {"key": "pro"}})

    response = admin_client.post(
        f"/admin/segments/segment/{pro.pk}/delete/", {"post": "yes"}, follow=True
    )

    assert [str(message) for message in response.context["messages"]] == [
        "Not deleted: used in the rules of pro-sms."
    ]
    assert Segment.objects.count() == 2
