"""RFM scores of every customer with an order, computed in one SQL statement.

Recency is the days since the customer's last ``Order Completed``, frequency the orders
and monetary the order value (``revenue``, else ``total``) in the last 365 days: the same
definitions as the model features (``segments.ml.features``). Each becomes a quintile
score from 1 to 5 over the scored customers by ``percent_rank``, so equal values share the
same (lower) score and the result does not depend on row order.
"""

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from segments.ml.features import ORDER_EVENT, ORDER_VALUE_SQL
from segments.rules.rfm import rfm_segment_sql

_QUINTILE = "LEAST(5, 1 + floor(5 * percent_rank() OVER (ORDER BY {})))::smallint"

_REFRESH_SQL = f"""
WITH orders AS (
    SELECT e.customer_id,
           max(e.timestamp) AS last_order,
           count(*) FILTER (WHERE e.timestamp > %(year_ago)s) AS frequency,
           COALESCE(sum({ORDER_VALUE_SQL}) FILTER (WHERE e.timestamp > %(year_ago)s), 0)
             AS monetary
    FROM customers_event e
    WHERE e.name = %(order)s AND e.timestamp <= %(now)s
    GROUP BY e.customer_id
), scored AS (
    SELECT customer_id, last_order, frequency, monetary,
           {_QUINTILE.format("last_order")} AS recency_score,
           {_QUINTILE.format("frequency")} AS frequency_score,
           {_QUINTILE.format("monetary")} AS monetary_score
    FROM orders
)
INSERT INTO segments_customerrfm
    (customer_id, recency_days, frequency, monetary, recency_score, frequency_score,
     monetary_score, segment, computed_at)
SELECT customer_id, EXTRACT(EPOCH FROM (%(now)s - last_order)) / 86400, frequency, monetary,
       recency_score, frequency_score, monetary_score,
       {rfm_segment_sql("recency_score", "frequency_score")}, %(now)s
FROM scored
"""  # noqa: S608 - fixed SQL fragments only; values are parameters


@transaction.atomic
def rfm_refresh(*, now: dt.datetime | None = None) -> int:
    """Replace every customer's RFM scores with those as of ``now``; return how many
    customers were scored (customers without an order have none)."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM segments_customerrfm")
        cursor.execute(
            _REFRESH_SQL,
            {
                "now": now,
                "year_ago": now - dt.timedelta(days=365),
                "order": ORDER_EVENT,
            },
        )
        return cursor.rowcount
