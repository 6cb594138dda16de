"""The per-event path costs a fixed number of queries, each a prepared statement.

The segments reactor runs for every incoming event: its query count must not grow with
the number of segments, customers or events, and its statements must stop being planned
again (PostgreSQL's generic plan), which is what kept it under 2 ms at 1,000,000 customers.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Event
from segments import reactors
from segments.models import SegmentMembership
from segments.services.definitions import segment_create
from segments.services.memberships import segment_recompute
from tests.segments.factories import NOW, CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db

# The bench's five segments (bench/segment_recompute.py): an order can change two of them,
# and one more depends on one of those.
BUYERS = {
    "all": [
        {"trait": {"key": "plan", "op": "equals", "value": "pro"}},
        {
            "event": {
                "name": "Order Completed",
                "within_days": 30,
                "count": {"at_least": 2},
                "where": [{"property": "total", "op": "greater_than", "value": 50}],
            }
        },
    ]
}
OTHERS = {
    "trial": {"trait": {"key": "plan", "op": "equals", "value": "trial"}},
    "viewers": {"event": {"name": "Product Viewed", "within_days": 7, "count": {"at_least": 3}}},
    "no-orders": {"event": {"name": "Order Completed", "performed": False}},
    "buyer-viewers": {
        "all": [{"segment": {"key": "buyers"}}, {"event": {"name": "Product Viewed"}}]
    },
}


def order(customer, number: int, total: int) -> Event:
    event = EventFactory(
        customer=customer, name="Order Completed", properties={"total": total},
        timestamp=timezone.now(), message_id=f"order-{customer.pk}-{number}",
    )  # fmt: skip
    return Event.objects.select_related("customer").get(pk=event.pk)


@pytest.fixture
def segments(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = {"buyers": segment_create(key="buyers", name="Buyers", rules=BUYERS)}
        for key, rules in OTHERS.items():
            created[key] = segment_create(key=key, name=key, rules=rules)
    return created


def reevaluate(event: Event) -> list[str]:
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as queries, connection.execute_wrapper(record):
        reactors.on_events([event])
    assert len(queries.captured_queries) == len(statements)
    return statements


def test_an_event_that_changes_nothing_costs_two_queries(segments):
    customer = CustomerFactory(traits={"plan": "free"}, first_seen=NOW, last_seen=NOW)
    reactors.on_events([order(customer, 0, 120)])  # leaves no-orders (never entered)
    before = SegmentMembership.objects.count()

    sql = reevaluate(order(customer, 1, 120))

    # The index's version, then one query for the two segments an order can change.
    assert len(sql) == 2
    assert "FROM segments_segment" in sql[0]
    assert sql[1].count('AS "wanted_') == 2
    assert SegmentMembership.objects.count() == before


def test_an_event_that_enters_a_segment_writes_in_a_fixed_number_of_queries(segments):
    customer = CustomerFactory(traits={"plan": "pro"}, first_seen=NOW, last_seen=NOW)
    reactors.on_events([order(customer, 0, 120)])
    assert not SegmentMembership.objects.filter(segment=segments["buyers"]).exists()

    sql = reevaluate(order(customer, 1, 120))

    # version; level 1; the stay, the member count and the Segment Entered event;
    # level 2 (buyer-viewers, because buyers changed) which changes nothing.
    assert len(sql) == 6
    assert (
        SegmentMembership.objects.filter(
            segment=segments["buyers"], customer=customer, exited_at=None
        ).count()
        == 1
    )
    assert Event.objects.filter(customer=customer, name="Segment Entered").count() == 1


def test_the_query_count_does_not_grow_with_segments_of_other_events(segments):
    for number in range(10):
        segment_create(
            key=f"pageviews-{number}", name=f"Page views {number}",
            rules={"event": {"name": f"Page {number}", "count": {"at_least": number + 1}}},
        )  # fmt: skip
    customer = CustomerFactory(traits={"plan": "free"}, first_seen=NOW, last_seen=NOW)
    reactors.on_events([order(customer, 0, 120)])

    assert len(reevaluate(order(customer, 1, 120))) == 2


def test_the_per_event_statements_are_prepared_and_stop_being_planned(segments):
    customers = [
        CustomerFactory(traits={"plan": "free"}, first_seen=NOW, last_seen=NOW) for _ in range(7)
    ]

    for number, customer in enumerate(customers):
        reactors.on_events([order(customer, number, 10)])

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%%wanted_%%'"
        )
        statements = cursor.fetchall()
    # One statement for the level, run seven times: planned five times, then generic.
    assert len(statements) == 1
    assert statements[0][1] >= 1


def test_single_customer_reevaluation_agrees_with_the_full_recompute(segments):
    plans_and_orders = [("pro", [120, 80]), ("pro", [20, 120]), ("trial", []), ("pro", [60])]
    customers = [
        CustomerFactory(traits={"plan": plan}, external_id=f"agree-{number}")
        for number, (plan, _) in enumerate(plans_and_orders)
    ]
    for segment in segments.values():
        segment_recompute(segment=segment, now=timezone.now())

    # Event by event, one customer at a time (the prepared path)...
    for customer, (_, totals) in zip(customers, plans_and_orders, strict=True):
        for number, total in enumerate(totals):
            reactors.on_events([order(customer, number, total)])
        viewed = EventFactory(customer=customer, name="Product Viewed", timestamp=timezone.now())
        reactors.on_events([Event.objects.select_related("customer").get(pk=viewed.pk)])
    incremental = set(
        SegmentMembership.objects.filter(exited_at=None).values_list(
            "segment__key", "customer__external_id"
        )
    )

    # ...left nothing for a recompute over everyone (client-side binding) to change.
    for segment in segments.values():
        changes = segment_recompute(segment=segment, now=timezone.now())
        assert (changes.entered, changes.exited) == (0, 0), segment.key
    assert incremental == {
        ("buyers", "agree-0"),
        ("buyer-viewers", "agree-0"),
        ("trial", "agree-2"),
        ("no-orders", "agree-2"),
    }


def test_without_prepared_statements_the_same_queries_bind_on_the_client(segments, settings):
    settings.SEGMENTS_PREPARED_STATEMENTS = False
    customer = CustomerFactory(traits={"plan": "pro"}, first_seen=NOW, last_seen=NOW)
    reactors.on_events([order(customer, 0, 120)])

    assert len(reevaluate(order(customer, 1, 120))) == 6

    assert SegmentMembership.objects.filter(
        segment=segments["buyers"], customer=customer, exited_at=None
    ).exists()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%wanted_%%'"
        )
        assert cursor.fetchone()[0] == 0
