"""Dispatch: claim queued messages, ask the consent gate at send time, render, send, record.

A task brings a batch of message ids. The rows are claimed (queued → sending) in one
committed statement under ``FOR UPDATE SKIP LOCKED``, so a task delivered twice or two
workers holding the same ids send each message once: the loser finds nothing to claim.
Outcomes are written back in bulk, a chunk at a time, guarded by ``status = 'sending'``.

A worker killed between the claim and the write-back leaves rows in ``sending``: the
tick fails them after ``DISPATCH_SENDING_TIMEOUT_SECONDS`` instead of sending again,
because the provider may already have accepted them and a duplicate is the worse error.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.channels import (
    Delivery,
    SendError,
    TransientSendError,
)
from campaigns.models import MessageStatus
from campaigns.rendering import RenderedMessage, TemplateError, build_context, render
from campaigns.rendering.render import links_used
from campaigns.rendering.sources import VersionSource
from campaigns.selectors import template_version_get, version_source
from campaigns.services.dispatch_claim import (
    ACTOR,
    ClaimedMessage,
    dispatch_cursor,
    messages_claim,
    rate_limit,
)
from campaigns.services.dispatch_lanes import Sending, SendLanes
from campaigns.services.outbox import (
    messages_dispatch_on_commit,
    status_changes_record,
    sweep_after,
)
from consent import gate
from consent.channels import Channel
from consent.services.gate import consent_decide_many
from consent.services.sends import consent_record_sends
from consent.services.topics import topic_get
from consent.tokens import PREFERENCES, UNSUBSCRIBE, LinkMaker, unsubscribe_headers_for
from customers.models import Device
from segments.selectors import recommendations_for_many, scores_for_many

logger = logging.getLogger(__name__)

FLUSH_EVERY = 100
TICK_LIMIT = 5_000
S = MessageStatus


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    deferred: int = 0
    failed: int = 0
    rate_limited: int = 0

    def count(self, status: str) -> None:
        if status == S.SENT:
            self.sent += 1
        elif status == S.SKIPPED:
            self.skipped += 1
        elif status == S.DEFERRED:
            self.deferred += 1
        elif status == S.FAILED:
            self.failed += 1


@dataclass
class _Outcome:
    message: ClaimedMessage
    status: str
    reason: str = ""
    decision: gate.Decision | None = None
    next_attempt_at: dt.datetime | None = None
    provider_id: str = ""
    subject: str = ""
    size: int | None = None
    locale: str = ""
    sent_at: dt.datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


def retry_delay(
    *, attempt: int, retry_after: float | None = None, rng: Callable[[], float] = random.random
) -> float:
    """Seconds before the next try after ``attempt`` failed: exponential, capped, with
    jitter (half fixed, half random, so retries of a burst spread out), never sooner than
    the provider's ``Retry-After``."""
    base = settings.DISPATCH_RETRY_BASE_SECONDS * (2 ** max(attempt - 1, 0))
    delay = min(base, settings.DISPATCH_RETRY_MAX_SECONDS)
    delay = delay / 2 + rng() * delay / 2
    return max(delay, retry_after or 0.0)


# Compiled version sources by id: published versions never change.
_versions: OrderedDict[int, VersionSource] = OrderedDict()


def _version(version_id: int) -> VersionSource:
    source = _versions.get(version_id)
    if source is None:
        source = version_source(template_version_get(version_id=version_id))
        if source.frozen:
            _versions[version_id] = source
            while len(_versions) > 256:
                _versions.popitem(last=False)
    return source


# Sending -------------------------------------------------------------------------------


def messages_dispatch(
    *, message_ids: Sequence[int], now: dt.datetime | None = None
) -> DispatchReport:
    """Send the queued messages among ``message_ids``; others are left alone."""
    now = now or timezone.now()
    report = DispatchReport()
    ids = sorted({int(message_id) for message_id in message_ids})
    allowed, report.rate_limited = rate_limit(ids, now)
    messages = messages_claim(allowed, now)
    report.claimed = len(messages)
    if not messages:
        return report
    # A customer with several messages in the batch gets them in rounds, the send log
    # written between rounds, so the frequency caps see the earlier ones.
    rounds: list[list[ClaimedMessage]] = []
    seen: dict[int, int] = defaultdict(int)
    for message in messages:
        index = seen[message.customer_id]
        seen[message.customer_id] += 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(message)
    for batch in rounds:
        _dispatch_round(batch, now, report)
    return report


