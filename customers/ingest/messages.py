"""Validation of Segment messages into normalised ones. Pure: no database, no clock.

The Segment HTTP Tracking API spec is the reference: every message has a ``type`` and
``userId`` or ``anonymousId`` (``alias`` has ``previousId`` and ``userId``), optional
``context``, ``integrations``, ``messageId``, ``timestamp`` and ``sentAt``.
"""

import datetime as dt
import re
import uuid
import zoneinfo
from dataclasses import dataclass, field
from functools import cache

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from customers.ingest.extensions import validators

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
MAX_ID_LENGTH = 255
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_PUNCTUATION = re.compile(r"[\s\-().]")
_email_validator = EmailValidator()


@dataclass(frozen=True, slots=True)
class FieldError:
    index: int | None
    field: str
    reason: str

    def as_dict(self) -> dict:
        return {"index": self.index, "field": self.field, "reason": self.reason}


@dataclass(slots=True)
class Message:
    """A valid message, normalised. ``timestamp`` is already clock-skew corrected."""

    type: str
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    name: str
    properties: dict
    context: dict
    timestamp: dt.datetime
    traits: dict = field(default_factory=dict)
    previous_id: str | None = None
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    locale: str | None = None
    device: dict | None = None


class InvalidMessage(Exception):
    def __init__(self, errors: list[FieldError]):
        super().__init__(errors)
        self.errors = errors


def parse_batch(payload: object, *, received_at: dt.datetime) -> list[Message]:
    """Validate a ``/v1/batch`` body. Raises InvalidMessage listing every fault."""
    if not isinstance(payload, dict):
        raise InvalidMessage([FieldError(None, "", "the body must be a JSON object")])
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise InvalidMessage([FieldError(None, "batch", "must be a list of messages")])
    if not batch:
        raise InvalidMessage([FieldError(None, "batch", "must not be empty")])
    shared_context = payload.get("context") or {}
    if not isinstance(shared_context, dict):
        raise InvalidMessage([FieldError(None, "context", "must be an object")])
    batch_sent_at = payload.get("sentAt")
    messages: list[Message] = []
    errors: list[FieldError] = []
    for index, raw in enumerate(batch):
        try:
            messages.append(
                parse_message(
                    raw,
                    index=index,
                    received_at=received_at,
                    shared_context=shared_context,
                    batch_sent_at=batch_sent_at,
                )
            )
        except InvalidMessage as invalid:
            errors.extend(invalid.errors)
    if errors:
        raise InvalidMessage(errors)
    return messages


