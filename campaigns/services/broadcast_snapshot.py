"""A campaign run's audience written into the outbox, a chunk of customers at a time.

One ``INSERT … SELECT`` per chunk writes every recipient's message (or holdout row): the
audience, a deterministic variant per customer (a hash of campaign and customer, so a
re-send or a recount gives everyone the same variant), and the time each message is due
(now, spread by the throttle, or the customer's local time).

A run sent now is written in chunks of ``CAMPAIGN_SNAPSHOT_CHUNK`` customers, each
committed on its own so dispatch starts on the first while the next is written; the
campaign's ``snapshot_after`` holds the last customer written until the audience is
done. Throttled and local-time runs are written whole, as their due times count
positions across the whole audience (and nothing is sent at once anyway).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection

from campaigns.models import Campaign, MessageStatus
from campaigns.services.outbox import sweep_after
from consent.models import Topic

HOLDOUT = "holdout"
BUCKETS = 10_000
# The failure_reason of the rest's messages while they wait for the A/B test's winner.
WAITING_FOR_WINNER = "waiting for the A/B test winner"


def test_end(*, holdout_percent: int, test_percent: int = 100) -> int:
    """The first bucket of the rest: buckets from here on wait for the A/B winner; pure."""
    holdout = holdout_percent * BUCKETS // 100
    return holdout + (BUCKETS - holdout) * test_percent // 100


def variant_bounds(
    *, holdout_percent: int, weights: list[tuple[str, int]], test_percent: int = 100
) -> list[tuple[str, int]]:
    """Upper bucket bounds (of 10,000) per variant, splitting by weight the test group: the
    buckets between the holdout and the rest; pure."""
    holdout = holdout_percent * BUCKETS // 100
    end = test_end(holdout_percent=holdout_percent, test_percent=test_percent)
    total = sum(weight for _, weight in weights)
    bounds, running = [], 0
    for key, weight in weights:
        running += weight
        bounds.append((key, holdout + (end - holdout) * running // total))
    return bounds


_SEND_SQL = """
WITH audience AS (
    -- This chunk: the audience's next customers after the last one written.
    SELECT customer_id FROM ({audience}) everyone
    WHERE customer_id > %(after)s ORDER BY customer_id LIMIT %(limit)s
),
assigned AS MATERIALIZED (
    -- Computed once per customer (not once per use below): bucket, then variant.
    SELECT b.customer_id, b.zone, b.position,
           CASE WHEN b.bucket < %(holdout)s THEN 'holdout'
                WHEN b.bucket >= %(test_end)s THEN 'rest'
                -- The first variant whose upper bound is above the bucket.
                ELSE (%(keys)s::text[])[width_bucket(b.bucket, %(bounds)s::int[]) + 1]
           END AS variant
    FROM (
        SELECT a.customer_id, {zone} AS zone,
               (('x' || substr(md5(%(seed)s || a.customer_id::text), 1, 8))::bit(32)::bigint
                    %% {buckets}) AS bucket,
               row_number() OVER (ORDER BY a.customer_id) AS position
        FROM audience a JOIN customers_customer c ON c.id = a.customer_id
    ) b
),
inserted AS (
    INSERT INTO campaigns_message
        (customer_id, channel, template_version_id, topic_key, locale, idempotency_key,
         origin, step_id, campaign_id, variant, context, status, decision_reason,
         attempts, next_attempt_at, failure_reason, provider_id, subject,
         created_at, updated_at)
    SELECT a.customer_id, %(channel)s, versions.version_id, %(topic)s, '',
           %(key_prefix)s || a.customer_id::text, 'campaign', '', %(campaign)s, a.variant,
           '{{}}'::jsonb,
           CASE a.variant WHEN 'holdout' THEN 'skipped' WHEN 'rest' THEN 'deferred'
                ELSE 'queued' END, '', 0,
           CASE WHEN a.variant IN ('holdout', 'rest') THEN NULL ELSE {due} END,
           CASE a.variant WHEN 'holdout' THEN 'holdout: kept out to measure uplift'
                WHEN 'rest' THEN %(waiting)s ELSE '' END,
           '', '', %(now)s, %(now)s
    FROM assigned a
    JOIN unnest(%(keys)s::text[], %(version_ids)s::bigint[]) AS versions(key, version_id)
      ON versions.key = CASE WHEN a.variant IN ('holdout', 'rest') THEN %(first_key)s
                             ELSE a.variant END
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, status
),
history AS (
    INSERT INTO campaigns_messagestatuschange
        (message_id, from_status, to_status, actor, reason, data, created_at)
    SELECT id, '', status, %(actor)s,
           CASE status WHEN 'skipped' THEN 'holdout' WHEN 'deferred' THEN %(waiting)s
                       ELSE '' END, '{{}}'::jsonb, %(now)s
    FROM inserted
)
SELECT inserted.id, inserted.status, chunk.last, chunk.size
FROM (SELECT max(customer_id) AS last, count(*) AS size FROM audience) chunk
LEFT JOIN inserted ON true ORDER BY inserted.id
"""

# The customer's zone, when a local-time send needs it (an unknown name falls back).
_ZONE = """CASE WHEN c.timezone IN (SELECT name FROM pg_timezone_names) THEN c.timezone
                ELSE %(default_zone)s END"""
DUE_NOW = "%(sweep_at)s::timestamptz"
DUE_THROTTLED = (
    "%(now)s::timestamptz + make_interval(secs => (a.position - 1) * 60.0 / %(throttle)s)"
)
# The customer's wall-clock time today, or tomorrow when it has passed.
DUE_LOCAL = """(CASE
    WHEN (((%(now)s::timestamptz AT TIME ZONE a.zone)::date + %(local_time)s::time)
          AT TIME ZONE a.zone) >= %(now)s::timestamptz
    THEN (((%(now)s::timestamptz AT TIME ZONE a.zone)::date + %(local_time)s::time)
          AT TIME ZONE a.zone)
    ELSE (((%(now)s::timestamptz AT TIME ZONE a.zone)::date + 1 + %(local_time)s::time)
          AT TIME ZONE a.zone) END)"""


def _audience(campaign: Campaign, topic: Topic) -> tuple[str, dict[str, Any]]:
    if campaign.segment_id is not None:
        return (
            "SELECT DISTINCT customer_id FROM segments_segmentmembership "
            "WHERE segment_id = %(segment)s AND exited_at IS NULL",
            {"segment": campaign.segment_id},
        )
    if topic.default == Topic.Default.OPT_OUT or topic.is_transactional:
        # Everyone, less those who withdrew: the gate re-checks each one at send time.
        return (
            "SELECT c.id AS customer_id FROM customers_customer c WHERE NOT EXISTS ("
            " SELECT 1 FROM consent_consentstate s WHERE s.customer_id = c.id"
            " AND s.channel = %(channel)s AND s.topic_id = %(topic_id)s"
            " AND s.action = 'withdraw')",
            {"topic_id": topic.pk},
        )
    return (
        "SELECT customer_id FROM consent_consentstate WHERE channel = %(channel)s "
        "AND topic_id = %(topic_id)s AND action = 'grant'",
        {"topic_id": topic.pk},
    )


def due_sql(campaign: Campaign) -> str:
    """When a run's (or the released rest's) messages are due, as SQL over ``a``."""
    if campaign.schedule == Campaign.Schedule.LOCAL_TIME:
        return DUE_LOCAL
    if campaign.throttle_per_minute:
        return DUE_THROTTLED
    return DUE_NOW


@dataclass
class SnapshotChunk:
    """What one chunk wrote. ``last`` is its last customer id; ``size`` counts the
    audience it covered, so a chunk smaller than asked for is the audience's end."""

    queued: list[int] = field(default_factory=list)
    holdout: int = 0
    rest: int = 0
    last: int | None = None
    size: int = 0


