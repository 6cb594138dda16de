"""The outbox: every send is a message row first, and changes status only through here.

``message_enqueue`` is the one way in (journeys, broadcasts, the API): a repeated
idempotency key returns the row already stored, and dispatch is enqueued on commit.
``message_transition`` is the one way a status changes: a compare-and-swap on the status
the caller saw, plus an append-only ``MessageStatusChange`` row.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from campaigns.models import (
    Channel,
    Message,
    MessageOrigin,
    MessageStatus,
    MessageStatusChange,
    TemplateVersion,
)
from customers.models import Customer
from customers.services.prepared import prepared_cursor

logger = logging.getLogger(__name__)

S = MessageStatus
# Where each status may go. Delivery feedback only moves forward (an "opened" arriving
# after a "clicked" does not undo the click); bounces and complaints may follow any send.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    # queued → deferred: a paused broadcast.
    S.QUEUED: frozenset({S.SENDING, S.DEFERRED, S.SKIPPED, S.FAILED}),
    S.DEFERRED: frozenset({S.QUEUED, S.SKIPPED}),
    S.SENDING: frozenset({S.SENT, S.DEFERRED, S.SKIPPED, S.FAILED}),
    S.SENT: frozenset({S.DELIVERED, S.OPENED, S.CLICKED, S.BOUNCED, S.COMPLAINED, S.FAILED}),
    S.DELIVERED: frozenset({S.OPENED, S.CLICKED, S.BOUNCED, S.COMPLAINED}),
    S.OPENED: frozenset({S.CLICKED, S.COMPLAINED}),
    S.CLICKED: frozenset({S.COMPLAINED}),
    S.BOUNCED: frozenset({S.COMPLAINED}),
    S.COMPLAINED: frozenset(),
    S.FAILED: frozenset(),
    S.SKIPPED: frozenset(),
}


class MessageError(ValueError):
    """Bad input to an outbox service; ``field`` names what is at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def transition_allowed(*, from_status: str, to_status: str) -> bool:
    return to_status in ALLOWED_TRANSITIONS.get(from_status, frozenset())


def sweep_after() -> dt.timedelta:
    return dt.timedelta(seconds=settings.DISPATCH_SWEEP_AFTER_SECONDS)


# Enqueueing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """Where a message comes from: a journey step visit, a campaign variant, or direct."""

    kind: str = MessageOrigin.API
    journey_id: int | None = None
    enrolment_id: int | None = None
    step_id: str = ""
    visit: int | None = None
    campaign_id: int | None = None
    variant: str = ""

    def fields(self) -> dict[str, Any]:
        return {
            "origin": self.kind,
            "journey_id": self.journey_id,
            "enrolment_id": self.enrolment_id,
            "step_id": self.step_id,
            "visit": self.visit,
            "campaign_id": self.campaign_id,
            "variant": self.variant,
        }


def _published_version(*, template_version_id: int, channel: str) -> TemplateVersion:
    version = (
        TemplateVersion.objects.select_related("template").filter(pk=template_version_id).first()
    )
    if version is None:
        raise MessageError("template_version_id", "no such template version")
    if not version.is_published:
        raise MessageError("template_version_id", "only published versions can be sent")
    if version.template.channel != channel:
        raise MessageError(
            "channel",
            f"the template is a {version.template.channel} template, not {channel}",
        )
    return version


def _validate(*, channel: str, idempotency_key: str, topic_key: str) -> None:
    if channel not in Channel.values:
        raise MessageError("channel", f"must be one of {', '.join(Channel.values)}")
    if not idempotency_key or len(idempotency_key) > 255:
        raise MessageError("idempotency_key", "must be 1 to 255 characters")
    if not topic_key or len(topic_key) > 64:
        raise MessageError("topic_key", "must be 1 to 64 characters")


