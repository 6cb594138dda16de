"""Journey lifecycle: create, edit the draft, validate, publish, pause, resume, archive."""

import datetime as dt

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from journeys import clock
from journeys.engine import ExitRequested, InvalidGraph, Problem, validate_graph
from journeys.engine.graph import normalize_graph
from journeys.models import Enrolment, Journey, JourneyVersion
from journeys.ports import ports

ARCHIVE_BATCH = 500


class JourneyStateError(Exception):
    """A lifecycle action refused in the journey's current status."""


def journey_validate(*, graph) -> list[Problem]:
    return validate_graph(graph, conditions=ports.conditions, templates=ports.templates)


@transaction.atomic
def journey_create(
    *,
    name: str,
    description: str = "",
    graph: dict | None = None,
    entry_policy: str = Journey.EntryPolicy.AGAIN_AFTER_LEAVING,
    entry_period_days: int | None = None,
    exit_events: list[str] | None = None,
    exit_segments: list[str] | None = None,
    goal_event: str = "",
    goal_window_hours: int | None = None,
    holdout_share=0,
) -> Journey:
    journey = Journey(
        name=name,
        description=description,
        draft_graph=graph or {},
        entry_policy=entry_policy,
        entry_period_days=entry_period_days,
        exit_events=exit_events or [],
        exit_segments=exit_segments or [],
        goal_event=goal_event,
        goal_window_hours=goal_window_hours,
        holdout_share=holdout_share,
    )
    journey.full_clean()
    journey.save()
    return journey


@transaction.atomic
def journey_publish(*, journey: Journey, by: str = "") -> JourneyVersion:
    """Freeze the draft graph into a new immutable version that new entrants follow.

    Customers already inside stay on the version they entered. Raises ``InvalidGraph``
    with every problem when the draft cannot be published.
    """
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status == Journey.Status.ARCHIVED:
        raise JourneyStateError("an archived journey cannot be published")
    problems = journey_validate(graph=journey.draft_graph)
    if problems:
        raise InvalidGraph(problems)
    number = (journey.versions.aggregate(last=Max("number"))["last"] or 0) + 1
    version = JourneyVersion.objects.create(
        journey=journey,
        number=number,
        graph=normalize_graph(journey.draft_graph),
        published_at=clock.now(),
        published_by=by,
    )
    status = Journey.Status.LIVE if journey.status == Journey.Status.DRAFT else journey.status
    Journey.objects.filter(pk=journey.pk).update(
        live_version=version, status=status, updated_at=timezone.now()
    )
    return version


def _change_status(*, journey: Journey, allowed_from: tuple[str, ...], to: str) -> Journey:
    updated = Journey.objects.filter(pk=journey.pk, status__in=allowed_from).update(
        status=to, updated_at=timezone.now()
    )
    journey.refresh_from_db()
    if not updated:
        raise JourneyStateError(
            f"a {journey.status} journey cannot become {to} (only from {' or '.join(allowed_from)})"
        )
    return journey


@transaction.atomic
def journey_pause(*, journey: Journey) -> Journey:
    """Stop entries; waiting customers stay where they are until it resumes."""
    journey = _change_status(journey=journey, allowed_from=(Journey.Status.LIVE,), to="paused")
    Enrolment.objects.filter(journey=journey, status__in=Enrolment.RUNNING).update(
        journey_paused=True
    )
    return journey


@transaction.atomic
def journey_resume(*, journey: Journey, now: dt.datetime | None = None) -> Journey:
    """Take entries again. Customers waiting for an event that arrived during the pause
    take its ``event`` exit now (before their timers can fire); the rest wait on."""
    from journeys.services.paused_events import enrolments_take_paused_events

    journey = _change_status(journey=journey, allowed_from=(Journey.Status.PAUSED,), to="live")
    enrolments_take_paused_events(journey=journey, now=now)
    Enrolment.objects.filter(journey=journey, journey_paused=True).update(journey_paused=False)
    return journey


def journey_archive(*, journey: Journey, now: dt.datetime | None = None) -> Journey:
    """Close the journey for good; customers still inside leave it (reason ``archived``)."""
    from journeys.services.runner import enrolments_advance

    with transaction.atomic():
        journey = _change_status(
            journey=journey,
            allowed_from=(Journey.Status.DRAFT, Journey.Status.LIVE, Journey.Status.PAUSED),
            to=Journey.Status.ARCHIVED,
        )
    now = now or clock.now()
    while True:
        with transaction.atomic():
            running = list(
                Enrolment.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("customer")
                .filter(journey=journey, status__in=Enrolment.RUNNING)
                .order_by("pk")[:ARCHIVE_BATCH]
            )
            enrolments_advance(
                items=[(enrolment, ExitRequested("archived")) for enrolment in running],
                now=now,
                actor="archive",
            )
        if len(running) < ARCHIVE_BATCH:
            return journey


SETTINGS_FIELDS = (
    "description",
    "entry_policy",
    "entry_period_days",
    "exit_events",
    "exit_segments",
    "goal_event",
    "goal_window_hours",
    "holdout_share",
)


@transaction.atomic
def journey_update(*, journey: Journey, changes: dict) -> Journey:
    """Change the settings or the draft graph (published versions never change)."""
    unknown = set(changes) - {*SETTINGS_FIELDS, "name", "draft_graph"}
    if unknown:
        raise ValueError(f"not journey fields: {', '.join(sorted(unknown))}")
    journey = Journey.objects.select_for_update().get(pk=journey.pk)
    if journey.status == Journey.Status.ARCHIVED:
        raise JourneyStateError("an archived journey cannot be changed")
    for field, value in changes.items():
        setattr(journey, field, value)
    journey.full_clean()
    journey.save()
    return journey


def journey_export(*, journey: Journey) -> dict:
    """The journey as code: its settings and its draft graph (docs/journeys.md)."""
    return {
        "name": journey.name,
        **{field: getattr(journey, field) for field in SETTINGS_FIELDS},
        "holdout_share": float(journey.holdout_share),
        "graph": journey.draft_graph,
    }


@transaction.atomic
def journey_import(*, data: dict) -> tuple[Journey, bool]:
    """Create the journey of this name, or replace its settings and draft graph.

    ``data`` is validated already (the API's serializer). Publishing stays a separate step.
    """
    values = {field: data[field] for field in SETTINGS_FIELDS if field in data}
    journey = Journey.objects.select_for_update().filter(name=data["name"]).first()
    if journey is None:
        return journey_create(name=data["name"], graph=data["graph"], **values), True
    return journey_update(journey=journey, changes={**values, "draft_graph": data["graph"]}), False