def _decisions(messages: list[ClaimedMessage], now: dt.datetime) -> dict[int, gate.Decision]:
    groups: dict[tuple[str, str], list[ClaimedMessage]] = defaultdict(list)
    for message in messages:
        groups[(message.channel, message.topic_key)].append(message)
    decisions: dict[int, gate.Decision] = {}
    for (channel, topic_key), group in groups.items():
        if channel == Channel.WEBHOOK:
            # Webhooks go to a system of the operator's, not to the customer.
            for message in group:
                decisions[message.pk] = gate.Decision(gate.ALLOWED, detail="webhook")
            continue
        by_customer = consent_decide_many(
            customer_ids=[message.customer_id for message in group],
            channel=channel,
            topic_key=topic_key,
            now=now,
        )
        for message in group:
            decisions[message.pk] = by_customer[message.customer_id]
    return decisions


def _push_targets(messages: list[ClaimedMessage]) -> dict[int, Device]:
    ids = [message.customer_id for message in messages if message.channel == Channel.PUSH]
    if not ids:
        return {}
    newest: dict[int, Device] = {}
    for device in Device.objects.filter(customer_id__in=ids).order_by("customer_id", "-last_seen"):
        newest.setdefault(device.customer_id, device)
    return newest


# Advisory lock namespace for "a message to this customer is being decided and sent".
CUSTOMER_LOCK_CLASS = 0x4A4C
_INT4 = 2_147_483_647
BUSY_RETRY = dt.timedelta(seconds=1)


def _customers_lock(customer_ids: list[int]) -> set[int]:
    """Session advisory locks on the customers; returns those this worker holds.

    Two workers sending to one customer at the same instant (two journeys, say) would
    both read the send log before either wrote it and pass the frequency cap together.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM unnest(%s::bigint[]) AS id "
            "WHERE pg_try_advisory_lock(%s, (id %% %s)::int)",
            [customer_ids, CUSTOMER_LOCK_CLASS, _INT4],
        )
        return {row[0] for row in cursor.fetchall()}


def _customers_unlock(customer_ids: set[int]) -> None:
    if customer_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_unlock(%s, (id %% %s)::int) FROM unnest(%s::bigint[]) AS id",
                [CUSTOMER_LOCK_CLASS, _INT4, sorted(customer_ids)],
            )


def _dispatch_round(
    messages: list[ClaimedMessage], now: dt.datetime, report: DispatchReport
) -> None:
    held = _customers_lock(sorted({message.customer_id for message in messages}))
    try:
        busy = [message for message in messages if message.customer_id not in held]
        _flush(
            [
                _Outcome(
                    message,
                    S.DEFERRED,
                    reason="another message to this customer is being sent",
                    next_attempt_at=now + BUSY_RETRY,
                )
                for message in busy
            ],
            now,
            report,
        )
        _dispatch_held(
            [message for message in messages if message.customer_id in held], now, report
        )
    finally:
        _customers_unlock(held)


@dataclass
class _BatchFacts:
    """What a batch's rendering needs, loaded once for all its messages."""

    now: dt.datetime
    decisions: dict[int, gate.Decision]
    devices: dict[int, Device]
    scores: dict[int, dict[str, float]]
    recommendations: dict[int, list[dict]]
    transactional: dict[str, bool] = field(default_factory=dict)
    preferences_link: LinkMaker = field(default_factory=lambda: LinkMaker(PREFERENCES))
    unsubscribe_link: LinkMaker = field(default_factory=lambda: LinkMaker(UNSUBSCRIBE))

    def is_transactional(self, topic_key: str) -> bool:
        if topic_key not in self.transactional:
            topic = topic_get(key=topic_key)
            self.transactional[topic_key] = bool(topic and topic.is_transactional)
        return self.transactional[topic_key]


