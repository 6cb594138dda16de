"""Consent carried by Segment ``identify`` calls.

The format (under the message's ``context``, so it never lands in the profile's traits)::

    {"type": "identify", "userId": "u-42",
     "context": {
        "ip": "203.0.113.5", "userAgent": "...", "page": {"url": "https://shop/signup"},
        "consent": {
            "wordingVersion": "signup-v2",
            "preferences": {"email": {"newsletter": true, "deals": false},
                            "sms": {"*": false}}}}}

``preferences`` maps a channel to topic keys (``"*"`` for every topic of the channel) and
``true`` (grant) or ``false`` (withdraw). Only what differs from the current state is
recorded, with source ``identify``, the message's time, and the IP, user agent, page and
wording version as evidence. Granting a double opt-in topic records ``pending`` and sends
the confirmation, as from any other source. Segment's own ``consent.categoryPreferences``
(cookie categories) is not consent to messages and is ignored.

The ingest calls ``identify_consent_parse`` while validating a batch (so a bad value is a
400 before anything is written) and ``consent_from_identify`` inside its transaction.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from consent.channels import CONSENT_CHANNELS
from consent.models import ConsentEvent, Source
from consent.services.ledger import ConsentError
from consent.services.preferences import consent_set

_PATH = "context.consent"


def identify_consent_parse(message: dict) -> list[tuple[str, str | None, bool]]:
    """The (channel, topic or None, granted) changes an identify message carries; raises
    ``ConsentError`` naming the field at fault. Topic keys are checked when recorded."""
    context = message.get("context") or {}
    consent = context.get("consent") if isinstance(context, dict) else None
    if consent is None:
        return []
    if not isinstance(consent, dict):
        raise ConsentError(_PATH, "must be an object")
    preferences = consent.get("preferences")
    if preferences is None:
        return []
    if not isinstance(preferences, dict):
        raise ConsentError(f"{_PATH}.preferences", "must be an object of channels")
    changes = []
    for channel, topics in preferences.items():
        field = f"{_PATH}.preferences.{channel}"
        if channel not in CONSENT_CHANNELS:
            raise ConsentError(field, f"unknown channel; use {', '.join(CONSENT_CHANNELS)}")
        if not isinstance(topics, dict):
            raise ConsentError(field, "must be an object of topic keys to true or false")
        for topic_key, granted in topics.items():
            if not isinstance(granted, bool):
                raise ConsentError(f"{field}.{topic_key}", "must be true or false")
            changes.append((channel, None if topic_key == "*" else topic_key, granted))
    return changes


@transaction.atomic
def consent_from_identify(
    *, customer_id: int, message: dict, timestamp: dt.datetime | None = None
) -> list[ConsentEvent]:
    """Record the consent an identify message carries (see the module docstring)."""
    changes = identify_consent_parse(message)
    if not changes:
        return []
    context = message.get("context") or {}
    consent = context.get("consent") or {}
    page = context.get("page") if isinstance(context.get("page"), dict) else {}
    evidence = {
        "ip": context.get("ip"),
        "user_agent": context.get("userAgent"),
        "page": page.get("url"),
        "wording_version": consent.get("wordingVersion"),
        "note": f"identify {message.get('messageId', '')}".strip()[:200],
    }
    evidence = {key: str(value)[:2000] for key, value in evidence.items() if value}
    try:
        return consent_set(
            customer_id=customer_id,
            changes=changes,
            evidence=evidence,
            source=Source.IDENTIFY,
            occurred_at=timestamp,
        )
    except ConsentError as error:
        index, _, field = error.field.partition(".")
        channel, topic_key, _granted = changes[int(index)]
        raise ConsentError(
            f"{_PATH}.preferences.{channel}.{topic_key or '*'}", f"{field}: {error.message}"
        ) from None