def snapshot_write(
    *,
    campaign: Campaign,
    topic: Topic,
    run: int,
    now: dt.datetime,
    actor: str,
    after: int = 0,
    limit: int | None = None,
) -> SnapshotChunk:
    """Write the run's messages for the audience's customers after ``after`` (at most
    ``limit`` of them), with their first status change. Call inside a transaction that
    holds the campaign's row."""
    variants = list(campaign.variants.order_by("key"))
    # Without an automatic winner everyone outside the holdout is in the test.
    test_percent = campaign.test_percent if campaign.pick_winner else 100
    bounds = variant_bounds(
        holdout_percent=campaign.holdout_percent,
        weights=[(variant.key, variant.weight) for variant in variants],
        test_percent=test_percent,
    )
    audience_sql, audience_params = _audience(campaign, topic)
    due = due_sql(campaign)
    params = {
        **audience_params,
        "after": after,
        "limit": limit,
        "channel": campaign.template.channel,
        "topic": campaign.topic_key,
        "campaign": campaign.pk,
        "seed": f"campaign:{campaign.pk}:",
        "holdout": campaign.holdout_percent * BUCKETS // 100,
        "test_end": test_end(holdout_percent=campaign.holdout_percent, test_percent=test_percent),
        "waiting": WAITING_FOR_WINNER,
        "keys": [variant.key for variant in variants],
        "bounds": [bound for _, bound in bounds],
        "version_ids": [variant.template_version_id for variant in variants],
        "first_key": variants[0].key,
        "key_prefix": f"campaign:{campaign.pk}:{run}:",
        "default_zone": settings.JOURNEYLINE_DEFAULT_TIMEZONE,
        "now": now,
        "sweep_at": now + sweep_after(),
        "throttle": campaign.throttle_per_minute or 1,
        "local_time": campaign.local_time,
        "actor": actor,
    }
    sql = _SEND_SQL.format(
        audience=audience_sql,
        due=due,
        buckets=BUCKETS,
        zone=_ZONE if due == DUE_LOCAL else "NULL::text",
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    chunk = SnapshotChunk(last=rows[0][2], size=rows[0][3])
    for message_id, status, _, _ in rows:
        if status == MessageStatus.QUEUED:
            chunk.queued.append(message_id)
        elif status == MessageStatus.DEFERRED:
            chunk.rest += 1
        elif status == MessageStatus.SKIPPED:
            chunk.holdout += 1
    return chunk


def run_counts(*, campaign_id: int, run: int) -> dict[str, int]:
    """The messages a run wrote, by kind: to send (the test, or everyone), held out, and
    the rest waiting for the A/B winner."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE variant NOT IN ('holdout', 'rest')), "
            "count(*) FILTER (WHERE variant = 'holdout'), "
            "count(*) FILTER (WHERE variant = 'rest') "
            "FROM campaigns_message WHERE campaign_id = %s AND idempotency_key LIKE %s",
            [campaign_id, f"campaign:{campaign_id}:{run}:%"],
        )
        queued, holdout, rest = cursor.fetchone()
    return {"queued": queued, "holdout": holdout, "rest": rest}