def _dispatch_held(
    messages: list[ClaimedMessage], now: dt.datetime, report: DispatchReport
) -> None:
    if not messages:
        return
    decisions = _decisions(messages, now)
    # Scores and recommendations for the whole batch: two queries, not two per message.
    allowed_ids = [m.customer_id for m in messages if decisions[m.pk].allowed]
    facts = _BatchFacts(
        now=now,
        decisions=decisions,
        devices=_push_targets(messages),
        scores=scores_for_many(customer_ids=allowed_ids) if allowed_ids else {},
        recommendations=(recommendations_for_many(customer_ids=allowed_ids) if allowed_ids else {}),
    )
    by_channel: dict[str, list[ClaimedMessage]] = defaultdict(list)
    for message in messages:
        by_channel[message.channel].append(message)
    for channel, group in by_channel.items():
        lanes = settings.DISPATCH_EMAIL_CONNECTIONS if channel == Channel.EMAIL else 1
        with SendLanes(channel, lanes) as senders:
            # One chunk on the wire while the next is rendered and the last recorded.
            in_flight: tuple[list[_Outcome], list[_Prepared], Sending] | None = None
            for start in range(0, len(group), FLUSH_EVERY):
                outcomes, prepared = _prepare_chunk(group[start : start + FLUSH_EVERY], facts)
                sending = senders.submit([item.delivery for item in prepared])
                if in_flight is not None:
                    _record(*in_flight, facts=facts, report=report)
                in_flight = (outcomes, prepared, sending)
            if in_flight is not None:
                _record(*in_flight, facts=facts, report=report)


def _prepare_chunk(
    messages: list[ClaimedMessage], facts: _BatchFacts
) -> tuple[list[_Outcome], list[_Prepared]]:
    """The outcomes known before sending (refused, failed to render) and the deliveries."""
    outcomes: list[_Outcome] = []
    prepared: list[_Prepared] = []
    for message in messages:
        decision = facts.decisions[message.pk]
        if not decision.allowed:
            outcomes.append(_refused(message, decision))
            continue
        item = _prepare(message, decision, facts)
        if isinstance(item, _Outcome):
            outcomes.append(item)
        else:
            prepared.append(item)
    return outcomes, prepared


def _record(
    outcomes: list[_Outcome],
    prepared: list[_Prepared],
    sending: Sending,
    *,
    facts: _BatchFacts,
    report: DispatchReport,
) -> None:
    """Wait for a chunk's sends and write its outcomes, the refused ones with them."""
    outcomes += [
        _outcome_of(item, result, now=facts.now)
        for item, result in zip(prepared, sending.results(), strict=True)
    ]
    _flush(outcomes, facts.now, report, transactional=facts.transactional)


def _refused(message: ClaimedMessage, decision: gate.Decision) -> _Outcome:
    if decision.reason in (gate.QUIET_HOURS, gate.FREQUENCY_CAPPED) and decision.retry_at:
        return _Outcome(
            message,
            S.DEFERRED,
            reason=decision.reason,
            decision=decision,
            next_attempt_at=decision.retry_at,
        )
    return _Outcome(message, S.SKIPPED, reason=gate.explain(decision), decision=decision)


def _links(
    message: ClaimedMessage, facts: _BatchFacts, wanted: frozenset[str] | None
) -> tuple[dict[str, str], dict[str, str]]:
    """The customer's links for the body (only those its template reads: each is a
    signature to compute), and the RFC 8058 headers of a marketing email."""
    links = {}
    if wanted is None or "preferences" in wanted:
        links["preferences"] = facts.preferences_link(customer_id=message.customer_id)
    headers: dict[str, str] = {}
    if message.channel == Channel.EMAIL and not facts.is_transactional(message.topic_key):
        # The same signed link in the body as in the header.
        links["unsubscribe"] = facts.unsubscribe_link(
            customer_id=message.customer_id, channel="email", topic_key=message.topic_key
        )
        headers = unsubscribe_headers_for(links["unsubscribe"])
    return links, headers


def _address(message: ClaimedMessage, device: Device | None) -> tuple[str, str]:
    customer = message.customer
    if message.channel == Channel.EMAIL:
        return customer["email"], ""
    if message.channel == Channel.SMS:
        return customer["phone"], ""
    if message.channel == Channel.PUSH:
        return (device.token, device.platform) if device is not None else ("", "")
    return "", ""


def _size(rendered: RenderedMessage) -> int:
    parts = (
        rendered.subject,
        rendered.html,
        rendered.text,
        rendered.body,
        rendered.title,
        json.dumps(rendered.data) if rendered.data else "",
    )
    return sum(len(part.encode("utf-8")) for part in parts)


@dataclass
class _Prepared:
    message: ClaimedMessage
    decision: gate.Decision
    rendered: RenderedMessage
    delivery: Delivery


