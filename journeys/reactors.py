"""What journeys do with newly ingested events (registered in JourneysConfig.ready()).

Runs inside the hand-over transaction, so enrolments started or moved here commit with the
hand-over and each event reaches journeys once. Order for a batch: resume enrolments
waiting for the events, apply exit criteria, record goals, then start journeys.
"""

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Q

from journeys import clock
from journeys.engine import EventReceived
from journeys.engine.graph import trigger_matches
from journeys.models import Enrolment
from journeys.selectors import journey_index
from journeys.services.enrolments import (
    EnrolmentRefused,
    Entry,
    enrolments_exit,
    journeys_enrol_many,
)
from journeys.services.runner import enrolment_record, enrolments_advance

logger = logging.getLogger(__name__)


def on_events(events: Sequence, *, now: dt.datetime | None = None) -> None:
    """``now`` is the journeys clock unless a replay (the demo) says when these happened."""
    track = sorted(
        (event for event in events if event.type == "track" and event.name),
        key=lambda event: (event.timestamp, event.pk),
    )
    if not track:
        return
    now = now or clock.now()
    index = journey_index()
    # Normally inside the hand-over's transaction already; atomic so it never runs without.
    with transaction.atomic():
        _resume_waiting(track, now)
        _apply_exit_criteria(track, index, now)
        _record_goals(track, index, now)
        _start_journeys(track, index, now)


def _locked_running():
    return Enrolment.objects.select_for_update(of=("self",)).select_related("customer")


def _resume_waiting(track, now: dt.datetime) -> None:
    by_customer = defaultdict(list)
    for event in track:
        by_customer[event.customer_id].append(event)
    waiting = list(
        _locked_running()
        .filter(
            status="waiting",
            customer_id__in=by_customer,
            awaited_event__in={event.name for event in track},
            journey_paused=False,
        )
        .order_by("pk")
    )
    items = [
        (enrolment, EventReceived(event.name, event.properties, str(event.pk)))
        for enrolment in waiting
        for event in by_customer[enrolment.customer_id]
    ]
    enrolments_advance(items=items, now=now, actor="event")


def _apply_exit_criteria(track, index, now: dt.datetime) -> None:
    pairs = {
        (journey_id, event.customer_id): (
            f"left segment {segment_key}" if segment_key else f"exit event {event.name}"
        )
        for event in track
        for journey_id, segment_key in index.exits.get(event.name, ())
        if segment_key is None or event.properties.get("segment_key") == segment_key
    }
    if not pairs:
        return
    match = Q()
    for journey_id, customer_id in pairs:
        match |= Q(journey_id=journey_id, customer_id=customer_id)
    running = list(_locked_running().filter(match, status__in=Enrolment.RUNNING).order_by("pk"))
    for enrolment in running:
        reason = pairs[(enrolment.journey_id, enrolment.customer_id)]
        enrolments_exit(enrolments=[enrolment], reason=reason, now=now, actor="exit")


def _record_goals(track, index, now: dt.datetime) -> None:
    # The goal window runs on the event's own time (its ``timestamp``, sentAt-corrected),
    # not on when it reached us: a mobile batch delivered a day late still counts in the
    # window it happened in. Placed on the journeys clock (real time plus its offset, which
    # only tests and the demo move) to compare with ``entered_at``.
    offset = clock.offset()
    for event in track:
        for journey_id, window_hours in index.goals.get(event.name, ()):
            happened = min(event.timestamp + offset, now)
            # Never credited for an event that happened before the customer entered.
            entered = Q(entered_at__lte=happened)
            if window_hours is not None:
                entered &= Q(entered_at__gte=happened - dt.timedelta(hours=window_hours))
            enrolment = (
                _locked_running()
                .filter(entered, journey_id=journey_id, customer_id=event.customer_id)
                .filter(converted_at=None)
                .order_by("-entered_at")
                .first()
            )
            if enrolment is None:
                continue
            Enrolment.objects.filter(pk=enrolment.pk).update(converted_at=happened)
            if enrolment.is_running:
                enrolments_exit(
                    enrolments=[enrolment], reason="goal", now=now, actor="goal", converted=True
                )
            else:
                enrolment_record(
                    enrolment=enrolment,
                    reason="goal",
                    now=now,
                    actor="goal",
                    data={"event_id": event.pk},
                )


def _start_journeys(track, index, now: dt.datetime) -> None:
    candidates = [
        (event, journey_id)
        for event in track
        for journey_id, trigger in index.starts.get(event.name, ())
        if trigger_matches(trigger, event_name=event.name, properties=event.properties)
    ]
    if not candidates:
        return
    outcomes = journeys_enrol_many(
        entries=[
            Entry(journey_id=journey_id, customer=event.customer, payload=event.properties)
            for event, journey_id in candidates
        ],
        now=now,
        actor="event",
    )
    for (event, journey_id), outcome in zip(candidates, outcomes, strict=True):
        if isinstance(outcome, EnrolmentRefused):
            logger.debug(
                "journey entry refused",
                extra={
                    "journey_id": journey_id,
                    "customer_id": event.customer_id,
                    "code": outcome.code,
                },
            )
