"""Events arriving through ingest move customers in and out of the segments they affect."""

import pytest

from customers.models import Customer, Event
from segments.models import SegmentMembership
from segments.services.definitions import segment_create
from segments.services.index import segment_index
from tests.customers.ingest.helpers import post

pytestmark = pytest.mark.django_db

BUYERS = {
    "event": {
        "name": "Order Completed",
        "where": [{"property": "total", "op": "greater_than", "value": 100}],
    }
}
PRO = {"trait": {"key": "plan", "op": "equals", "value": "pro"}}


def members(key: str) -> set[str]:
    return set(
        SegmentMembership.objects.filter(segment__key=key, exited_at=None).values_list(
            "customer__external_id", flat=True
        )
    )


def send(client, auth, path, body, capture):
    with capture(execute=True):
        response = post(client, path, body, auth)
    assert response.status_code == 200


def test_an_event_enters_the_customer_and_the_entry_is_an_event_too(
    client, basic_auth, django_capture_on_commit_callbacks
):
    segment_create(key="big-buyers", name="Big buyers", rules=BUYERS)
    segment_create(
        key="welcomed",
        name="Entered big buyers",
        rules={
            "event": {
                "name": "Segment Entered",
                "where": [{"property": "segment_key", "op": "equals", "value": "big-buyers"}],
            }
        },
    )

    send(client, basic_auth, "/v1/track",
         {"userId": "u1", "event": "Order Completed", "properties": {"total": 50}, "messageId": "m1"},
         django_capture_on_commit_callbacks)  # fmt: skip
    assert members("big-buyers") == set()
    send(client, basic_auth, "/v1/track",
         {"userId": "u1", "event": "Order Completed", "properties": {"total": 150}, "messageId": "m2"},
         django_capture_on_commit_callbacks)  # fmt: skip

    assert members("big-buyers") == {"u1"}
    assert members("welcomed") == {"u1"}
    entered = Event.objects.filter(name="Segment Entered").order_by("pk")
    assert [event.properties for event in entered] == [
        {"segment_key": "big-buyers"},
        {"segment_key": "welcomed"},
    ]
    assert all(event.handed_over_at is not None for event in entered)


def test_an_identify_re_evaluates_trait_segments(
    client, basic_auth, django_capture_on_commit_callbacks
):
    segment_create(key="pro", name="Pro", rules=PRO)

    send(client, basic_auth, "/v1/identify", {"userId": "u1", "traits": {"plan": "pro"}, "messageId": "i1"},
         django_capture_on_commit_callbacks)  # fmt: skip
    assert members("pro") == {"u1"}
    send(client, basic_auth, "/v1/identify", {"userId": "u1", "traits": {"plan": "free"}, "messageId": "i2"},
         django_capture_on_commit_callbacks)  # fmt: skip

    assert members("pro") == set()
    assert list(
        Event.objects.filter(name__startswith="Segment ")
        .order_by("pk")
        .values_list("name", flat=True)
    ) == [
        "Segment Entered",
        "Segment Exited",
    ]


def test_an_unrelated_event_leaves_other_segments_alone(
    client, basic_auth, django_capture_on_commit_callbacks
):
    segment_create(key="pro", name="Pro", rules=PRO)
    send(client, basic_auth, "/v1/identify", {"userId": "u1", "traits": {"plan": "pro"}, "messageId": "i1"},
         django_capture_on_commit_callbacks)  # fmt: skip
    # Changed behind the segments' back: only an event that can affect "pro" re-evaluates it.
    Customer.objects.filter(external_id="u1").update(traits={"plan": "free"})

    send(client, basic_auth, "/v1/track", {"userId": "u1", "event": "Page Viewed", "messageId": "m1"},
         django_capture_on_commit_callbacks)  # fmt: skip
    assert members("pro") == {"u1"}
    send(client, basic_auth, "/v1/identify", {"userId": "u1", "traits": {"plan": "free"}, "messageId": "i2"},
         django_capture_on_commit_callbacks)  # fmt: skip
    assert members("pro") == set()


def test_the_index_maps_events_traits_and_fields_to_segments():
    buyers = segment_create(key="buyers", name="Buyers", rules=BUYERS)
    pro = segment_create(
        key="pro", name="Pro", rules={"trait": {"key": "plan.name", "op": "exists"}}
    )
    lapsed = segment_create(
        key="lapsed",
        name="Lapsed",
        rules={"profile": {"field": "last_seen", "op": "more_than_days_ago", "value": 30}},
    )
    push = segment_create(key="push", name="Push", rules={"reachable": {"channel": "push"}})
    both = segment_create(
        key="both",
        name="Both",
        rules={"all": [{"segment": {"key": "pro"}}, {"segment": {"key": "buyers"}}]},
    )
    index = segment_index()

    assert index.for_event(
        name="Order Completed", event_type="track", property_keys=[], has_device=False
    ) == {buyers.pk, lapsed.pk}
    assert index.for_event(
        name="", event_type="identify", property_keys=["plan"], has_device=False
    ) == {pro.pk, lapsed.pk}
    assert index.for_event(
        name="Opened", event_type="track", property_keys=[], has_device=True
    ) == {lapsed.pk, push.pk}
    assert index.for_event(name="", event_type="alias", property_keys=[], has_device=False) == {
        buyers.pk,
        pro.pk,
        lapsed.pk,
        push.pk,
        both.pk,
    }
    assert index.with_dependents({pro.pk}) == [[pro.pk], [both.pk]]
    # Cached until a segment changes.
    assert segment_index() is index
    segment_create(key="later", name="Later", rules=PRO)
    assert segment_index() is not index


def test_an_alias_merge_takes_the_merged_profile_off_the_counts_and_re_evaluates_the_survivor(
    client, basic_auth, django_capture_on_commit_callbacks
):
    segment_create(key="pro", name="Pro", rules=PRO)
    send(client, basic_auth, "/v1/identify", {"anonymousId": "a1", "traits": {"plan": "pro"}, "messageId": "i1"},
         django_capture_on_commit_callbacks)  # fmt: skip
    send(client, basic_auth, "/v1/identify", {"userId": "u1", "traits": {"email": "u1@example.com"}, "messageId": "i2"},
         django_capture_on_commit_callbacks)  # fmt: skip
    assert SegmentMembership.objects.filter(exited_at=None).count() == 1

    send(client, basic_auth, "/v1/alias", {"userId": "u1", "previousId": "a1", "messageId": "al1"},
         django_capture_on_commit_callbacks)  # fmt: skip

    survivor = Customer.objects.get()
    assert survivor.external_id == "u1"
    assert members("pro") == {"u1"}
    assert SegmentMembership.objects.filter(exited_at=None).count() == 1
    from segments.models import Segment

    assert Segment.objects.get(key="pro").member_count == 1