def _prepare(
    message: ClaimedMessage, decision: gate.Decision, facts: _BatchFacts
) -> _Prepared | _Outcome:
    """Render the message into a delivery, or the failed outcome saying why not."""
    try:
        version = _version(message.template_version_id)
        links, headers = _links(message, facts, links_used(version))
        extra = dict(message.context)
        context = build_context(
            customer=message.customer,
            now=facts.now,
            event=extra.pop("event", None),
            scores=facts.scores.get(message.customer_id, {}),
            recommendations=facts.recommendations.get(message.customer_id, []),
            links=links,
            default_timezone=settings.JOURNEYLINE_DEFAULT_TIMEZONE,
        )
        extra.pop("customer", None)
        context.update(extra)
        rendered = render(version, context)
        to, platform = _address(message, facts.devices.get(message.customer_id))
    except TemplateError as error:
        return _Outcome(message, S.FAILED, reason=f"template error: {error}", decision=decision)
    except Exception as error:
        return _unexpected(message, decision, error)
    delivery = Delivery(
        message=rendered,
        to=to,
        reference=f"jl-{message.pk}",
        headers=headers,
        platform=platform,
        metadata={"journeyline_message_id": str(message.pk)},
    )
    return _Prepared(message, decision, rendered, delivery)


def _unexpected(message: ClaimedMessage, decision: gate.Decision, error: BaseException) -> _Outcome:
    # A bug must not leave the rest of the batch in "sending".
    logger.error(
        "dispatch: unexpected error",
        exc_info=(type(error), error, error.__traceback__),
        extra={"message_id": message.pk},
    )
    return _Outcome(
        message, S.FAILED, reason=f"unexpected error: {type(error).__name__}", decision=decision
    )


def _outcome_of(item: _Prepared, result: Any, *, now: dt.datetime) -> _Outcome:
    """What a send's result (the provider's id, or the exception it raised) makes of it."""
    message, decision, rendered = item.message, item.decision, item.rendered
    if isinstance(result, TransientSendError):
        if message.attempts >= settings.DISPATCH_MAX_ATTEMPTS:
            return _Outcome(
                message,
                S.FAILED,
                reason=f"gave up after {message.attempts} attempts: {result.reason}",
                decision=decision,
            )
        delay = retry_delay(attempt=message.attempts, retry_after=result.retry_after)
        return _Outcome(
            message,
            S.DEFERRED,
            reason=f"retry {message.attempts + 1} after a transient error: {result.reason}",
            decision=decision,
            next_attempt_at=now + dt.timedelta(seconds=delay),
        )
    if isinstance(result, SendError):  # permanent, or of no known kind
        return _Outcome(message, S.FAILED, reason=result.reason, decision=decision)
    if isinstance(result, BaseException):
        return _unexpected(message, decision, result)
    return _Outcome(
        message,
        S.SENT,
        decision=decision,
        provider_id=str(result or "")[:255],
        subject=(rendered.subject or rendered.title)[:998],
        size=_size(rendered),
        locale=rendered.locale,
        sent_at=timezone.now(),
    )


_FLUSH_SQL = """
UPDATE campaigns_message m SET
    status = v.status, failure_reason = v.failure_reason, decision_reason = v.decision_reason,
    decision = NULLIF(v.decision, 'null'::jsonb), next_attempt_at = v.next_attempt_at,
    provider_id = v.provider_id, subject = v.subject, size = v.size,
    locale = CASE WHEN v.locale = '' THEN m.locale ELSE v.locale END,
    sent_at = v.sent_at, updated_at = %s
FROM jsonb_to_recordset(%s::jsonb) AS v(
    id bigint, status text, failure_reason text, decision_reason text, decision jsonb,
    next_attempt_at timestamptz, provider_id text, subject text, size int, locale text,
    sent_at timestamptz)
WHERE m.id = v.id AND m.status = 'sending'
RETURNING m.id
"""


