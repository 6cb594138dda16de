"""Customer features computed in SQL, as of a moment: only events at or before it count.

Features at ``as_of`` never see what happened after it, so labels taken from the window
after ``as_of`` cannot leak into them (a test holds this).
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection

WINDOWS = (7, 30, 90)
ORDER_EVENT = "Order Completed"
# Events the platform writes itself: they describe segments, not the customer's behaviour.
INTERNAL_EVENTS = ("Segment Entered", "Segment Exited")
# The value of an order event ``e``: its ``revenue``, else its ``total`` (RFM uses it too).
ORDER_VALUE_SQL = """CASE
    WHEN jsonb_typeof(e.properties -> 'revenue') = 'number'
      THEN (e.properties ->> 'revenue')::float
    WHEN jsonb_typeof(e.properties -> 'total') = 'number'
      THEN (e.properties ->> 'total')::float
  END"""
# Without any event, recency is this many days.
NO_EVENT_RECENCY = 3650.0


@dataclass
class FeatureMatrix:
    customer_ids: np.ndarray
    names: list[str]
    values: np.ndarray  # one row per customer, one column per feature


def frequent_event_names(*, as_of: dt.datetime, limit: int = 8, days: int = 90) -> list[str]:
    """The event names seen most in the ``days`` before ``as_of``: one count feature each."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT name FROM customers_event
            WHERE timestamp <= %s AND timestamp > %s AND name <> '' AND NOT (name = ANY(%s))
            GROUP BY name ORDER BY count(*) DESC, name LIMIT %s
            """,
            [as_of, as_of - dt.timedelta(days=days), list(INTERNAL_EVENTS), limit],
        )
        return [row[0] for row in cursor.fetchall()]


def feature_names(event_names: Sequence[str]) -> list[str]:
    names = ["recency_days", "tenure_days", "orders_365d", "monetary_365d", "events_total"]
    for days in WINDOWS:
        names.append(f"events_{days}d")
        names.extend(f"count_{days}d:{name}" for name in event_names)
    return names


def customer_features(
    *,
    as_of: dt.datetime,
    event_names: Sequence[str],
    customer_ids: Sequence[int] | None = None,
) -> FeatureMatrix:
    """Features of the customers first seen by ``as_of`` (or of the given ones), in one query.

    Recency, tenure, frequency and monetary value (``revenue`` or ``total`` of orders),
    and counts per event name in several windows.
    """
    columns = [
        "COALESCE(EXTRACT(EPOCH FROM (%s - max(e.timestamp))) / 86400, %s)",
        "EXTRACT(EPOCH FROM (%s - c.first_seen)) / 86400",
        "count(e.id) FILTER (WHERE e.name = %s AND e.timestamp > %s)",
        f"COALESCE(sum({ORDER_VALUE_SQL}) FILTER (WHERE e.name = %s AND e.timestamp > %s), 0)",
        "count(e.id)",
    ]
    params: list = [as_of, NO_EVENT_RECENCY, as_of, ORDER_EVENT, as_of - dt.timedelta(days=365)]
    params += [ORDER_EVENT, as_of - dt.timedelta(days=365)]
    for days in WINDOWS:
        since = as_of - dt.timedelta(days=days)
        columns.append("count(e.id) FILTER (WHERE e.timestamp > %s)")
        params.append(since)
        for name in event_names:
            columns.append("count(e.id) FILTER (WHERE e.timestamp > %s AND e.name = %s)")
            params += [since, name]
    where = "c.first_seen <= %s"
    where_params: list = [as_of]
    if customer_ids is not None:
        where += " AND c.id = ANY(%s)"
        where_params.append(list(customer_ids))
    sql = f"""
        SELECT c.id, {", ".join(columns)}
        FROM customers_customer c
        LEFT JOIN customers_event e
          ON e.customer_id = c.id AND e.timestamp <= %s AND NOT (e.name = ANY(%s))
        WHERE {where}
        GROUP BY c.id
        ORDER BY c.id
    """  # noqa: S608 - the f-string only joins fixed column templates; values are params
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, as_of, list(INTERNAL_EVENTS), *where_params])
        rows = cursor.fetchall()
    names = feature_names(event_names)
    if not rows:
        return FeatureMatrix(np.zeros(0, dtype=np.int64), names, np.zeros((0, len(names))))
    data = np.array([[float(value) for value in row[1:]] for row in rows], dtype=np.float64)
    return FeatureMatrix(np.array([row[0] for row in rows], dtype=np.int64), names, data)


def labels(
    *, kind: str, customer_ids: np.ndarray, start: dt.datetime, horizon_days: int
) -> np.ndarray:
    """1 or 0 per customer from the window (start, start + horizon]: churn means no event
    at all in it, purchase means at least one order."""
    end = start + dt.timedelta(days=horizon_days)
    condition = "TRUE" if kind == "churn" else "e.name = %s"
    extra = [] if kind == "churn" else [ORDER_EVENT]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT DISTINCT e.customer_id FROM customers_event e
            WHERE e.customer_id = ANY(%s) AND e.timestamp > %s AND e.timestamp <= %s
              AND NOT (e.name = ANY(%s)) AND {condition}
            """,  # noqa: S608 - a fixed condition; values are params
            [list(map(int, customer_ids)), start, end, list(INTERNAL_EVENTS), *extra],
        )
        active = {row[0] for row in cursor.fetchall()}
    seen = np.array([customer_id in active for customer_id in customer_ids], dtype=np.int64)
    return 1 - seen if kind == "churn" else seen
