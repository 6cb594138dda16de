"""The log of messages actually sent, which the frequency caps count."""

import datetime as dt

from django.utils import timezone

from consent.models import Channel, SendLog
from consent.services.topics import topic_get


def consent_record_send(
    *, customer_id: int, channel: str, topic_key: str, sent_at: dt.datetime | None = None
) -> SendLog:
    """Called by the sending app once the provider accepted a message."""
    if channel not in Channel.values:
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
