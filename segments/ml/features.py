"""Customer features computed in SQL, as of a moment: only events at or before it count.

Features at ``as_of`` never see what happened after it, so labels taken from the window
after ``as_of`` cannot leak into them (a test holds this).
"""

import datetime as dt
import math
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
# Counts over everything recorded: while the history is shorter than a year the 365-day
# order figures are lifetime counts too. Models bound them by their training history.
LIFETIME_COUNTS = ("events_total", "orders_365d", "monetary_365d")
# A window counts as covered when the history spans this share of it: an installation's
# first day is rarely a whole one, and a window short by a few hours barely changes.
WINDOW_COVERAGE = 0.9


@dataclass
class FeatureMatrix:
    customer_ids: np.ndarray
    names: list[str]
    values: np.ndarray  # one row per customer, one column per feature

    def columns(self, names: Sequence[str]) -> "FeatureMatrix":
        """The same customers with only the features ``names``, in that order."""
        position = {name: column for column, name in enumerate(self.names)}
        picked = [position[name] for name in names]
        return FeatureMatrix(self.customer_ids, list(names), self.values[:, picked])


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


def history_days(*, as_of: dt.datetime) -> float:
    """How many days of customer events are recorded up to ``as_of`` (0 without any)."""
    # The earliest event of each name, read off the (name, timestamp) index: the event
    # names are found by skipping through that index (a few dozen probes), not by reading
    # every event, whose only timestamp index is a BRIN.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE names(name) AS (
                (SELECT name FROM customers_event ORDER BY name LIMIT 1)
                UNION ALL
                SELECT (SELECT e.name FROM customers_event e WHERE e.name > names.name
                        ORDER BY e.name LIMIT 1)
                FROM names WHERE names.name IS NOT NULL
            )
            SELECT EXTRACT(EPOCH FROM (%s - min(first.at))) / 86400
            FROM names, LATERAL (
                SELECT min(e.timestamp) AS at FROM customers_event e
                WHERE e.name = names.name AND e.timestamp <= %s
            ) first
            WHERE names.name IS NOT NULL AND NOT (names.name = ANY(%s))
            """,
            [as_of, as_of, list(INTERNAL_EVENTS)],
        )
        days = cursor.fetchone()[0]
    return float(days or 0)


def lifetime_days(history_days: float) -> int:
    """How far back a model's lifetime counts look: the whole history before its training
    rows (in whole days, so nothing of it is cut), at training, holdout and scoring alike."""
    return math.ceil(history_days)


def model_feature_names(*, event_names: Sequence[str], history_days: float) -> list[str]:
    """The features a model trained on ``history_days`` of history may use.

    A window longer than the history is truncated in training rows, but not later in
    holdout and scoring rows: with 30 days of history, the 90-day counts are copies of the
    30-day ones in training only, and a model leaning on them is wrong once more history
    exists. Such windows are left out. Lifetime counts are bounded by the training history
    instead (``lifetime_days``), so they mean the same at every moment; the all-time event
    count is still left out until the history is longer than every window, as until then
    it is a copy of one. Recency and tenure stay: capped by the history as well, they
    order customers the same way at any age, and a tree treats values beyond its largest
    split alike.
    """
    longest = max(WINDOWS)
    kept = []
    for name in feature_names(event_names):
        window = _window_days(name)
        if name == "events_total":
            if history_days > longest:
                kept.append(name)
        elif window is None or history_days >= WINDOW_COVERAGE * window:
            kept.append(name)
    return kept


def _window_days(name: str) -> int | None:
    """The window of a windowed count (``events_30d``, ``count_30d:…``), else None."""
    head = name.split(":", 1)[0]
    for days in WINDOWS:
        if head in (f"events_{days}d", f"count_{days}d"):
            return days
    return None


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
    lifetime_days: int | None = None,
) -> FeatureMatrix:
    """Features of the customers first seen by ``as_of`` (or of the given ones), in one query.

    Recency, tenure, frequency and monetary value (``revenue`` or ``total`` of orders),
    and counts per event name in several windows. With ``lifetime_days``, the lifetime
    counts (``LIFETIME_COUNTS``) look back no further than that many days.
    """
    year = 365 if lifetime_days is None else min(365, lifetime_days)
    lifetime = "TRUE" if lifetime_days is None else "e.timestamp > %s"
    columns = [
        "COALESCE(EXTRACT(EPOCH FROM (%s - max(e.timestamp))) / 86400, %s)",
        "EXTRACT(EPOCH FROM (%s - c.first_seen)) / 86400",
        "count(e.id) FILTER (WHERE e.name = %s AND e.timestamp > %s)",
        f"COALESCE(sum({ORDER_VALUE_SQL}) FILTER (WHERE e.name = %s AND e.timestamp > %s), 0)",
        f"count(e.id) FILTER (WHERE {lifetime})",
    ]
    params: list = [as_of, NO_EVENT_RECENCY, as_of, ORDER_EVENT, as_of - dt.timedelta(days=year)]
    params += [ORDER_EVENT, as_of - dt.timedelta(days=year)]
    if lifetime_days is not None:
        params.append(as_of - dt.timedelta(days=lifetime_days))
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
