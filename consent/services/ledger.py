"""Appending to the consent ledger and keeping the derived state in step."""

from __future__ import annotations

import datetime as dt
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from consent.channels import CONSENT_CHANNELS
from consent.hooks import confirmation_request
from consent.models import Action, ConsentEvent, ConsentState, SendLog, Source, Topic
from consent.services.topics import topic_get
from consent.tokens import CONFIRM, link_make
from customers.models import Customer

# Sources whose grants are already confirmed: the confirmation link itself, and imports of
# consent confirmed elsewhere (the importer holds that proof).
_CONFIRMED_SOURCES = frozenset({Source.DOUBLE_OPT_IN, Source.IMPORT})
_EVIDENCE_KEYS = frozenset({"ip", "user_agent", "wording_version", "page", "note", "request_id"})


class ConsentError(ValueError):
    """Bad input to a consent service; ``field`` names what is at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def topic_for(*, key: str | None, channel: str) -> Topic | None:
    """The topic row for a key (None for "every topic of the channel"), validated."""
    if channel not in CONSENT_CHANNELS:
        raise ConsentError("channel", f"must be one of {', '.join(CONSENT_CHANNELS)}")
    if key is None or key == "":
        return None
    topic = topic_get(key=key)
    if topic is None:
        raise ConsentError("topic", f"no topic with key {key!r}")
    if channel not in topic.channels:
        raise ConsentError("topic", f"topic {key!r} is not sent on {channel}")
    return topic


def _clean_evidence(evidence: dict | None) -> dict:
    if evidence is None:
        return {}
    if not isinstance(evidence, dict):
        raise ConsentError("evidence", "must be an object")
    unknown = set(evidence) - _EVIDENCE_KEYS
    if unknown:
        raise ConsentError(
            "evidence",
            f"unknown key {', '.join(sorted(unknown))}; use {', '.join(sorted(_EVIDENCE_KEYS))}",
        )
    cleaned = {}
    for key, value in evidence.items():
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 2000:
            raise ConsentError(f"evidence.{key}", "must be a string of at most 2000 characters")
        cleaned[key] = value
    return cleaned


_UPSERT = """
INSERT INTO consent_consentstate (customer_id, channel, topic_id, action, occurred_at, event_id)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (customer_id, channel, topic_id) DO UPDATE
SET action = EXCLUDED.action, occurred_at = EXCLUDED.occurred_at, event_id = EXCLUDED.event_id
WHERE (consent_consentstate.occurred_at, consent_consentstate.event_id)
    < (EXCLUDED.occurred_at, EXCLUDED.event_id)
