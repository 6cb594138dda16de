"""Entering a journey, leaving it, and reaching its goal."""

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
from django.db import IntegrityError, connection, transaction

from customers.models import Customer
from journeys import clock
from journeys.engine import Enrol, ExitRequested
from journeys.engine.core import State, Status, split_draw
from journeys.models import Enrolment, Journey
from journeys.services.runner import enrolments_advance, insert_transitions


class EnrolmentRefused(Exception):
    """The customer may not enter now; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def journey_enrol(
    *,
    journey: Journey,
    customer: Customer,
    payload: dict | None = None,
    now: dt.datetime | None = None,
    actor: str = "api",
) -> Enrolment:
    """Enter the customer in the journey's live version and run it to its first wait.

    Raises ``EnrolmentRefused`` when the journey is not live or its entry policy says no.
    """
    try:
        (outcome,) = journeys_enrol_many(
            entries=[Entry(journey_id=journey.pk, customer=customer, payload=payload or {})],
            now=now,
            actor=actor,
        )
    except IntegrityError as error:
        if "enrolment_once_at_a_time" in str(error):
            raise EnrolmentRefused("already_enrolled", "the customer is in this journey") from None
        raise
    if isinstance(outcome, EnrolmentRefused):
        raise outcome
    return outcome


@dataclass(frozen=True)
class Entry:
    """One customer asking to enter one journey, with the trigger's payload."""

    journey_id: int
    customer: Customer
    payload: dict = field(default_factory=dict)


