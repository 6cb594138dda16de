"""The runner: feeds inputs to the pure engine and applies its effects in the caller's
transaction — transition rows, the enrolment rows, trait updates through customers, and
messages through the outbox port — with dispatch enqueued on commit only.

Callers lock the enrolments first (``select_for_update``), so each enrolment moves once.
"""

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import orjson
from django.db import connection, transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber

from customers.models import Device, Event
from customers.services.profiles import customer_update
from journeys.compiled import compiled_by_id
from journeys.engine import (
    CallWebhook,
    CustomerFacts,
    EventFact,
    Exit,
    Input,
    SendMessage,
    State,
    Status,
    Transition,
    UpdateTraits,
    advance,
)
from journeys.models import Enrolment, EnrolmentTransition
from journeys.ports import OutboundMessage, OutboxNotConfigured, ports
from journeys.services.condition_facts import snapshots_load

logger = logging.getLogger(__name__)

# How far back condition steps can look at a customer's events when loading facts.
EVENT_FACTS_DAYS = 400
EVENT_FACTS_LIMIT = 5000


def enrolments_advance(
    *, items: Sequence[tuple[Enrolment, Input]], now: dt.datetime, actor: str
) -> int:
    """Advance each (locked) enrolment by its input, in order; return the transitions made.

    An enrolment may appear several times: each input sees the state the previous left.
    An enrolment whose messages the outbox refuses (no published template, say) fails
    with the reason, alone: the rest of the batch moves on.
    """
    if not items:
        return 0
    with transaction.atomic():
        versions = compiled_by_id(enrolment.version_id for enrolment, _ in items)
        facts = _load_facts([enrolment for enrolment, _ in items], versions, now)
        moves: list[_Move] = []
        for enrolment, engine_input in items:
            state = State.from_json(enrolment.state)
            new_state, effects = advance(
                versions[enrolment.version_id].graph,
                state,
                engine_input,
                now,
                facts=facts[enrolment.customer_id],
                conditions=ports.conditions,
            )
            if not effects:
                continue
            move = _Move(enrolment, state, new_state, effects, _messages(enrolment, effects))
            moves.append(move)
            _mirror(enrolment, new_state, now)
            # Later inputs of the same customer in this batch see the traits this one set.
            traits = _traits_after(facts[enrolment.customer_id].traits, effects)
            facts[enrolment.customer_id] = replace(facts[enrolment.customer_id], traits=traits)
        sent = _enqueue_messages(moves)
        transitions: list[dict] = []
        failed: set[int] = set()
        for move in moves:
            if move.enrolment.pk in failed:
                continue  # it stopped at its first failure; later inputs never happened
            if move.failure:
                failed.add(move.enrolment.pk)
                move.new_state, move.effects = _failed(move.state, move.failure)
                _mirror(move.enrolment, move.new_state, now)
            else:
                _apply_traits(move.enrolment, move.effects)
            transitions.extend(_transition_rows(move.enrolment, move.effects, now, actor))
        insert_transitions(transitions)
        _write_enrolments(list({move.enrolment.pk: move.enrolment for move in moves}.values()))
        if sent:
            outbox = ports.outbox
            transaction.on_commit(lambda: outbox.dispatch(sent))
    return len(transitions)


@dataclass
class _Move:
    enrolment: Enrolment
    state: State
    new_state: State
    effects: list
    messages: list[OutboundMessage]
    failure: str = ""


def _enqueue_messages(moves: list[_Move]) -> list[str]:
    """Hand every message to the outbox in one call; when it refuses, find the enrolments
    at fault one by one (each in a savepoint) and fail those. Returns the keys stored."""
    with_messages = [move for move in moves if move.messages]
    if not with_messages:
        return []
    if not _outbox_ready():
        for move in with_messages:
            move.failure = "no outbox is configured for send steps"
        return []
    try:
        with transaction.atomic():
            ports.outbox.enqueue([m for move in with_messages for m in move.messages])
    except Exception:
        logger.warning("journeys: the outbox refused a batch; retrying one enrolment at a time")
    else:
        return [m.idempotency_key for move in with_messages for m in move.messages]
    sent = []
    failed: set[int] = set()
    for move in with_messages:
        if move.enrolment.pk in failed:
            move.failure = "an earlier move of this enrolment failed"
            continue
        try:
            with transaction.atomic():
                ports.outbox.enqueue(move.messages)
        except Exception as error:
            move.failure = f"the outbox refused a message: {error}"[:500]
            failed.add(move.enrolment.pk)
            logger.warning(
                "journeys: outbox refused the messages of an enrolment",
                extra={"enrolment_id": move.enrolment.pk, "error": type(error).__name__},
            )
        else:
            sent.extend(m.idempotency_key for m in move.messages)
    return sent


