import datetime as dt

import pytest

from customers.models import Customer, Event
from customers.services.profiles import customer_update
from segments.models import Segment, SegmentMembership
from segments.services.definitions import segment_create
from segments.services.memberships import (
    segment_recompute,
    segment_static_replace,
    segments_recompute_time_dependent,
    segments_reevaluate,
)
from tests.segments.factories import NOW, CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db

PRO = {"trait": {"key": "plan", "op": "equals", "value": "pro"}}


def segment_events(name: str | None = None):
    events = Event.objects.filter(name__in=["Segment Entered", "Segment Exited"])
    return events.filter(name=name) if name else events


def members(segment: Segment) -> set[str]:
    return set(
        SegmentMembership.objects.filter(segment=segment, exited_at=None).values_list(
            "customer__external_id", flat=True
        )
    )


def test_a_full_recompute_enters_members_and_emits_one_event_each():
    anna = CustomerFactory(external_id="anna", traits={"plan": "pro"})
    CustomerFactory(external_id="bram", traits={"plan": "free"})
    CustomerFactory(external_id="cas", traits={"plan": "pro"})
    segment = segment_create(key="pro", name="Pro", rules=PRO)

    changes = segment_recompute(segment=segment, now=NOW)

    assert (changes.entered, changes.exited) == (2, 0)
    assert members(segment) == {"anna", "cas"}
    entered = segment_events("Segment Entered").get(customer=anna)
    membership = SegmentMembership.objects.get(customer=anna)
    assert (entered.type, entered.properties, entered.timestamp) == (
        "track",
        {"segment_key": "pro"},
        NOW,
    )
    assert entered.message_id == f"segment-entered:{membership.pk}"
    assert membership.entered_at == NOW
    segment.refresh_from_db()
    assert (segment.member_count, segment.last_computed_at) == (2, NOW)


def test_a_second_recompute_with_nothing_changed_writes_nothing():
    CustomerFactory(traits={"plan": "pro"})
    segment = segment_create(key="pro", name="Pro", rules=PRO)
    segment_recompute(segment=segment, now=NOW)

    changes = segment_recompute(segment=segment, now=NOW + dt.timedelta(hours=1))

    assert (changes.entered, changes.exited) == (0, 0)
    assert SegmentMembership.objects.count() == 1
    assert segment_events().count() == 1


def test_leaving_and_coming_back_are_separate_stays_with_their_events():
    anna = CustomerFactory(external_id="anna", traits={"plan": "pro"})
    segment = segment_create(key="pro", name="Pro", rules=PRO)
    segment_recompute(segment=segment, now=NOW)

    Customer.objects.filter(pk=anna.pk).update(traits={"plan": "free"})
    left = segment_recompute(segment=segment, now=NOW + dt.timedelta(days=1))
    Customer.objects.filter(pk=anna.pk).update(traits={"plan": "pro"})
    back = segment_recompute(segment=segment, now=NOW + dt.timedelta(days=2))

    assert (left.entered, left.exited, back.entered, back.exited) == (0, 1, 1, 0)
    stays = list(
        SegmentMembership.objects.order_by("entered_at").values_list("entered_at", "exited_at")
    )
    assert stays == [(NOW, NOW + dt.timedelta(days=1)), (NOW + dt.timedelta(days=2), None)]
    assert list(segment_events().order_by("timestamp").values_list("name", flat=True)) == [
        "Segment Entered",
        "Segment Exited",
        "Segment Entered",
    ]
    segment.refresh_from_db()
    assert segment.member_count == 1


def test_small_chunks_give_the_same_members():
    for number in range(7):
        CustomerFactory(external_id=f"c{number}", traits={"plan": "pro" if number % 2 else "free"})
    segment = segment_create(key="pro", name="Pro", rules=PRO)

    changes = segment_recompute(segment=segment, now=NOW, chunk_size=2)

    assert changes.entered == 3
    assert members(segment) == {"c1", "c3", "c5"}


def test_the_schedule_recomputes_only_time_dependent_segments_with_a_moved_clock():
    anna = CustomerFactory(external_id="anna", traits={"plan": "pro"})
    EventFactory(customer=anna, timestamp=NOW - dt.timedelta(days=2))
    recent = segment_create(
        key="recent-buyers",
        name="Recent",
        rules={"event": {"name": "Order Completed", "within_days": 7}},
    )
    pro = segment_create(key="pro", name="Pro", rules=PRO)
    segment_recompute(segment=recent, now=NOW)
    segment_recompute(segment=pro, now=NOW)
    Customer.objects.filter(pk=anna.pk).update(traits={"plan": "free"})

    # The order is two days old: it leaves the 7-day window five days after NOW.
    recomputed = segments_recompute_time_dependent(now=NOW + dt.timedelta(days=4))
    assert recomputed == 1
    assert members(recent) == {"anna"}
    segments_recompute_time_dependent(now=NOW + dt.timedelta(days=5, hours=1))
    segments_recompute_time_dependent(now=NOW + dt.timedelta(days=5, hours=2))  # repeat: no-op

    assert members(recent) == set()
    # The trait segment is not on the schedule: anna stays until something re-evaluates her.
    assert members(pro) == {"anna"}
    assert segment_events("Segment Exited").count() == 1


