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


def journey_step_counts(*, journey: Journey) -> dict[str, dict[str, int]]:
    """Per step id, over every version: entered, waiting now, moved on."""
    from django.db.models import Count as CountOf

    counts: dict[str, dict[str, int]] = defaultdict(
        lambda: {"entered": 0, "waiting": 0, "moved_on": 0}
    )
    transitions = EnrolmentTransition.objects.filter(enrolment__journey=journey)
    for row in transitions.exclude(to_step="").values("to_step").annotate(n=CountOf("id")):
        counts[row["to_step"]]["entered"] += row["n"]
    for row in transitions.exclude(from_step="").values("from_step").annotate(n=CountOf("id")):
        counts[row["from_step"]]["moved_on"] += row["n"]
    waiting = (
        Enrolment.objects.filter(journey=journey, status="waiting")
        .values("current_step")
        .annotate(n=CountOf("id"))
    )
    for row in waiting:
        counts[row["current_step"]]["waiting"] += row["n"]
    for step_id, messages in journey_message_counts(journey=journey).items():
        counts[step_id].update(messages)
    return dict(counts)


# A message that reached a later status passed the earlier ones too.
_REACHED = {
    "sent": ("sent", "delivered", "opened", "clicked", "bounced", "complained"),
    "delivered": ("delivered", "opened", "clicked", "complained"),
    "opened": ("opened", "clicked"),
    "clicked": ("clicked",),
}


def journey_message_counts(*, journey: Journey) -> dict[str, dict[str, int]]:
    """Per step id: messages sent, delivered, opened and clicked (campaigns' outbox)."""
    from django.db.models import Count as CountOf
    from django.db.models import Q as Where

    from campaigns.models import Message

    rows = (
        Message.objects.filter(origin="journey", journey_id=journey.pk)
        .values("step_id")
        .annotate(
            **{
                name: CountOf("id", filter=Where(status__in=statuses))
                for name, statuses in _REACHED.items()
            }
        )
    )
    return {row.pop("step_id"): row for row in rows}


@dataclass(frozen=True)
class ConversionResult:
    label: str
    entered: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.entered if self.entered else None


def journey_results(*, journey: Journey) -> dict:
    """Conversion of the journey against its holdout (with a 95% interval of the lift, by
    the normal approximation), and per split branch."""
    import math

    from django.db.models import Count as CountOf
    from django.db.models import Q as Where

    def group(queryset, label):
        totals = queryset.aggregate(
            entered=CountOf("id"), converted=CountOf("id", filter=Where(converted_at__isnull=False))
        )
        return ConversionResult(label, totals["entered"], totals["converted"])

    enrolments = Enrolment.objects.filter(journey=journey)
    treated = group(enrolments.filter(holdout=False), "in the journey")
    held = group(enrolments.filter(holdout=True), "holdout")
    interval = None
    if treated.entered and held.entered:
        p1, p2 = treated.rate, held.rate
        error = math.sqrt(p1 * (1 - p1) / treated.entered + p2 * (1 - p2) / held.entered)
        interval = (p1 - p2 - 1.96 * error, p1 - p2 + 1.96 * error)
    branches = []
    branch_rows = (
        EnrolmentTransition.objects.filter(enrolment__journey=journey, data__has_key="branch")
        .values_list("from_step", "data__branch")
        .distinct()
    )
    for step_id, branch in sorted(branch_rows):
        members = enrolments.filter(
            transitions__from_step=step_id, transitions__data__branch=branch
        ).distinct()
        branches.append(group(members, f"{step_id} → {branch}"))
    return {"treated": treated, "holdout": held, "lift_interval": interval, "branches": branches}
