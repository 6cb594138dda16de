"""Helpers for journeys: send on the best channel, and store journey effects as messages.

Journeys sit above campaigns, so nothing here imports them: ``JourneyOutbox`` matches
the ``journeys.ports.Outbox`` protocol by shape, and journeys registers it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Message, MessageOrigin, MessageStatus
from campaigns.selectors import template_current_version
from campaigns.services.dispatch import _INT4, CUSTOMER_LOCK_CLASS
from campaigns.services.outbox import (
    MessageError,
    NewMessage,
    Origin,
    message_enqueue,
    message_transition,
    messages_dispatch_keys,
    messages_enqueue_many,
)
from consent import gate
from consent.channels import Channel
from consent.services.gate import consent_decide


@dataclass(frozen=True)
class ChannelChoice:
    channel: str
    template_version_id: int


@dataclass
class BestChannel:
    """The message stored (None only when no channel was given) and why each channel
    before it was passed over."""

    message: Message | None
    decisions: dict[str, gate.Decision] = field(default_factory=dict)


# Reasons that only mean "not now": the message is still worth queuing on that channel
# when no channel allows sending at once.
_LATER = (gate.QUIET_HOURS, gate.FREQUENCY_CAPPED)


@transaction.atomic
def message_enqueue_best_channel(
    *,
    customer_id: int,
    choices: Sequence[ChannelChoice],
    topic_key: str,
    idempotency_key: str,
    origin: Origin | None = None,
    context: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> BestChannel:
    """Queue the message on the first channel the gate allows now (reachable, consented,
    not suppressed, not capped, not in quiet hours).

    When none allows it now, the first channel that only has to wait (quiet hours, a cap)
    is queued and will be deferred at send time; when every channel refuses, a skipped
    message on the first channel records the refusal. A repeated key returns the stored
    row. The customer is locked (the advisory lock dispatch takes per customer) until the
    caller commits, so two journeys choosing at the same instant decide one after the
    other, and dispatch counts each send before deciding the next (the caps hold).
    """
    if not choices:
        raise MessageError("choices", "give at least one channel")
    existing = Message.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return BestChannel(existing)
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, (%s %% %s)::int)",
            [CUSTOMER_LOCK_CLASS, customer_id, _INT4],
        )
    decisions: dict[str, gate.Decision] = {}
    chosen: ChannelChoice | None = None
    for choice in choices:
        if choice.channel == Channel.WEBHOOK:
            raise MessageError("choices", "webhooks are not a channel to a customer")
        decision = consent_decide(
            customer_id=customer_id, channel=choice.channel, topic_key=topic_key, now=now
        )
        decisions[choice.channel] = decision
        if decision.allowed:
            chosen = choice
            break
    if chosen is None:
        chosen = next(
            (choice for choice in choices if decisions[choice.channel].reason in _LATER), None
        )
    refused = chosen is None
    target = chosen or choices[0]
    message = message_enqueue(
        customer_id=customer_id,
        channel=target.channel,
        template_version_id=target.template_version_id,
        topic_key=topic_key,
        idempotency_key=idempotency_key,
        origin=origin,
        context=context,
        now=now,
    )
    if refused:
        decision = decisions[target.channel]
        message_transition(
            message_id=message.pk,
            to_status=MessageStatus.SKIPPED,
            actor="best channel",
            reason=gate.explain(decision),
            fields={
                "decision": decision.as_dict(),
                "decision_reason": decision.reason,
                "failure_reason": "no channel allowed: "
                + ", ".join(f"{name} {d.reason}" for name, d in decisions.items()),
            },
        )
        message.refresh_from_db()
    return BestChannel(message, decisions)


class JourneyOutbox:
    """The ``journeys.ports.Outbox`` protocol. Register it from journeys::

        from campaigns.services.cross_channel import JourneyOutbox
        register_outbox(JourneyOutbox())

    A journey names a template; the message uses its current published version.
    """

    def enqueue(self, messages: Sequence[Any]) -> None:
        versions: dict[Any, int] = {}
        rows = []
        for outbound in messages:
            if outbound.template_id not in versions:
                version = template_current_version(template_id=outbound.template_id)
                if version is None:
                    raise MessageError(
                        "template_id", f"template {outbound.template_id} has no published version"
                    )
                versions[outbound.template_id] = version.pk
            context = dict(outbound.context or {})
            if outbound.webhook:
                context["webhook"] = outbound.webhook
            rows.append(
                NewMessage(
                    customer_id=outbound.customer_id,
                    channel=outbound.channel,
                    template_version_id=versions[outbound.template_id],
                    topic_key=outbound.topic,
                    idempotency_key=outbound.idempotency_key,
                    origin=Origin(
                        kind=MessageOrigin.JOURNEY,
                        journey_id=outbound.journey_id,
                        enrolment_id=outbound.enrolment_id,
                        step_id=str(outbound.step_id)[:64],
                    ),
                    context=context,
                )
            )
        messages_enqueue_many(messages=rows, actor="journey", dispatch=False)

    def dispatch(self, idempotency_keys: Sequence[str]) -> None:
        messages_dispatch_keys(
            idempotency_keys=idempotency_keys, batch_size=settings.JOURNEYS_DISPATCH_BATCH_SIZE
        )
