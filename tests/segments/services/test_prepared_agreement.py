"""Re-evaluating one customer (a prepared statement, parameters bound on the server)
selects exactly who the compiled query with client-side binding selects, for a condition
of every kind and a value of every type (how each parameter is typed differs between the
two bindings)."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from segments.models import CustomerScore, ModelVersion, Segment, SegmentMembership
from segments.rules import compile_rule
from segments.services.memberships import segments_reevaluate
from tests.segments.factories import CustomerFactory, DeviceFactory, EventFactory

pytestmark = pytest.mark.django_db

RULES = [
    {"trait": {"key": "plan", "op": "equals", "value": "pro"}},
    {"trait": {"key": "age", "op": "equals", "value": 30}},
    {"trait": {"key": "vip", "op": "equals", "value": True}},
    {"trait": {"key": "age", "op": "in", "value": [30, 41.5, "30"]}},
    {"trait": {"key": "plan", "op": "in", "value": ["pro", "team"]}},
    {"trait": {"key": "age", "op": "between", "value": [18, 35]}},
    {"trait": {"key": "age", "op": "greater_than", "value": 35.5}},
    {"trait": {"key": "tags", "op": "contains", "value": "gold"}},
    {"trait": {"key": "tags", "op": "contains", "value": 7}},
    {"trait": {"key": "plan", "op": "starts_with", "value": "pr"}},
    {"trait": {"key": "address.city", "op": "exists"}},
    {"trait": {"key": "signed_up_at", "op": "within_last_days", "value": 30}},
    {"trait": {"key": "signed_up_at", "op": "more_than_days_ago", "value": 30}},
    {"trait": {"key": "signed_up_at", "op": "after", "value": "2020-01-01"}},
    {"trait": {"key": "birthday", "op": "anniversary_within_days", "value": 10}},
    {"profile": {"field": "email", "op": "in", "value": ["a@example.com", "b@example.com"]}},
    {"profile": {"field": "locale", "op": "starts_with", "value": "nl"}},
    {"profile": {"field": "last_seen", "op": "within_last_days", "value": 7}},
    {"event": {"name": "Order Completed", "count": {"at_least": 2, "at_most": 3}}},
    {"event": {"name": "Order Completed", "within_days": 10, "performed": False}},
    {
        "event": {
            "name": "Order Completed",
            "where": [
                {"property": "total", "op": "greater_or_equal", "value": 100},
                {"property": "coupon", "op": "in", "value": ["A", "B"]},
            ],
        }
    },
    {"segment": {"key": "listed"}},
    {"reachable": {"channel": "push"}},
    {"score": {"model": "churn", "op": "above", "value": 0.5}},
    {"score": {"model": "churn", "op": "top_percent", "value": 40}},
    {
        "any": [
            {"not": {"trait": {"key": "plan", "op": "not_equals", "value": "pro"}}},
            {"all": [{"reachable": {"channel": "email"}}, {"reachable": {"channel": "sms"}}]},
        ]
    },
]


@pytest.fixture
def customers():
    now = timezone.now()
    people = [
        CustomerFactory(
            email="a@example.com", locale="nl-NL", last_seen=now,
            traits={"plan": "pro", "age": 30, "vip": True, "tags": ["gold", 7],
                    "address": {"city": "Delft"}, "signed_up_at": (now - dt.timedelta(days=3)).isoformat(),
                    "birthday": (now + dt.timedelta(days=2)).strftime("1990-%m-%d")},
        ),
        CustomerFactory(
            email="c@example.com", phone="+31612345678", locale="en", last_seen=now - dt.timedelta(days=20),
            traits={"plan": "team", "age": "30", "tags": "golden", "signed_up_at": "2019-05-01"},
        ),
        CustomerFactory(email="", traits={"plan": "free", "age": 41.5, "vip": 1}),
    ]  # fmt: skip
    for total, coupon, days in ((150, "A", 1), (20, "B", 40), (120, "C", 2)):
        EventFactory(
            customer=people[0], properties={"total": total, "coupon": coupon},
            timestamp=now - dt.timedelta(days=days),
        )  # fmt: skip
    EventFactory(customer=people[1], properties={"total": 100, "coupon": "B"}, timestamp=now)
    listed = Segment.objects.create(key="listed", name="Listed", kind=Segment.Kind.STATIC)
    SegmentMembership.objects.create(segment=listed, customer=people[1], entered_at=now)
    DeviceFactory(customer=people[2])
    model = ModelVersion.objects.create(kind="churn", version=1, trained_at=now, artefact=b"")
    for person, score, percentile in ((people[0], 0.9, 1.0), (people[1], 0.2, 0.5)):
        CustomerScore.objects.create(
            customer=person, kind="churn", model_version=model, score=score,
            percentile=percentile, scored_at=now,
        )  # fmt: skip
    return people


def test_every_condition_selects_the_same_customers_both_ways(customers):
    now = timezone.now()
    segments = [
        Segment.objects.create(key=f"rule-{number}", name=f"Rule {number}", rules=rule)
        for number, rule in enumerate(RULES)
    ]

    # One customer and one segment per call: a prepared statement per rule.
    for customer in customers:
        for segment in segments:
            segments_reevaluate(customer_ids=[customer.pk], segment_ids={segment.pk}, now=now)

    selected_somebody = 0
    for segment, rule in zip(segments, RULES, strict=True):
        prepared = set(
            SegmentMembership.objects.filter(segment=segment, exited_at=None).values_list(
                "customer_id", flat=True
            )
        )
        compiled = set(
            type(customers[0])
            .objects.filter(compile_rule(rule, now=now))
            .values_list("pk", flat=True)
        )
        assert prepared == compiled, rule
        selected_somebody += bool(compiled) and compiled != {c.pk for c in customers}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%wanted_%%'"
        )
        # Every rule but the anniversary (its SQL changes with the date) was prepared.
        assert cursor.fetchone()[0] == len(RULES) - 1
    # The data tells the conditions apart: most select some customers, not all or none.
    assert selected_somebody >= 18, selected_somebody
