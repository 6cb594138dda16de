"""Read queries of the segments app."""

import datetime as dt

from django.db import connection
from django.db.models import F, QuerySet

from customers.models import Customer
from segments.models import CustomerRecommendation, CustomerScore, Segment, SegmentMembership
from segments.rules import CustomerSnapshot, compile_rule
from segments.snapshots import customer_snapshots


def customer_snapshot(*, customer: Customer) -> CustomerSnapshot:
    """Everything a rule can look at for one customer (for previews and tests; the
    membership machinery works in SQL): a batch of one."""
    return customer_snapshots(customers=[customer])[customer.pk]


def segment_list() -> QuerySet[Segment]:
    return Segment.objects.order_by("name")


def segment_get(*, key: str) -> Segment | None:
    return Segment.objects.filter(key=key).first()


def segment_member_count(*, segment: Segment) -> int:
    return SegmentMembership.objects.filter(segment=segment, exited_at=None).count()


def segment_members_with_entry(*, segment: Segment) -> QuerySet[Customer]:
    """Current members with ``entered_at`` of their current stay, newest first."""
    return (
        Customer.objects.filter(
            segment_memberships__segment=segment, segment_memberships__exited_at=None
        )
        .annotate(entered_at=F("segment_memberships__entered_at"))
        .order_by("-entered_at", "-pk")
    )


def rule_preview(*, rules: dict, now, sample_size: int = 10) -> tuple[int, list[Customer]]:
    """How many customers a (draft) rule selects now, and a few of them. Validates first."""
    matching = Customer.objects.filter(compile_rule(rules, now=now))
    return matching.count(), list(matching.order_by("-last_seen", "-pk")[:sample_size])


def segment_size_history(*, segment: Segment, days: int, now) -> list[tuple[dt.date, int]]:
    """The number of members at the end of each of the last ``days`` days (UTC), oldest first.

    One pass over the segment's stays: entries and exits are counted per day, and the
    running total gives the size.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT day, sum(delta) FROM (
                SELECT (entered_at AT TIME ZONE 'UTC')::date AS day, count(*) AS delta
                FROM segments_segmentmembership WHERE segment_id = %s GROUP BY 1
                UNION ALL
                SELECT (exited_at AT TIME ZONE 'UTC')::date, -count(*)
                FROM segments_segmentmembership
                WHERE segment_id = %s AND exited_at IS NOT NULL GROUP BY 1
            ) AS changes GROUP BY day ORDER BY day
            """,
            [segment.pk, segment.pk],
        )
        deltas = cursor.fetchall()
    today = now.astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    size = sum(delta for day, delta in deltas if day < first)
    by_day = {day: delta for day, delta in deltas}
    history = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        size += by_day.get(day, 0)
        history.append((day, int(size)))
    return history


def recommendations_for(*, customer_id: int, limit: int = 5) -> list[dict]:
    """A customer's recommended items, best first, for templates (``recommendations``)."""
    items = (
        CustomerRecommendation.objects.filter(customer_id=customer_id)
        .values_list("items", flat=True)
        .first()
    )
    return list(items or [])[:limit]


def scores_for(*, customer_id: int) -> dict[str, float]:
    """A customer's latest propensity scores by kind, for templates (``scores``)."""
    return dict(CustomerScore.objects.filter(customer_id=customer_id).values_list("kind", "score"))


def recommendations_for_many(*, customer_ids: list[int], limit: int = 5) -> dict[int, list[dict]]:
    """``recommendations_for`` of many customers in one query (dispatch renders batches);
    a customer without recommendations is absent."""
    rows = CustomerRecommendation.objects.filter(customer_id__in=customer_ids).values_list(
        "customer_id", "items"
    )
    return {customer_id: list(items or [])[:limit] for customer_id, items in rows}


def scores_for_many(*, customer_ids: list[int]) -> dict[int, dict[str, float]]:
    """``scores_for`` of many customers in one query; a customer without scores is absent."""
    scores: dict[int, dict[str, float]] = {}
    rows = CustomerScore.objects.filter(customer_id__in=customer_ids).values_list(
        "customer_id", "kind", "score"
    )
    for customer_id, kind, score in rows:
        scores.setdefault(customer_id, {})[kind] = score
    return scores
