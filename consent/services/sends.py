"""The log of messages actually sent, which the frequency caps count."""

import datetime as dt
from collections.abc import Mapping

import orjson
from django.conf import settings
from django.utils import timezone

from consent.channels import CONSENT_CHANNELS
from consent.models import SendLog
from consent.services.topics import topic_get
from customers.services.prepared import prepared_cursor


def consent_record_send(
    *, customer_id: int, channel: str, topic_key: str, sent_at: dt.datetime | None = None
) -> SendLog:
    """Called by the sending app once the provider accepted a message."""
    if channel not in CONSENT_CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    topic = topic_get(key=topic_key)
    is_transactional = topic is not None and topic.is_transactional
    return SendLog.objects.create(
        customer_id=customer_id,
        channel=channel,
        topic_key=topic_key,
        is_transactional=is_transactional,
        sent_at=sent_at or timezone.now(),
    )


def consent_record_sends(
    *,
    sends: list[tuple[int, str, str]],
    sent_at: dt.datetime | None = None,
    transactional_topics: Mapping[str, bool] | None = None,
) -> int:
    """The batch form for dispatch: (customer id, channel, topic key) per message sent,
    written in one statement. ``transactional_topics`` (topic key → is transactional)
    spares a topic lookup per call where the caller knows them already."""
    if not sends:
        return 0
    sent_at = sent_at or timezone.now()
    transactional: dict[str, bool] = dict(transactional_topics or {})
    rows = []
    for customer_id, channel, topic_key in sends:
        if channel not in CONSENT_CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        if topic_key not in transactional:
            topic = topic_get(key=topic_key)
            transactional[topic_key] = topic is not None and topic.is_transactional
        rows.append(
            {"c": customer_id, "ch": channel, "t": topic_key, "tr": transactional[topic_key]}
        )
    # One JSON document: a model instance per row cost more than the insert (dispatch
    # records every email of a broadcast here).
    with prepared_cursor(enabled=settings.DISPATCH_PREPARED_STATEMENTS) as cursor:
        cursor.execute(
            """
            INSERT INTO consent_sendlog
                (customer_id, channel, topic_key, is_transactional, sent_at)
            SELECT r.c, r.ch, r.t, r.tr, %s
            FROM jsonb_to_recordset(%s::jsonb) AS r(c bigint, ch text, t text, tr boolean)
            """,
            [sent_at, orjson.dumps(rows).decode()],
        )
    return len(rows)
