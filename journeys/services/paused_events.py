"""Events that waiting customers awaited while their journey was paused.

A paused journey does not consume events (the reactor skips its enrolments), but the
events are recorded. On resume, each enrolment that waits for an event looks among the
recorded events for the one it waited for — same name, same customer, the correlation
property matching, received after its wait started and before its timeout — and takes
the ``event`` exit with it, as it would have live. Without one, its timer fires as usual.
"""

import datetime as dt
from collections import defaultdict

from django.db.models import OuterRef, Subquery

from customers.models import Event
from journeys import clock
from journeys.engine import EventReceived, State
from journeys.engine.conditions import compare, path_get
from journeys.models import Enrolment, EnrolmentTransition, Journey
from journeys.services.runner import enrolments_advance

RESUME_BATCH = 500


def enrolments_take_paused_events(*, journey: Journey, now: dt.datetime | None = None) -> int:
    """Advance the paused, waiting enrolments of ``journey`` whose awaited event arrived
    during the pause; return how many moved. Call it inside the resume's transaction,
    before ``journey_paused`` is cleared, so no tick or event moves them meanwhile."""
    now = now or clock.now()
    # Events carry real time (received_at); waits run on the journeys clock.
    offset = clock.offset()
    moved = 0
    last_pk = 0
    while True:
        batch = list(
            Enrolment.objects.select_for_update(of=("self",))
            .select_related("customer")
            .filter(journey=journey, journey_paused=True, status="waiting", pk__gt=last_pk)
            .annotate(wait_started=_wait_started())
            .exclude(awaited_event="")
            .order_by("pk")[:RESUME_BATCH]
        )
        if not batch:
            return moved
        last_pk = batch[-1].pk
        items = _matches(batch, offset)
        enrolments_advance(items=items, now=now, actor="resume")
        moved += len(items)


def _matches(enrolments: list[Enrolment], offset: dt.timedelta) -> list:
    started = {e.pk: e.wait_started for e in enrolments if e.wait_started is not None}
    earliest = min(started.values(), default=None)
    if earliest is None:
        return []
    candidates: dict[tuple[int, str], list] = defaultdict(list)
    rows = (
        Event.objects.filter(
            customer_id__in={enrolment.customer_id for enrolment in enrolments},
            name__in={enrolment.awaited_event for enrolment in enrolments},
            type=Event.Type.TRACK,
            received_at__gt=earliest - offset,
        )
        .order_by("received_at", "pk")
        .values_list("pk", "customer_id", "name", "properties", "received_at")
    )
    for pk, customer_id, name, properties, received_at in rows:
        candidates[(customer_id, name)].append((pk, properties, received_at + offset))
    items = []
    for enrolment in enrolments:
        state = State.from_json(enrolment.state)
        awaiting, since = state.awaiting, started.get(enrolment.pk)
        if awaiting is None or since is None or enrolment.wake_at is None:
            continue
        for pk, properties, arrived in candidates[(enrolment.customer_id, awaiting.event)]:
            if not since < arrived <= enrolment.wake_at or str(pk) in state.seen_event_ids:
                continue
            if awaiting.property is not None and not compare(
                path_get(properties, awaiting.property), "eq", awaiting.value
            ):
                continue
            items.append((enrolment, EventReceived(awaiting.event, properties, str(pk))))
            break
    return items


def _wait_started() -> Subquery:
    """When the enrolment entered the step it waits at: its latest transition there."""
    return Subquery(
        EnrolmentTransition.objects.filter(
            enrolment_id=OuterRef("pk"), to_step=OuterRef("current_step")
        )
        .order_by("-id")
        .values("created_at")[:1]
    )