def message_enqueue(
    *,
    customer_id: int,
    channel: str,
    template_version_id: int,
    topic_key: str,
    idempotency_key: str,
    origin: Origin | None = None,
    context: Mapping[str, Any] | None = None,
    actor: str = "outbox",
    now: dt.datetime | None = None,
) -> Message:
    """Store one message to send and enqueue its dispatch on commit.

    A repeated ``idempotency_key`` returns the row already stored and enqueues nothing.
    ``context`` is extra render context (``{"event": {...}}``), plain JSON.
    """
    _validate(channel=channel, idempotency_key=idempotency_key, topic_key=topic_key)
    existing = Message.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    _published_version(template_version_id=template_version_id, channel=channel)
    if not Customer.objects.filter(pk=customer_id).exists():
        raise MessageError("customer_id", "no such customer")
    now = now or timezone.now()
    try:
        with transaction.atomic():
            message = Message.objects.create(
                customer_id=customer_id,
                channel=channel,
                template_version_id=template_version_id,
                topic_key=topic_key,
                idempotency_key=idempotency_key,
                context=dict(context or {}),
                next_attempt_at=now + sweep_after(),
                **(origin or Origin()).fields(),
            )
            MessageStatusChange.objects.create(
                message=message, from_status="", to_status=S.QUEUED, actor=actor
            )
    except IntegrityError:
        # The same key stored by a concurrent call a moment ago.
        return Message.objects.get(idempotency_key=idempotency_key)
    messages_dispatch_on_commit(message_ids=[message.pk])
    return message


@dataclass(frozen=True)
class NewMessage:
    customer_id: int
    channel: str
    template_version_id: int
    topic_key: str
    idempotency_key: str
    origin: Origin = Origin()
    context: Mapping[str, Any] | None = None


def messages_enqueue_many(
    *,
    messages: Sequence[NewMessage],
    actor: str = "outbox",
    now: dt.datetime | None = None,
    dispatch: bool = True,
) -> list[int]:
    """Store many messages in one statement; keys already stored are skipped.

    Returns the ids of the rows created, whose dispatch is enqueued on commit (unless
    ``dispatch`` is False: the caller then calls ``messages_dispatch_keys`` itself).
    """
    if not messages:
        return []
    versions: dict[int, TemplateVersion] = {}
    for item in messages:
        _validate(
            channel=item.channel, idempotency_key=item.idempotency_key, topic_key=item.topic_key
        )
        if item.template_version_id not in versions:
            versions[item.template_version_id] = _published_version(
                template_version_id=item.template_version_id, channel=item.channel
            )
        elif versions[item.template_version_id].template.channel != item.channel:
            raise MessageError("channel", "does not match the template's channel")
    now = now or timezone.now()
    with transaction.atomic():
        created = Message.objects.bulk_create(
            [
                Message(
                    customer_id=item.customer_id,
                    channel=item.channel,
                    template_version_id=item.template_version_id,
                    topic_key=item.topic_key,
                    idempotency_key=item.idempotency_key,
                    context=dict(item.context or {}),
                    next_attempt_at=now + sweep_after(),
                    **item.origin.fields(),
                )
                for item in messages
            ],
            ignore_conflicts=True,
        )
        # ignore_conflicts leaves primary keys unset: read back what this call inserted.
        keys = [item.idempotency_key for item in created]
        ids = list(
            Message.objects.filter(idempotency_key__in=keys, status=S.QUEUED, attempts=0)
            .exclude(status_changes__isnull=False)
            .values_list("pk", flat=True)
        )
        status_changes_record(
            changes=[(message_id, "", S.QUEUED, "", {}) for message_id in ids], actor=actor
        )
    if dispatch:
        messages_dispatch_on_commit(message_ids=ids)
    return ids


def messages_dispatch_keys(
    *, idempotency_keys: Sequence[str], batch_size: int | None = None
) -> int:
    """Hand the queued messages with these keys to dispatch tasks (on commit, or at once
    outside a transaction), ``batch_size`` per task; return how many."""
    ids = list(
        Message.objects.filter(
            idempotency_key__in=list(idempotency_keys), status=S.QUEUED
        ).values_list("pk", flat=True)
    )
    messages_dispatch_on_commit(message_ids=ids, batch_size=batch_size)
    return len(ids)


def messages_dispatch_on_commit(
    *, message_ids: Iterable[int], batch_size: int | None = None
) -> None:
    """After the current transaction commits, hand the ids to dispatch tasks in batches
    of ``batch_size`` (``DISPATCH_BATCH_SIZE`` unless given).

    A failed publish is only logged: the rows are queued in PostgreSQL and the beat tick
    enqueues them again once ``next_attempt_at`` passes.
    """
    ids = list(message_ids)
    if ids:
        transaction.on_commit(lambda: _publish(ids, batch_size))


