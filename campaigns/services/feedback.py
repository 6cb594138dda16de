"""Delivery feedback: provider events update the message, come back as customer events,
and hard bounces and complaints go to consent (suppression).

Every provider event is kept by (provider, event id): a webhook delivered twice is a
no-op the second time. Providers that give no event id get one derived from what the
event says, which is the same on a redelivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Message, MessageStatus
from campaigns.services.outbox import message_transition
from consent.channels import Channel
from consent.services.feedback import consent_feedback_record
from customers.services.events import CustomerEvent, events_record

logger = logging.getLogger(__name__)

DELIVERED, OPENED, CLICKED = "delivered", "opened", "clicked"
BOUNCED, COMPLAINED, FAILED = "bounced", "complained", "failed"

_STATUS = {
    DELIVERED: MessageStatus.DELIVERED,
    OPENED: MessageStatus.OPENED,
    CLICKED: MessageStatus.CLICKED,
    BOUNCED: MessageStatus.BOUNCED,
    COMPLAINED: MessageStatus.COMPLAINED,
    FAILED: MessageStatus.FAILED,
}
# The customer events journeys can branch on.
EVENT_NAMES = {
    (Channel.EMAIL, DELIVERED): "Email Delivered",
    (Channel.EMAIL, OPENED): "Email Opened",
    (Channel.EMAIL, CLICKED): "Email Link Clicked",
    (Channel.EMAIL, BOUNCED): "Email Bounced",
    (Channel.EMAIL, COMPLAINED): "Email Marked as Spam",
    (Channel.EMAIL, FAILED): "Email Failed",
    (Channel.SMS, DELIVERED): "SMS Delivered",
    (Channel.SMS, BOUNCED): "SMS Bounced",
    (Channel.SMS, FAILED): "SMS Failed",
    (Channel.PUSH, DELIVERED): "Push Delivered",
    (Channel.PUSH, OPENED): "Push Opened",
}


@dataclass(frozen=True)
class FeedbackResult:
    duplicate: bool = False
    message_id: int | None = None
    status_changed: bool = False
    event_ids: tuple[int, ...] = ()
    suppressed: bool = False


def derived_event_id(*parts: Any) -> str:
    return hashlib.sha256("|".join(str(part) for part in parts).encode()).hexdigest()[:48]


def _remember(provider: str, event_id: str, message_id: int | None, event_type: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO campaigns_providerevent (provider, event_id, message_id, event_type, "
            "received_at) VALUES (%s, %s, %s, %s, now()) "
            "ON CONFLICT (provider, event_id) DO NOTHING RETURNING id",
            [provider, event_id, message_id, event_type],
        )
        return cursor.fetchone() is not None


def _find(*, message_ref: str, provider_message_id: str) -> Message | None:
    if message_ref and str(message_ref).isdigit():
        found = Message.objects.filter(pk=int(message_ref)).first()
        if found is not None:
            return found
    if provider_message_id:
        return Message.objects.filter(provider_id=provider_message_id).order_by("-pk").first()
    return None


@transaction.atomic
def message_feedback_record(
    *,
    provider: str,
    event_id: str,
    event_type: str,
    occurred_at: dt.datetime | None = None,
    message_ref: str = "",
    provider_message_id: str = "",
    recipient: str = "",
    detail: str = "",
    url: str = "",
    hard_bounce: bool = True,
) -> FeedbackResult:
    """Apply one provider event (``event_type``: delivered, opened, clicked, bounced,
    complained, failed; others are kept for deduplication only).

    ``message_ref`` is our message id when the provider echoes our metadata; otherwise
    the message is found by the provider's id.
    """
    message = _find(message_ref=message_ref, provider_message_id=provider_message_id)
    if not _remember(provider, event_id[:255], message.pk if message else None, event_type):
        return FeedbackResult(duplicate=True, message_id=message.pk if message else None)
    if message is None:
        logger.info(
            "feedback for an unknown message",
            extra={"provider": provider, "event_type": event_type},
        )
        return FeedbackResult()
    occurred_at = occurred_at or timezone.now()
    changed = False
    to_status = _STATUS.get(event_type)
    if to_status is not None:
        changed = message_transition(
            message_id=message.pk,
            to_status=to_status,
            actor=f"provider {provider}",
            reason=detail[:500],
            data={"event_id": event_id, **({"url": url} if url else {})},
        )
    new_events: list[int] = []
    name = EVENT_NAMES.get((message.channel, event_type))
    if name:
        properties = {
            "message_id": message.pk,
            "channel": message.channel,
            "topic": message.topic_key,
            "template_version_id": message.template_version_id,
            "campaign_id": message.campaign_id,
            "variant": message.variant,
            "journey_id": message.journey_id,
            "enrolment_id": message.enrolment_id,
            "step_id": message.step_id,
        }
        if url:
            properties["url"] = url
        if detail and event_type in (BOUNCED, FAILED):
            properties["reason"] = detail[:500]
        new_events = events_record(
            events=[
                CustomerEvent(
                    customer_id=message.customer_id,
                    name=name,
                    message_id=f"jl-feedback:{provider}:{event_id}"[:255],
                    timestamp=occurred_at,
                    properties=properties,
                )
            ]
        )
    suppressed = False
    if (event_type == BOUNCED and hard_bounce) or event_type == COMPLAINED:
        address = recipient or _address_of(message)
        if address and message.channel != Channel.WEBHOOK:
            consent_feedback_record(
                customer_id=message.customer_id,
                channel=message.channel,
                address=address,
                kind="hard_bounce" if event_type == BOUNCED else "complaint",
                note=f"{provider} feedback on message {message.pk}",
            )
            suppressed = True
    return FeedbackResult(
        message_id=message.pk,
        status_changed=changed,
        event_ids=tuple(new_events),
        suppressed=suppressed,
    )


def _address_of(message: Message) -> str:
    if message.channel == Channel.EMAIL:
        return message.customer.email
    if message.channel == Channel.SMS:
        return message.customer.phone
    return ""


# django-anymail ------------------------------------------------------------------------

_ANYMAIL_TYPES = {
    "delivered": DELIVERED,
    "opened": OPENED,
    "clicked": CLICKED,
    "bounced": BOUNCED,
    "complained": COMPLAINED,
    "rejected": FAILED,
    "failed": FAILED,
}
# Bounce types some providers mark as temporary even under Anymail's "bounced".
_SOFT_BOUNCES = {"SoftBounce", "Transient", "DnsError", "soft", "Temporary"}


def anymail_event_record(*, event: Any, esp_name: str) -> FeedbackResult:
    """An ``anymail.signals.AnymailTrackingEvent`` from any provider's tracking webhook."""
    event_type = _ANYMAIL_TYPES.get(event.event_type, event.event_type or "unknown")
    metadata = event.metadata or {}
    timestamp = event.timestamp or timezone.now()
    event_id = event.event_id or derived_event_id(
        event.message_id, event.event_type, timestamp.isoformat(), event.click_url or ""
    )
    esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
    bounce_type = str(esp_event.get("Type") or esp_event.get("bounceType") or "")
    return message_feedback_record(
        provider=esp_name.lower(),
        event_id=str(event_id),
        event_type=event_type,
        occurred_at=timestamp,
        message_ref=str(metadata.get("journeyline_message_id") or ""),
        provider_message_id=str(event.message_id or ""),
        recipient=event.recipient or "",
        detail=event.description or event.mta_response or event.reject_reason or "",
        url=event.click_url or "",
        hard_bounce=bounce_type not in _SOFT_BOUNCES,
    )


# Twilio status callbacks ---------------------------------------------------------------

# Error codes that say the number will never receive SMS (unknown, landline, invalid).
TWILIO_HARD_ERRORS = {"21211", "21614", "30005", "30006"}


def twilio_status_record(*, params: dict[str, str]) -> FeedbackResult:
    """One Twilio status callback (``MessageSid``, ``MessageStatus``, ``ErrorCode``)."""
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
    error_code = params.get("ErrorCode") or ""
    if status == "delivered":
        event_type = DELIVERED
    elif status in ("undelivered", "failed"):
        event_type = BOUNCED if error_code in TWILIO_HARD_ERRORS else FAILED
    else:
        event_type = status or "unknown"  # queued, sent, …: remembered, nothing changes
    return message_feedback_record(
        provider="twilio",
        event_id=f"{sid}:{status}",
        event_type=event_type,
        provider_message_id=sid,
        recipient=params.get("To", ""),
        detail=f"Twilio error {error_code}" if error_code else "",
    )
