"""Read queries of the journeys app, and the event index the reactor uses."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Max, QuerySet

from journeys.engine.graph import (
    SEGMENT_EVENTS,
    entry_step,
    normalize_graph,
    trigger_event_name,
)
from journeys.models import Enrolment, EnrolmentTransition, Journey


@dataclass(frozen=True)
class JourneyIndex:
    """Which journeys an event name concerns, so the reactor never scans every journey."""

    # event name -> [(journey id, trigger config)] of live journeys with an event trigger
    starts: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)
    # event name -> [(journey id, segment key or None)] whose exit criteria name it (live or
    # paused); leaving a segment is the ``Segment Exited`` event of that segment
    exits: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)
    # event name -> [(journey id, window in hours or None)]
    goals: dict[str, list[tuple[int, int | None]]] = field(default_factory=dict)


_index: tuple[tuple, JourneyIndex] | None = None


def journey_index() -> JourneyIndex:
    """The index, rebuilt only when a journey changed: every change to a journey (status,
    publish, settings) moves its ``updated_at``, so (count, latest change) is its version."""
    global _index
    token = tuple(Journey.objects.aggregate(count=Count("id"), changed=Max("updated_at")).values())
    if _index is None or _index[0] != token:
        _index = (token, _build_index())
    return _index[1]


def _build_index() -> JourneyIndex:
    starts: dict[str, list] = defaultdict(list)
    exits: dict[str, list] = defaultdict(list)
    goals: dict[str, list] = defaultdict(list)
    journeys = Journey.objects.filter(
        status__in=[Journey.Status.LIVE, Journey.Status.PAUSED]
    ).select_related("live_version")
    for journey in journeys:
        for name in journey.exit_events:
            exits[name].append((journey.pk, None))
        for segment_key in journey.exit_segments:
            exits[SEGMENT_EVENTS["left"]].append((journey.pk, segment_key))
        if journey.goal_event:
            goals[journey.goal_event].append((journey.pk, journey.goal_window_hours))
        if journey.status == Journey.Status.LIVE and journey.live_version is not None:
            trigger = entry_step(normalize_graph(journey.live_version.graph))["config"]
            name = trigger_event_name(trigger)
            if name:
                starts[name].append((journey.pk, trigger))
    return JourneyIndex(dict(starts), dict(exits), dict(goals))


def journey_list() -> QuerySet[Journey]:
    return Journey.objects.select_related("live_version").order_by("name")


def enrolment_get(*, enrolment_id: int) -> Enrolment | None:
    return (
        Enrolment.objects.select_related("journey", "version", "customer")
        .filter(pk=enrolment_id)
        .first()
    )


def enrolment_transitions(*, enrolment_id: int) -> QuerySet[EnrolmentTransition]:
    return EnrolmentTransition.objects.filter(enrolment_id=enrolment_id).order_by("id")