def _publish(message_ids: list[int], batch_size: int | None = None) -> None:
    from campaigns.tasks import messages_dispatch_task

    size = batch_size or settings.DISPATCH_BATCH_SIZE
    for start in range(0, len(message_ids), size):
        chunk = message_ids[start : start + size]
        task_publish(
            messages_dispatch_task,
            [chunk],
            failure="could not enqueue message dispatch; the tick will retry",
            extra={"message_count": len(chunk), "first_message_id": chunk[0]},
        )


def task_publish(task, args: list, *, failure: str, extra: dict) -> None:
    """Publish ``task`` once, without Celery's retries; a broker that cannot take it is
    logged, not raised: the work is in PostgreSQL and a beat tick picks it up (eager
    tasks, in tests, raise as they are)."""
    try:
        task.apply_async(args=args, retry=False)
    except Exception:
        if getattr(task.app.conf, "task_always_eager", False):
            raise
        logger.warning(failure, exc_info=True, extra=extra)


# Transitions ---------------------------------------------------------------------------


def status_changes_record(
    *, changes: Sequence[tuple[int, str, str, str, dict]], actor: str
) -> None:
    """Append (message id, from, to, reason, data) rows in one statement.

    Raw SQL: building a model instance per row costs more than the insert itself, and
    dispatch writes two rows per message sent.
    """
    if not changes:
        return
    # Server-side binding (see dispatch_claim.dispatch_cursor): dispatch writes a document
    # of hundreds of changes per batch.
    with prepared_cursor(enabled=settings.DISPATCH_PREPARED_STATEMENTS) as cursor:
        cursor.execute(
            """
            INSERT INTO campaigns_messagestatuschange
                (message_id, from_status, to_status, actor, reason, data, created_at)
            SELECT c.message_id, c.from_status, c.to_status, %s, c.reason,
                   COALESCE(c.data, '{}'::jsonb), now()
            FROM jsonb_to_recordset(%s::jsonb)
                AS c(message_id bigint, from_status text, to_status text, reason text, data jsonb)
            """,
            [
                actor,
                # One JSON document: quoting five arrays in Python cost more than the insert.
                orjson.dumps(
                    [
                        {
                            "message_id": message_id,
                            "from_status": from_status,
                            "to_status": to_status,
                            "reason": reason,
                            "data": data or {},
                        }
                        for message_id, from_status, to_status, reason, data in changes
                    ]
                ).decode(),
            ],
        )


def message_transition(
    *,
    message_id: int,
    to_status: str,
    actor: str,
    reason: str = "",
    data: Mapping[str, Any] | None = None,
    from_statuses: Iterable[str] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> bool:
    """Move one message to ``to_status`` if that is allowed from where it is.

    A compare-and-swap on the status just read: a concurrent change makes this re-read
    once and re-check, never overwrite. Returns False (and writes nothing) when the
    message is missing or the move is not allowed; ``from_statuses`` narrows further.
    """
    wanted = set(from_statuses) if from_statuses is not None else None
    for _ in range(3):
        current = Message.objects.filter(pk=message_id).values_list("status", flat=True).first()
        if current is None:
            return False
        if not transition_allowed(from_status=current, to_status=to_status):
            return False
        if wanted is not None and current not in wanted:
            return False
        with transaction.atomic():
            updated = Message.objects.filter(pk=message_id, status=current).update(
                status=to_status, updated_at=timezone.now(), **(fields or {})
            )
            if updated:
                MessageStatusChange.objects.create(
                    message_id=message_id,
                    from_status=current,
                    to_status=to_status,
                    actor=actor,
                    reason=reason,
                    data=dict(data or {}),
                )
                return True
    return False


def messages_cancel(*, message_ids: Sequence[int], actor: str, reason: str) -> int:
    """Skip messages not yet sent (queued or deferred); return how many were."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns_message m SET status = 'skipped', failure_reason = %s,
                   next_attempt_at = NULL, updated_at = now()
            FROM (SELECT id, status FROM campaigns_message
                  WHERE id = ANY(%s::bigint[]) AND status IN ('queued', 'deferred')
                  FOR UPDATE) old
            WHERE m.id = old.id AND m.status = old.status
            RETURNING m.id, old.status
            """,
            [reason, list(message_ids)],
        )
        rows = cursor.fetchall()
        status_changes_record(
            changes=[(message_id, old, S.SKIPPED, reason, {}) for message_id, old in rows],
            actor=actor,
        )
    return len(rows)
