"""Each operator, through both the SQL compiler and the single-customer evaluator."""

import datetime as dt

import pytest

from customers.models import Customer
from segments.models import SegmentMembership
from segments.rules import compile_rule, evaluate_rule
from segments.selectors import customer_snapshot
from tests.segments.factories import (
    NOW,
    CustomerFactory,
    DeviceFactory,
    EventFactory,
    SegmentFactory,
)

pytestmark = pytest.mark.django_db


def matches(rule: dict, *, now: dt.datetime = NOW) -> set[str]:
    """External ids the rule selects; the compiler and the evaluator must agree."""
    by_sql = set(
        Customer.objects.filter(compile_rule(rule, now=now)).values_list("external_id", flat=True)
    )
    # The per-event form of the query must select the same customers.
    for_few = Customer.objects.filter(compile_rule(rule, now=now, few_customers=True))
    assert set(for_few.values_list("external_id", flat=True)) == by_sql
    by_python = {
        customer.external_id
        for customer in Customer.objects.all()
        if evaluate_rule(rule, customer_snapshot(customer=customer), now=now)
    }
    assert by_sql == by_python
    return by_sql


def people(**traits_by_id) -> None:
    for external_id, traits in traits_by_id.items():
        CustomerFactory(external_id=external_id, traits=traits)


def trait(op: str, value=None, key: str = "x") -> dict:
    body = {"key": key, "op": op}
    if value is not None:
        body["value"] = value
    return {"trait": body}


def test_equals_compares_type_and_value():
    people(a={"x": "1"}, b={"x": 1}, c={"x": 1.0}, d={"x": True}, e={})

    assert matches(trait("equals", 1)) == {"b", "c"}
    assert matches(trait("equals", "1")) == {"a"}
    assert matches(trait("equals", True)) == {"d"}


def test_not_equals_includes_customers_without_the_trait():
    people(a={"x": "pro"}, b={"x": "free"}, c={}, d={"x": None})

    assert matches(trait("not_equals", "pro")) == {"b", "c", "d"}


def test_in_matches_any_listed_value():
    people(a={"x": "nl"}, b={"x": "be"}, c={"x": "de"}, d={"x": 3})

    assert matches(trait("in", ["nl", "be", 3])) == {"a", "b", "d"}


def test_number_comparisons_ignore_values_that_are_not_numbers():
    people(a={"x": 5}, b={"x": 10}, c={"x": 15.5}, d={"x": "20"}, e={"x": True}, f={})

    assert matches(trait("less_than", 10)) == {"a"}
    assert matches(trait("less_or_equal", 10)) == {"a", "b"}
    assert matches(trait("greater_than", 10)) == {"c"}
    assert matches(trait("greater_or_equal", 10)) == {"b", "c"}
    assert matches(trait("between", [5, 15])) == {"a", "b"}


def test_contains_finds_substrings_and_list_elements():
    people(a={"x": "summer sale"}, b={"x": ["sale", "new"]}, c={"x": ["salesforce"]}, d={"x": 1})

    assert matches(trait("contains", "sale")) == {"a", "b"}
    people(e={"x": [1, 2]})
    assert matches(trait("contains", 2)) == {"e"}


def test_starts_with_is_case_sensitive():
    people(a={"x": "Premium"}, b={"x": "premium"}, c={"x": ["Premium"]})

    assert matches(trait("starts_with", "Prem")) == {"a"}


def test_exists_means_present_and_not_null():
    people(a={"x": ""}, b={"x": None}, c={}, d={"x": False})

    assert matches(trait("exists")) == {"a", "d"}
    assert matches({"not": trait("exists")}) == {"b", "c"}


def test_nested_trait_keys_follow_dots():
    people(a={"address": {"city": "Delft"}}, b={"address": "Delft"}, c={"address.city": "Delft"})

    assert matches(trait("equals", "Delft", key="address.city")) == {"a"}


def test_dates_relative_to_now_move_with_the_clock():
    people(
        a={"x": "2026-03-09T12:00:00Z"},  # a day before NOW
        b={"x": "2026-02-01"},  # 37.5 days before
        c={"x": "not a date"},
        d={"x": "2026-03-20"},  # in the future
    )
    later = NOW + dt.timedelta(days=10)

    assert matches(trait("within_last_days", 7)) == {"a"}
    assert matches(trait("within_last_days", 7), now=later) == {"d"}
    assert matches(trait("more_than_days_ago", 30)) == {"b"}
    assert matches(trait("more_than_days_ago", 30), now=later) == {"b"}
    assert matches(trait("more_than_days_ago", 5), now=later) == {"a", "b"}


def test_absolute_dates_and_offsets():
    people(a={"x": "2026-03-10T13:30:00+02:00"}, b={"x": "2026-03-10T12:30:00"}, c={"x": 5})

    assert matches(trait("before", "2026-03-10T12:00:00Z")) == {"a"}
    assert matches(trait("after", "2026-03-10")) == {"a", "b"}


def test_anniversary_window_wraps_the_year_and_keeps_29_february():
    people(
        a={"x": "1990-12-31"},
        b={"x": "1985-01-03"},
        c={"x": "2000-02-29"},
        d={"x": "1990-03-01T08:00:00Z"},
    )
    new_years_eve = dt.datetime(2026, 12, 30, 9, tzinfo=dt.UTC)
    end_of_february = dt.datetime(2027, 2, 27, 9, tzinfo=dt.UTC)  # 2027 has no 29 February

    assert matches(trait("anniversary_within_days", 4), now=new_years_eve) == {"a", "b"}
    assert matches(trait("anniversary_within_days", 1), now=end_of_february) == {"c"}
    assert matches(trait("anniversary_within_days", 2), now=end_of_february) == {"c", "d"}
    assert matches(trait("anniversary_within_days", 0), now=end_of_february) == set()