def parse_message(
    raw: object,
    *,
    index: int | None,
    received_at: dt.datetime,
    expected_type: str | None = None,
    shared_context: dict | None = None,
    batch_sent_at: object = None,
) -> Message:
    errors: list[FieldError] = []

    def fail(field_name: str, reason: str) -> None:
        errors.append(FieldError(index, field_name, reason))

    if not isinstance(raw, dict):
        raise InvalidMessage([FieldError(index, "", "a message must be a JSON object")])

    message_type = expected_type or raw.get("type")
    if message_type not in MESSAGE_TYPES:
        fail("type", f"must be one of {', '.join(MESSAGE_TYPES)}")
        raise InvalidMessage(errors)

    user_id = _identifier(raw, "userId", fail)
    anonymous_id = _identifier(raw, "anonymousId", fail)
    previous_id = None
    if message_type == "alias":
        previous_id = _identifier(raw, "previousId", fail)
        if previous_id is None and not _has_error(errors, "previousId"):
            fail("previousId", "is required for alias")
        if user_id is None and not _has_error(errors, "userId"):
            fail("userId", "is required for alias")
    elif user_id is None and anonymous_id is None and not errors:
        fail("userId", "userId or anonymousId is required")

    context = _object(raw, "context", fail)
    if shared_context:
        context = {**shared_context, **context}
    properties = _object(raw, "properties", fail)
    traits = _object(raw, "traits", fail)
    _object(raw, "integrations", fail)

    name = ""
    if message_type == "track":
        event = raw.get("event")
        if not isinstance(event, str) or not event.strip():
            fail("event", "is required for track and must be a non-empty string")
        elif len(event) > MAX_ID_LENGTH:
            fail("event", f"must be at most {MAX_ID_LENGTH} characters")
        else:
            name = event.strip()
    elif message_type in ("page", "screen"):
        page_name = raw.get("name")
        if page_name is not None and not isinstance(page_name, str):
            fail("name", "must be a string")
        elif page_name:
            name = page_name[:MAX_ID_LENGTH]
        category = raw.get("category")
        if isinstance(category, str) and category:
            properties = {"category": category, **properties}
    elif message_type == "group":
        group_id = _identifier(raw, "groupId", fail)
        if group_id is None and not _has_error(errors, "groupId"):
            fail("groupId", "is required for group")
        name = group_id or ""
    elif message_type == "identify":
        context_traits = context.get("traits")
        if isinstance(context_traits, dict) and not traits:
            traits = context_traits

    message_id = raw.get("messageId")
    if message_id is None:
        message_id = str(uuid.uuid4())
    elif not isinstance(message_id, str) or not message_id or len(message_id) > MAX_ID_LENGTH:
        fail("messageId", f"must be a non-empty string of at most {MAX_ID_LENGTH} characters")

    timestamp = _timestamp(raw, "timestamp", fail) or _timestamp(raw, "originalTimestamp", fail)
    sent_at = _timestamp(raw, "sentAt", fail)
    if sent_at is None and batch_sent_at is not None:
        sent_at = _timestamp({"sentAt": batch_sent_at}, "sentAt", fail)

    email = phone = zone = locale = None
    if message_type == "identify":
        email = _email(traits, fail)
        phone = _phone(traits, fail)
    zone = _zone(context, fail)
    locale_value = context.get("locale")
    if isinstance(locale_value, str) and locale_value:
        locale = locale_value[:35]
    device = _device(context)
    for validator in validators():
        for field_name, reason in validator(message_type, raw):
            fail(field_name, reason)

    if errors:
        raise InvalidMessage(errors)

    if timestamp is None:
        timestamp = received_at
    elif sent_at is not None:
        # Segment's correction: the client's clock may be off, but the gap between when
        # the event happened and when it was sent is right.
        timestamp = received_at - (sent_at - timestamp)

    return Message(
        type=message_type,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        name=name,
        properties=traits if message_type in ("identify", "group") else properties,
        context=context,
        timestamp=timestamp,
        traits=traits if message_type == "identify" else {},
        previous_id=previous_id,
        email=email,
        phone=phone,
        timezone=zone,
        locale=locale,
        device=device,
    )


def _has_error(errors: list[FieldError], field_name: str) -> bool:
    return any(error.field == field_name for error in errors)


def _identifier(raw: dict, key: str, fail) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        fail(key, "must be a string")
        return None
    value = str(value)
    if len(value) > MAX_ID_LENGTH:
        fail(key, f"must be at most {MAX_ID_LENGTH} characters")
        return None
    return value


def _object(raw: dict, key: str, fail) -> dict:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail(key, "must be an object")
        return {}
    return value


def _timestamp(raw: dict, key: str, fail) -> dt.datetime | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        fail(key, "must be an ISO-8601 date-time string")
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(key, f"is not an ISO-8601 date-time: {value[:40]!r}")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def normalise_email(value: str) -> str:
    """Lower-case, trimmed. Raises ValidationError when it is not an address."""
    email = value.strip().lower()
    _email_validator(email)
    return email


def normalise_phone(value: str) -> str:
    """E.164: ``+`` and 7 to 15 digits, spaces, dashes, dots and brackets dropped."""
    phone = _PHONE_PUNCTUATION.sub("", value)
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    if not E164.match(phone):
        raise ValidationError("must be an E.164 number such as +31612345678")
    return phone


@cache
def valid_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _email(traits: dict, fail) -> str | None:
    value = traits.get("email")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        fail("traits.email", "must be a string")
        return None
    try:
        return normalise_email(value)
    except ValidationError:
        fail("traits.email", "is not a valid email address")
        return None


def _phone(traits: dict, fail) -> str | None:
    value = traits.get("phone")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        fail("traits.phone", "must be a string")
        return None
    try:
        return normalise_phone(value)
    except ValidationError as error:
        fail("traits.phone", error.messages[0])
        return None


def _zone(context: dict, fail) -> str | None:
    value = context.get("timezone")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in valid_time_zones():
        fail("context.timezone", "must be an IANA time zone such as Europe/Amsterdam")
        return None
    return value


_DEVICE_PLATFORMS = {"ios": "ios", "android": "android", "web": "web", "browser": "web"}


def _device(context: dict) -> dict | None:
    device = context.get("device")
    if not isinstance(device, dict):
        return None
    token = device.get("token")
    platform = _DEVICE_PLATFORMS.get(str(device.get("type", "")).lower())
    if not isinstance(token, str) or not token or platform is None or len(token) > 4096:
        return None
    return {"token": token, "platform": platform, "app_id": str(device.get("id", ""))[:255]}