def enrolment_record(
    *, enrolment: Enrolment, reason: str, now: dt.datetime, actor: str, data: dict | None = None
) -> EnrolmentTransition:
    """A log row for what happened to an enrolment outside the engine (holdout, goal)."""
    return EnrolmentTransition.objects.create(
        enrolment=enrolment,
        from_step=enrolment.current_step,
        to_step=enrolment.current_step,
        reason=reason,
        data=data or {},
        actor=actor,
        created_at=now,
    )


# One statement for a whole batch, its rows sent as one JSON document: Django's
# bulk_update builds a CASE per field and row, and arrays of strings cost a regex per
# element to quote; either costs more than the rest of a tick together.
_UPDATE_ENROLMENTS = """
    UPDATE journeys_enrolment AS e
    SET status = v.status, current_step = v.current_step, wake_at = v.wake_at,
        awaited_event = v.awaited_event, state = v.state, finished_at = v.finished_at
    FROM jsonb_to_recordset(%s::jsonb) AS v(
        id bigint, status text, current_step text, wake_at timestamptz, awaited_event text,
        state jsonb, finished_at timestamptz)
    WHERE e.id = v.id
"""
_INSERT_TRANSITIONS = """
    INSERT INTO journeys_enrolmenttransition
        (enrolment_id, from_step, to_step, reason, data, actor, created_at)
    SELECT v.enrolment_id, v.from_step, v.to_step, v.reason, v.data, v.actor, v.created_at
    FROM jsonb_to_recordset(%s::jsonb) AS v(
        enrolment_id bigint, from_step text, to_step text, reason text, data jsonb, actor text,
        created_at timestamptz)
"""


def _execute(sql: str, rows: list[dict]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, [orjson.dumps(rows).decode()])


def insert_transitions(rows: list[dict]) -> None:
    """Append transition rows (``enrolment_id``, ``from_step``, ``to_step``, ``reason``,
    ``data``, ``actor``, ``created_at``) in one statement."""
    if rows:
        _execute(_INSERT_TRANSITIONS, rows)


def _write_enrolments(enrolments: list[Enrolment]) -> None:
    if enrolments:
        _execute(
            _UPDATE_ENROLMENTS,
            [
                {
                    "id": e.pk,
                    "status": e.status,
                    "current_step": e.current_step,
                    "wake_at": e.wake_at,
                    "awaited_event": e.awaited_event,
                    "state": e.state,
                    "finished_at": e.finished_at,
                }
                for e in enrolments
            ],
        )


def _outbox_ready() -> bool:
    try:
        ports.outbox  # noqa: B018 - raises when no outbox is registered
    except OutboxNotConfigured:
        logger.error("journeys: a send step ran with no outbox registered")
        return False
    return True


def _failed(state: State, reason: str):
    failed = replace(state, status=Status.FAILED, wake_at=None, awaiting=None)
    return failed, [
        Transition(state.step, None, "failed", {"error": reason}),
        Exit(reason, Status.FAILED),
    ]


def _mirror(enrolment: Enrolment, state: State, now: dt.datetime) -> None:
    if state.is_finished and not enrolment.finished_at:
        enrolment.finished_at = now
    enrolment.status = str(state.status)
    enrolment.current_step = state.step or ""
    enrolment.wake_at = state.wake_at
    enrolment.awaited_event = state.awaiting.event if state.awaiting else ""
    enrolment.state = state.to_json()


def _transition_rows(enrolment, effects, now, actor) -> Iterable[dict]:
    # Plain rows for ``insert_transitions``: a model instance per row costs more than
    # its share of the INSERT.
    for effect in effects:
        if isinstance(effect, Transition):
            yield {
                "enrolment_id": enrolment.pk,
                "from_step": effect.from_step or "",
                "to_step": effect.to_step or "",
                "reason": effect.reason,
                "data": effect.data,
                "actor": actor,
                "created_at": now,
            }