def test_segments_built_on_a_segment_follow_it():
    anna = CustomerFactory(external_id="anna", traits={"plan": "pro"})
    CustomerFactory(external_id="bram", traits={"plan": "pro"})
    EventFactory(customer=anna)
    pro = segment_create(key="pro", name="Pro", rules=PRO)
    buyers = segment_create(
        key="pro-buyers",
        name="Pro buyers",
        rules={"all": [{"segment": {"key": "pro"}}, {"event": {"name": "Order Completed"}}]},
    )
    segment_recompute(segment=buyers, now=NOW)
    assert members(buyers) == set()

    segment_recompute(segment=pro, now=NOW)

    assert members(buyers) == {"anna"}


def test_reevaluating_one_customer_touches_only_that_customer():
    anna = CustomerFactory(external_id="anna", traits={"plan": "pro"})
    CustomerFactory(external_id="bram", traits={"plan": "pro"})
    segment = segment_create(key="pro", name="Pro", rules=PRO)

    changes = segments_reevaluate(customer_ids=[anna.pk], segment_ids=[segment.pk], now=NOW)

    assert (changes.entered, changes.changed_customer_ids) == (1, {anna.pk})
    assert members(segment) == {"anna"}


def test_a_profile_change_through_the_service_re_evaluates_at_once():
    anna = CustomerFactory(external_id="anna", traits={"plan": "free"})
    segment = segment_create(key="pro", name="Pro", rules=PRO)
    segment_create(
        key="nl",
        name="Dutch",
        rules={"profile": {"field": "locale", "op": "equals", "value": "nl-NL"}},
    )

    customer_update(customer=anna, changes={"traits": {"plan": "pro"}})

    assert members(segment) == {"anna"}
    assert segment_events().count() == 1


def test_a_static_list_by_external_id_and_email_reports_unknown_entries():
    CustomerFactory(external_id="anna", email="anna@example.com")
    CustomerFactory(external_id="bram", email="bram@example.com")
    cas = CustomerFactory(external_id="cas", email="cas@example.com")
    from customers.models import Identity

    Identity.objects.create(kind="user_id", value="cas", customer=cas)
    segment = segment_create(key="fair", name="Met at the fair", kind="static")

    first = segment_static_replace(
        segment=segment,
        entries=["cas", " BRAM@example.com ", "nobody@example.com", "ghost", ""],
        now=NOW,
    )
    second = segment_static_replace(
        segment=segment, entries=["cas"], now=NOW + dt.timedelta(days=1)
    )

    assert (first.matched, first.unknown, first.changes.entered) == (
        2,
        ["nobody@example.com", "ghost"],
        2,
    )
    assert (second.changes.entered, second.changes.exited) == (0, 1)
    assert members(segment) == {"cas"}
    assert segment_events().count() == 3


def test_only_dynamic_and_model_segments_recompute():
    segment = segment_create(key="fair", name="Fair", kind="static")

    with pytest.raises(ValueError, match="only dynamic and model-based segments recompute"):
        segment_recompute(segment=segment, now=NOW)


def test_re_evaluation_reuses_its_compiled_query_as_the_clock_moves():
    anna = CustomerFactory(external_id="anna", traits={"birthday": "1990-03-12"})
    EventFactory(customer=anna, timestamp=NOW - dt.timedelta(days=2))
    recent = segment_create(
        key="recent", name="Recent", rules={"event": {"name": "Order Completed", "within_days": 7}}
    )
    # Anniversaries compile to a list of days, not an offset from now: not reusable.
    birthday = segment_create(
        key="birthday",
        name="Birthday",
        rules={"trait": {"key": "birthday", "op": "anniversary_within_days", "value": 3}},
    )

    def run(now):
        segments_reevaluate(customer_ids=[anna.pk], segment_ids=[recent.pk, birthday.pk], now=now)
        return members(recent), members(birthday)

    assert run(NOW) == ({"anna"}, {"anna"})
    assert run(NOW + dt.timedelta(days=4)) == ({"anna"}, set())
    assert run(NOW + dt.timedelta(days=6)) == (set(), set())
    assert run(NOW - dt.timedelta(days=1)) == ({"anna"}, {"anna"})
    # A rule change is a new version: the new rule is compiled, not the old one reused.
    from segments.services.definitions import segment_update

    segment_update(segment=recent, rules={"event": {"name": "Order Completed", "within_days": 1}})
    assert run(NOW - dt.timedelta(days=1)) == (set(), {"anna"})