def test_profile_fields():
    CustomerFactory(external_id="a", email="anna@example.com", locale="nl-NL")
    CustomerFactory(
        external_id="b", email="", locale="en-GB", last_seen=NOW - dt.timedelta(days=40)
    )

    assert matches({"profile": {"field": "email", "op": "exists"}}) == {"a"}
    assert matches({"profile": {"field": "email", "op": "contains", "value": "@example"}}) == {"a"}
    assert matches({"profile": {"field": "locale", "op": "starts_with", "value": "nl"}}) == {"a"}
    assert matches({"profile": {"field": "locale", "op": "in", "value": ["en-GB"]}}) == {"b"}
    assert matches({"profile": {"field": "locale", "op": "not_equals", "value": "en-GB"}}) == {"a"}
    assert matches(
        {"profile": {"field": "last_seen", "op": "more_than_days_ago", "value": 30}}
    ) == {"b"}
    assert matches({"profile": {"field": "first_seen", "op": "before", "value": "2026-01-01"}}) == {
        "a",
        "b",
    }


def test_events_count_within_a_window_with_property_filters():
    anna, bram, cas = (CustomerFactory(external_id=name) for name in ("anna", "bram", "cas"))
    CustomerFactory(external_id="dirk")
    for days_ago, total in ((1, 50), (3, 150), (20, 200)):
        EventFactory(
            customer=anna, timestamp=NOW - dt.timedelta(days=days_ago), properties={"total": total}
        )
    EventFactory(customer=bram, timestamp=NOW - dt.timedelta(days=2), properties={"total": 500})
    EventFactory(customer=cas, timestamp=NOW - dt.timedelta(days=60), properties={"total": 500})
    EventFactory(customer=cas, name="Page Viewed")
    # An event after now does not count yet.
    EventFactory(customer=cas, timestamp=NOW + dt.timedelta(hours=1))
    big = [{"property": "total", "op": "greater_or_equal", "value": 100}]

    assert matches({"event": {"name": "Order Completed"}}) == {"anna", "bram", "cas"}
    assert matches({"event": {"name": "Order Completed", "within_days": 30}}) == {"anna", "bram"}
    assert matches({"event": {"name": "Order Completed", "performed": False}}) == {"dirk"}
    assert matches({"event": {"name": "Order Completed", "count": {"at_least": 2}}}) == {"anna"}
    assert matches({"event": {"name": "Order Completed", "count": {"at_most": 1}}}) == {
        "bram",
        "cas",
        "dirk",
    }
    assert matches(
        {"event": {"name": "Order Completed", "count": {"at_least": 1, "at_most": 1}}}
    ) == {"bram", "cas"}
    assert matches(
        {"event": {"name": "Order Completed", "where": big, "count": {"at_least": 2}}}
    ) == {"anna"}
    assert matches({"event": {"name": "Order Completed", "where": big, "within_days": 10}}) == {
        "anna",
        "bram",
    }
    assert matches({"event": {"name": "Order Completed", "count": {"at_least": 0}}}) == {
        "anna",
        "bram",
        "cas",
        "dirk",
    }
    # Moving the clock: anna's events fall out of the window one by one.
    assert matches(
        {"event": {"name": "Order Completed", "within_days": 5, "count": {"at_least": 2}}}
    ) == {"anna"}
    later = NOW + dt.timedelta(days=3)
    assert (
        matches(
            {"event": {"name": "Order Completed", "within_days": 5, "count": {"at_least": 2}}},
            now=later,
        )
        == set()
    )
    # bram's order is exactly five days old: the window excludes its start. cas's order,
    # an hour after NOW, now counts.
    assert matches({"event": {"name": "Order Completed", "within_days": 5}}, now=later) == {
        "anna",
        "cas",
    }


def test_segment_membership_and_reachability():
    vip = SegmentFactory(key="vip")
    anna = CustomerFactory(external_id="anna", phone="+31612345678")
    bram = CustomerFactory(external_id="bram", email="")
    cas = CustomerFactory(external_id="cas")
    SegmentMembership.objects.create(segment=vip, customer=anna, entered_at=NOW)
    SegmentMembership.objects.create(
        segment=vip, customer=cas, entered_at=NOW - dt.timedelta(days=9), exited_at=NOW
    )
    DeviceFactory(customer=bram)

    assert matches({"segment": {"key": "vip"}}) == {"anna"}
    assert matches({"segment": {"key": "unknown"}}) == set()
    assert matches({"reachable": {"channel": "email"}}) == {"anna", "cas"}
    assert matches({"reachable": {"channel": "sms"}}) == {"anna"}
    assert matches({"reachable": {"channel": "push"}}) == {"bram"}


def test_and_or_not_nest():
    people(
        a={"plan": "pro", "age": 20},
        b={"plan": "pro", "age": 40},
        c={"plan": "free", "age": 20},
        d={},
    )
    rule = {
        "any": [
            {
                "all": [
                    trait("equals", "pro", key="plan"),
                    {"not": trait("greater_than", 30, key="age")},
                ]
            },
            {"not": trait("exists", key="plan")},
        ]
    }

    assert matches(rule) == {"a", "d"}


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError, match="aware"):
        compile_rule(trait("exists"), now=NOW.replace(tzinfo=None))