def _messages(enrolment: Enrolment, effects) -> list[OutboundMessage]:
    context = {"journey": {"id": enrolment.journey_id}, "trigger": enrolment.trigger_payload}
    messages = []
    for effect in effects:
        if not isinstance(effect, SendMessage | CallWebhook):
            continue
        message = OutboundMessage(
            idempotency_key=effect.idempotency_key,
            customer_id=enrolment.customer_id,
            enrolment_id=enrolment.pk,
            journey_id=enrolment.journey_id,
            step_id=effect.step,
            channel="webhook",
            template_id=effect.template,
            topic=effect.topic,
            context=context,
        )
        if isinstance(effect, SendMessage):
            message = replace(
                message, channel=effect.channel, template_id=effect.template, topic=effect.topic
            )
        else:
            message = replace(message, webhook={"body": effect.body})
        messages.append(message)
    return messages


def _traits_after(traits: dict, effects) -> dict:
    for effect in effects:
        if isinstance(effect, UpdateTraits):
            merged = {**traits, **effect.set}
            traits = {name: value for name, value in merged.items() if name not in effect.unset}
    return traits


def _apply_traits(enrolment: Enrolment, effects) -> None:
    for effect in effects:
        if isinstance(effect, UpdateTraits):
            changes = {**effect.set, **dict.fromkeys(effect.unset)}
            enrolment.customer = customer_update(
                customer=enrolment.customer, changes={"traits": changes}
            )


def _load_facts(
    enrolments: list[Enrolment], compiled_versions: dict, now: dt.datetime
) -> dict[int, CustomerFacts]:
    """Facts for each customer, in a fixed number of queries whatever the batch size."""
    customers = {enrolment.customer_id: enrolment.customer for enrolment in enrolments}
    versions = list(compiled_versions.values())
    push: set[int] = set()
    if any(version.uses_push for version in versions):
        push = set(
            Device.objects.filter(customer_id__in=customers).values_list("customer_id", flat=True)
        )
    event_names = set().union(*(version.condition_events for version in versions))
    events: dict[int, list[EventFact]] = defaultdict(list)
    if event_names:
        # The latest EVENT_FACTS_LIMIT of each customer (a limit over the whole batch
        # would leave some customers' events out, and their event counts wrong).
        latest_first = Window(
            RowNumber(), partition_by=F("customer_id"), order_by=F("timestamp").desc()
        )
        rows = (
            Event.objects.filter(
                customer_id__in=customers,
                name__in=event_names,
                timestamp__gte=now - dt.timedelta(days=EVENT_FACTS_DAYS),
            )
            .annotate(latest_first=latest_first)
            .filter(latest_first__lte=EVENT_FACTS_LIMIT)
            .order_by("customer_id", "-timestamp")
            .values_list("customer_id", "name", "timestamp", "properties")
        )
        for customer_id, name, timestamp, properties in rows:
            events[customer_id].append(EventFact(name, timestamp, properties))
    memberships: dict[int, set[str]] = defaultdict(set)
    if any(version.uses_segments for version in versions):
        from segments.models import SegmentMembership

        rows = SegmentMembership.objects.filter(
            customer_id__in=customers, exited_at=None
        ).values_list("customer_id", "segment__key")
        for customer_id, key in rows:
            memberships[customer_id].add(key)
    # Segment-rule conditions (scores, clusters, consent, …) read a segments snapshot.
    condition_kinds = set().union(*(version.condition_kinds for version in versions))
    snapshots = (
        snapshots_load(customers=customers, kinds=condition_kinds) if condition_kinds else {}
    )
    facts = {}
    for customer_id, customer in customers.items():
        reachable = {"webhook"}
        if customer.email:
            reachable.add("email")
        if customer.phone:
            reachable.add("sms")
        if customer_id in push:
            reachable.add("push")
        facts[customer_id] = CustomerFacts(
            traits=dict(customer.traits),
            events=tuple(events[customer_id]),
            reachable_channels=frozenset(reachable),
            timezone=customer.timezone,
            segment_keys=frozenset(memberships[customer_id]),
            snapshot=snapshots.get(customer_id),
        )
    return facts