"""


def _apply_to_state(event: ConsentEvent) -> None:
    # One statement, safe against concurrent writers: a row only replaces an older one, so
    # a back-dated import never overrides what the customer said since.
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT,
            [
                event.customer_id,
                event.channel,
                event.topic_id,
                event.action,
                event.occurred_at,
                event.pk,
            ],
        )


@transaction.atomic
def consent_record(
    *,
    customer_id: int,
    channel: str,
    topic_key: str | None,
    action: str,
    source: str,
    evidence: dict | None = None,
    actor: str = "",
    occurred_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> ConsentEvent:
    """Append one ledger row and update the derived state in the same transaction.

    ``topic_key`` None means every topic of the channel (only grant or withdraw).
    A grant of a double opt-in topic that is not yet confirmed is recorded as ``pending``
    and, after commit, the registered confirmation senders are asked to send the link;
    only the confirmation itself (or an import of already-confirmed consent) grants.
    """
    now = now or timezone.now()
    occurred_at = occurred_at or now
    if timezone.is_naive(occurred_at):
        raise ConsentError("occurred_at", "must include a time zone")
    if occurred_at > now + dt.timedelta(minutes=5):
        raise ConsentError("occurred_at", "must not be in the future")
    if action not in Action.values:
        raise ConsentError("action", f"must be one of {', '.join(Action.values)}")
    if source not in Source.values:
        raise ConsentError("source", f"must be one of {', '.join(Source.values)}")
    topic = topic_for(key=topic_key, channel=channel)
    if topic is None and action == Action.PENDING:
        raise ConsentError("action", "pending needs a topic")
    if topic is not None and topic.is_transactional:
        raise ConsentError(
            "topic", "transactional messages need no consent and cannot be withdrawn"
        )
    evidence = _clean_evidence(evidence)
    if not Customer.objects.filter(pk=customer_id).exists():
        raise ConsentError("customer", f"customer {customer_id} does not exist")

    needs_confirmation = (
        action == Action.GRANT
        and topic is not None
        and topic.double_opt_in
        and source not in _CONFIRMED_SOURCES
        and not _already_granted(customer_id=customer_id, channel=channel, topic=topic)
    )
    if needs_confirmation:
        action = Action.PENDING
    event = ConsentEvent.objects.create(
        customer_id=customer_id,
        channel=channel,
        topic=topic,
        action=action,
        source=source,
        evidence=evidence,
        actor=actor,
        occurred_at=occurred_at,
        recorded_at=now,
    )
    _apply_to_state(event)
    if needs_confirmation:
        confirm_url = link_make(
            purpose=CONFIRM, customer_id=customer_id, channel=channel, topic_key=topic.key
        )
        transaction.on_commit(
            partial(
                confirmation_request,
                customer_id=customer_id,
                channel=channel,
                topic_key=topic.key,
                confirm_url=confirm_url,
            )
        )
    return event


def _already_granted(*, customer_id: int, channel: str, topic: Topic) -> bool:
    return ConsentState.objects.filter(
        customer_id=customer_id, channel=channel, topic=topic, action=Action.GRANT
    ).exists()


@transaction.atomic
def consent_state_rebuild(*, customer_ids: list[int] | None = None) -> int:
    """Recompute the derived state from the ledger; return the number of state rows."""
    states = ConsentState.objects.all()
    events = ConsentEvent.objects.all()
    if customer_ids is not None:
        states = states.filter(customer_id__in=customer_ids)
        events = events.filter(customer_id__in=customer_ids)
    states.delete()
    # The last row per key, by (occurred_at, id) — the same order the upsert keeps.
    latest = (
        events.order_by("customer_id", "channel", "topic_id", "-occurred_at", "-id")
        .distinct("customer_id", "channel", "topic_id")
        .values_list("customer_id", "channel", "topic_id", "action", "occurred_at", "id")
    )
    rows = [
        ConsentState(
            customer_id=customer_id,
            channel=channel,
            topic_id=topic_id,
            action=action,
            occurred_at=occurred_at,
            event_id=event_id,
        )
        for customer_id, channel, topic_id, action, occurred_at, event_id in latest.iterator(
            chunk_size=5000
        )
    ]
    ConsentState.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def consent_states_repoint(*, source_id: int, target_id: int) -> None:
    """After an alias merge: the ledger moves to the survivor and its state is rebuilt.

    Runs inside the merge's transaction (the customers app sends its signal there).
    """
    ConsentEvent.objects.filter(customer_id=source_id).update(customer_id=target_id)
    SendLog.objects.filter(customer_id=source_id).update(customer_id=target_id)
    consent_state_rebuild(customer_ids=[source_id, target_id])


@transaction.atomic
def consent_import(
    *,
    rows: list[dict],
    source: str = Source.IMPORT,
    actor: str = "",
    now: dt.datetime | None = None,
) -> int:
    """Append many ledger rows at once (a list migrated from another tool, the demo).

    Each row: ``customer_id``, ``channel``, ``topic`` (key or None), ``action`` (grant or
    withdraw), optional ``occurred_at`` and ``evidence``. Imported grants count as
    confirmed (the importer holds that proof). All rows are checked before any is written;
    the derived state of the customers concerned is then rebuilt from their ledger.
    """
    now = now or timezone.now()
    if source not in Source.values:
        raise ConsentError("source", f"must be one of {', '.join(Source.values)}")
    topics = {topic.key: topic for topic in Topic.objects.all()}
    customer_ids = {row.get("customer_id") for row in rows}
    existing = set(Customer.objects.filter(pk__in=customer_ids).values_list("pk", flat=True))
    events = []
    for index, row in enumerate(rows):
        channel, key, action = row.get("channel"), row.get("topic"), row.get("action")
        if row.get("customer_id") not in existing:
            raise ConsentError(f"{index}.customer_id", "no such customer")
        if channel not in CONSENT_CHANNELS:
            raise ConsentError(f"{index}.channel", f"must be one of {', '.join(CONSENT_CHANNELS)}")
        if action not in (Action.GRANT, Action.WITHDRAW):
            raise ConsentError(f"{index}.action", "must be grant or withdraw")
        topic = None
        if key is not None:
            topic = topics.get(key)
            if topic is None or channel not in topic.channels or topic.is_transactional:
                raise ConsentError(f"{index}.topic", f"no topic {key!r} on {channel}")
        occurred_at = row.get("occurred_at") or now
        if timezone.is_naive(occurred_at) or occurred_at > now + dt.timedelta(minutes=5):
            raise ConsentError(f"{index}.occurred_at", "must be an aware time, not in the future")
        events.append(
            ConsentEvent(
                customer_id=row["customer_id"],
                channel=channel,
                topic=topic,
                action=action,
                source=source,
                evidence=_clean_evidence(row.get("evidence")),
                actor=actor,
                occurred_at=occurred_at,
                recorded_at=now,
            )
        )
    ConsentEvent.objects.bulk_create(events, batch_size=5000)
    consent_state_rebuild(customer_ids=sorted(existing))
    return len(events)