def _flush(
    outcomes: list[_Outcome],
    now: dt.datetime,
    report: DispatchReport,
    *,
    transactional: dict[str, bool] | None = None,
) -> None:
    if not outcomes:
        return
    # The rows travel as one JSON document: quoting eleven arrays in Python cost more.
    rows = [
        {
            "id": outcome.message.pk,
            "status": outcome.status,
            "failure_reason": "" if outcome.status == S.SENT else outcome.reason,
            "decision_reason": outcome.decision.reason if outcome.decision else "",
            "decision": outcome.decision.as_dict() if outcome.decision else None,
            "next_attempt_at": outcome.next_attempt_at,
            "provider_id": outcome.provider_id,
            "subject": outcome.subject,
            "size": outcome.size,
            "locale": outcome.locale,
            "sent_at": outcome.sent_at,
        }
        for outcome in outcomes
    ]
    with transaction.atomic(), dispatch_cursor() as cursor:
        cursor.execute(_FLUSH_SQL, [now, orjson.dumps(rows).decode()])
        written = {row[0] for row in cursor.fetchall()}
        changes = []
        sends = []
        for outcome in outcomes:
            if outcome.message.pk not in written:
                continue
            report.count(outcome.status)
            data: dict[str, Any] = {}
            if outcome.decision is not None:
                data["decision"] = outcome.decision.reason
            if outcome.provider_id:
                data["provider_id"] = outcome.provider_id
            if outcome.next_attempt_at:
                data["next_attempt_at"] = outcome.next_attempt_at.isoformat()
            changes.append((outcome.message.pk, S.SENDING, outcome.status, outcome.reason, data))
            if outcome.status == S.SENT:
                sends.append(
                    (
                        outcome.message.customer_id,
                        outcome.message.channel,
                        outcome.message.topic_key,
                    )
                )
        status_changes_record(changes=changes, actor=ACTOR)
        # Webhooks are not messages to the customer: the caps do not count them.
        consent_record_sends(
            sends=[send for send in sends if send[1] != Channel.WEBHOOK],
            sent_at=now,
            transactional_topics=transactional,
        )


# The beat tick -------------------------------------------------------------------------


@dataclass
class TickReport:
    requeued: int = 0
    swept: int = 0
    lost: int = 0


def messages_tick(*, now: dt.datetime | None = None, limit: int = TICK_LIMIT) -> TickReport:
    """Re-queue due deferred messages, re-enqueue queued ones whose task never came (or
    that waited for rate-limit tokens), and fail messages a dead worker left sending."""
    now = now or timezone.now()
    report = TickReport()
    next_sweep = now + sweep_after()
    stale_before = now - dt.timedelta(seconds=settings.DISPATCH_SENDING_TIMEOUT_SECONDS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            WITH lost AS (
                SELECT id FROM campaigns_message
                WHERE status = 'sending' AND updated_at < %s
                ORDER BY updated_at LIMIT %s FOR UPDATE SKIP LOCKED
            )
            UPDATE campaigns_message m SET status = 'failed', updated_at = %s,
                failure_reason = 'the worker sending it stopped; not retried, as the '
                                 'provider may already have it'
            FROM lost WHERE m.id = lost.id RETURNING m.id
            """,
            [stale_before, limit, now],
        )
        lost = [row[0] for row in cursor.fetchall()]
        status_changes_record(
            changes=[(i, S.SENDING, S.FAILED, "worker lost while sending", {}) for i in lost],
            actor="dispatch tick",
        )
        cursor.execute(
            """
            WITH due AS (
                SELECT id FROM campaigns_message
                WHERE status = 'deferred' AND next_attempt_at <= %s
                ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED
            )
            UPDATE campaigns_message m SET status = 'queued', next_attempt_at = %s,
                updated_at = %s
            FROM due WHERE m.id = due.id RETURNING m.id
            """,
            [now, limit, next_sweep, now],
        )
        requeued = [row[0] for row in cursor.fetchall()]
        status_changes_record(
            changes=[(i, S.DEFERRED, S.QUEUED, "due", {}) for i in requeued],
            actor="dispatch tick",
        )
        cursor.execute(
            """
            WITH due AS (
                SELECT id FROM campaigns_message
                WHERE status = 'queued' AND next_attempt_at <= %s
                ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED
            )
            UPDATE campaigns_message m SET next_attempt_at = %s
            FROM due WHERE m.id = due.id RETURNING m.id
            """,
            [now, limit, next_sweep],
        )
        swept = [row[0] for row in cursor.fetchall()]
        messages_dispatch_on_commit(message_ids=sorted(requeued + swept))
    report.lost, report.requeued, report.swept = len(lost), len(requeued), len(swept)
    return report