def journeys_enrol_many(
    *, entries: Sequence[Entry], now: dt.datetime | None = None, actor: str = "event"
) -> list[Enrolment | EnrolmentRefused]:
    """Enter many customers into journeys at once and run each to its first wait.

    Returns, for each entry in order, the new enrolment or the refusal. The entry policy
    is decided exactly as one at a time would: in order, under a lock on each customer
    (taken in id order, so two batches never deadlock), an entry seeing the enrolments of
    the entries before it in the same batch. The work is a fixed number of statements
    whatever the batch size: the policy checks in one query, the enrolments in one
    INSERT, then the runner's batch (transition rows, outbox messages, one dispatch).
    """
    if not entries:
        return []
    now = now or clock.now()
    outcomes: list[Enrolment | EnrolmentRefused | None] = [None] * len(entries)
    with transaction.atomic():
        customer_ids = sorted({entry.customer.pk for entry in entries})
        # One customer's entries into journeys are decided one at a time.
        list(
            Customer.objects.select_for_update()
            .filter(pk__in=customer_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        journeys = Journey.objects.select_related("live_version").in_bulk(
            {entry.journey_id for entry in entries}
        )
        latest = _latest_enrolments(journeys, customer_ids)
        # An entry repeated in the batch (the same customer and journey) waits for the
        # round after the one before it has run, so it sees where that one ended.
        rounds: list[list[int]] = []
        seen: dict[tuple[int, int], int] = defaultdict(int)
        for position, entry in enumerate(entries):
            key = (entry.journey_id, entry.customer.pk)
            if seen[key] == len(rounds):
                rounds.append([])
            rounds[seen[key]].append(position)
            seen[key] += 1
        for positions in rounds:
            _enrol_round(entries, positions, journeys, latest, outcomes, now, actor)
    return outcomes


def _enrol_round(entries, positions, journeys, latest, outcomes, now, actor) -> None:
    admitted = []
    for position in positions:
        entry = entries[position]
        journey = journeys.get(entry.journey_id)
        refusal = _refusal(journey, latest.get((entry.journey_id, entry.customer.pk)), now)
        if refusal is not None:
            outcomes[position] = refusal
        else:
            admitted.append(position)
    if not admitted:
        return
    ids = _reserve_ids(len(admitted))
    enrolments = []
    for position, enrolment_id in zip(admitted, ids, strict=True):
        entry = entries[position]
        journey = journeys[entry.journey_id]
        state = State(
            str(enrolment_id),
            seed=split_seed(journey_id=journey.pk, customer_id=entry.customer.pk),
        ).to_json()
        held_out = _held_out(journey, enrolment_id)
        enrolment = Enrolment(
            pk=enrolment_id,
            journey=journey,
            version_id=journey.live_version_id,
            customer=entry.customer,
            entered_at=now,
            trigger_payload=entry.payload,
            state=state,
            holdout=held_out,
            status=Status.EXITED if held_out else Status.ACTIVE,
            finished_at=now if held_out else None,
        )
        enrolments.append(enrolment)
        outcomes[position] = enrolment
    _insert_enrolments(enrolments)
    insert_transitions(
        [
            {
                "enrolment_id": enrolment.pk,
                "from_step": "",
                "to_step": "",
                "reason": "holdout",
                "data": {},
                "actor": actor,
                "created_at": now,
            }
            for enrolment in enrolments
            if enrolment.holdout
        ]
    )
    enrolments_advance(
        items=[
            (enrolment, Enrol(enrolment.trigger_payload, timezone=enrolment.customer.timezone))
            for enrolment in enrolments
            if not enrolment.holdout
        ],
        now=now,
        actor=actor,
    )
    for enrolment in enrolments:
        latest[(enrolment.journey_id, enrolment.customer_id)] = (
            enrolment.status,
            enrolment.entered_at,
        )


# One statement for the whole batch, its rows sent as one JSON document: bulk_create
# quotes every JSON value inside a parameter array, which costs more than the INSERT.
_INSERT_ENROLMENTS = """
    INSERT INTO journeys_enrolment
        (id, journey_id, version_id, customer_id, status, current_step, wake_at,
         awaited_event, trigger_payload, journey_paused, holdout, entered_at, finished_at,
         converted_at, state)
    SELECT v.id, v.journey_id, v.version_id, v.customer_id, v.status, '', NULL, '',
           v.trigger_payload, false, v.holdout, v.entered_at, v.finished_at, NULL, v.state
    FROM jsonb_to_recordset(%s::jsonb) AS v(
        id bigint, journey_id bigint, version_id bigint, customer_id bigint, status text,
        trigger_payload jsonb, holdout boolean, entered_at timestamptz,
        finished_at timestamptz, state jsonb)
"""


def _insert_enrolments(enrolments: list[Enrolment]) -> None:
    rows = [
        {
            "id": e.pk,
            "journey_id": e.journey_id,
            "version_id": e.version_id,
            "customer_id": e.customer_id,
            "status": e.status,
            "trigger_payload": e.trigger_payload,
            "holdout": e.holdout,
            "entered_at": e.entered_at,
            "finished_at": e.finished_at,
            "state": e.state,
        }
        for e in enrolments
    ]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_ENROLMENTS, [orjson.dumps(rows).decode()])


def _reserve_ids(count: int) -> list[int]:
    """Enrolment ids taken from the table's sequence up front: the engine state and the
    holdout draw need the id, and so each row is written once, complete."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('journeys_enrolment', 'id')) "
            "FROM generate_series(1, %s)",
            [count],
        )
        return [row[0] for row in cursor.fetchall()]


def _latest_enrolments(journeys: dict, customer_ids: list[int]) -> dict:
    """(journey id, customer id) -> (status, entered_at) of the latest enrolment."""
    live = [pk for pk, journey in journeys.items() if journey.status == Journey.Status.LIVE]
    if not live:
        return {}
    rows = (
        Enrolment.objects.filter(journey_id__in=live, customer_id__in=customer_ids)
        .order_by("journey_id", "customer_id", "-entered_at", "-id")
        .distinct("journey_id", "customer_id")
        .values_list("journey_id", "customer_id", "status", "entered_at")
    )
    return {(journey_id, customer_id): rest for journey_id, customer_id, *rest in rows}


def split_seed(*, journey_id: int, customer_id: int) -> str:
    return f"journey-{journey_id}-customer-{customer_id}"


def _held_out(journey: Journey, enrolment_id: int) -> bool:
    share = Decimal(journey.holdout_share)
    return share > 0 and Decimal(split_draw(str(enrolment_id), "journey-holdout", 1)) < share


def _refusal(
    journey: Journey | None, previous: tuple | None, now: dt.datetime
) -> EnrolmentRefused | None:
    if journey is None:
        return EnrolmentRefused("not_live", "there is no such journey")
    if journey.status != Journey.Status.LIVE or journey.live_version is None:
        return EnrolmentRefused("not_live", f"the journey is {journey.status}, not live")
    if previous is None:
        return None
    status, entered_at = previous
    if status in Enrolment.RUNNING:
        return EnrolmentRefused("already_enrolled", "the customer is in this journey")
    if journey.entry_policy == Journey.EntryPolicy.ONCE:
        return EnrolmentRefused("entered_before", "this journey is entered once per customer")
    recently = now - dt.timedelta(days=journey.entry_period_days or 0)
    if journey.entry_policy == Journey.EntryPolicy.ONCE_PER_PERIOD and entered_at > recently:
        return EnrolmentRefused(
            "entered_recently",
            f"this journey is entered once per {journey.entry_period_days} days",
        )
    return None


def enrolments_exit(
    *, enrolments: list[Enrolment], reason: str, now: dt.datetime, actor: str, converted=False
) -> int:
    """End running (locked) enrolments, whatever step they are at, waits included."""
    return enrolments_advance(
        items=[(enrolment, ExitRequested(reason, converted=converted)) for enrolment in enrolments],
        now=now,
        actor=actor,
    )
