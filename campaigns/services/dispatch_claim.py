"""Claiming queued messages for dispatch: the rate limit, then queued → sending.

The claim is one committed statement under ``FOR UPDATE SKIP LOCKED``, so a task
delivered twice or two workers holding the same ids send each message once: the loser
finds nothing to claim. It returns what sending needs, message and customer, as plain
rows: a broadcast claims hundreds at a time, and model instances (seven timestamps
parsed, two objects built per message) cost more than the claim itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction

from campaigns.models import MessageStatus
from campaigns.services.outbox import status_changes_record
from campaigns.services.rate_limit import send_tokens_take
from customers.services.prepared import prepared_cursor

ACTOR = "dispatch"
S = MessageStatus


def dispatch_cursor():
    """A cursor for dispatch's per-batch statements: prepared once per connection and
    bound on the server (their JSON documents are not quoted in Python), unless
    DISPATCH_PREPARED_STATEMENTS is off (a pooler that cannot keep them)."""
    return prepared_cursor(enabled=settings.DISPATCH_PREPARED_STATEMENTS)


@dataclass(slots=True)
class ClaimedMessage:
    """A message in ``sending`` and the customer it goes to (the template context's
    fields and traits, see ``campaigns.rendering.context.CUSTOMER_FIELDS``)."""

    pk: int
    customer_id: int
    channel: str
    topic_key: str
    template_version_id: int
    context: dict[str, Any]
    attempts: int  # counting this one
    customer: dict[str, Any]


def rate_limit(ids: list[int], now: dt.datetime) -> tuple[list[int], int]:
    """The ids the channel's token bucket lets through now, and how many wait: they stay
    queued with ``next_attempt_at`` set to when tokens will be there (the tick sends them)."""
    if not settings.DISPATCH_RATE_LIMITS or not ids:
        return ids, 0
    waiting = 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT channel, array_agg(id ORDER BY id) FROM campaigns_message "
            "WHERE id = ANY(%s::bigint[]) AND status = 'queued' GROUP BY channel",
            [ids],
        )
        groups = cursor.fetchall()
        allowed: list[int] = []
        for channel, channel_ids in groups:
            granted, wait = send_tokens_take(channel=channel, wanted=len(channel_ids))
            allowed += channel_ids[:granted]
            rest = channel_ids[granted:]
            if rest:
                waiting += len(rest)
                cursor.execute(
                    "UPDATE campaigns_message SET next_attempt_at = %s "
                    "WHERE id = ANY(%s::bigint[]) AND status = 'queued'",
                    [now + dt.timedelta(seconds=max(wait, 0.001)), rest],
                )
    return allowed, waiting


_CLAIM_SQL = """
WITH claimable AS (
    SELECT id FROM campaigns_message
    WHERE id = ANY(%s::bigint[]) AND status = 'queued'
    ORDER BY id FOR UPDATE SKIP LOCKED
)
UPDATE campaigns_message m
SET status = 'sending', attempts = m.attempts + 1, updated_at = %s
FROM claimable, customers_customer c
WHERE m.id = claimable.id AND c.id = m.customer_id
RETURNING m.id, m.customer_id, m.channel, m.topic_key, m.template_version_id,
    m.context::text, m.attempts, c.external_id, c.email, c.phone, c.timezone, c.locale,
    c.first_seen, c.last_seen, c.traits::text
"""


def messages_claim(ids: list[int], now: dt.datetime) -> list[ClaimedMessage]:
    """Claim the queued messages among ``ids`` (in id order) and record the change."""
    if not ids:
        return []
    with transaction.atomic(), dispatch_cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [ids, now])
        rows = sorted(cursor.fetchall())
        status_changes_record(
            changes=[(row[0], S.QUEUED, S.SENDING, "", {}) for row in rows], actor=ACTOR
        )
    loads = orjson.loads
    return [
        ClaimedMessage(
            pk=pk,
            customer_id=customer_id,
            channel=channel,
            topic_key=topic_key,
            template_version_id=version_id,
            context=loads(context) if context else {},
            attempts=attempts,
            customer={
                "id": customer_id,
                "external_id": external_id,
                "email": email,
                "phone": phone,
                "timezone": zone,
                "locale": locale,
                "first_seen": first_seen,
                "last_seen": last_seen,
                "traits": loads(traits) if traits else {},
            },
        )
        for (
            pk,
            customer_id,
            channel,
            topic_key,
            version_id,
            context,
            attempts,
            external_id,
            email,
            phone,
            zone,
            locale,
            first_seen,
            last_seen,
            traits,
        ) in rows
    ]
