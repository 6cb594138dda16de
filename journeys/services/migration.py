"""Moving customers who are inside an older version onto a newer one, by an explicit map
from the steps they wait at to steps of the new version."""

import datetime as dt
from dataclasses import replace

from django.db import transaction

from journeys import clock
from journeys.engine import Problem, State
from journeys.engine.conditions import MISSING, path_get
from journeys.engine.core import Awaiting
from journeys.engine.graph import normalize_graph, steps_by_id
from journeys.models import Enrolment, EnrolmentTransition, Journey, JourneyVersion

MIGRATE_BATCH = 500


class InvalidMigration(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.step}: {p.message}" for p in problems))


def migration_problems(
    *, source: JourneyVersion, target: JourneyVersion, step_map: dict
) -> list[Problem]:
    """Every reason the map cannot move the customers now waiting in ``source``."""
    if source.journey_id != target.journey_id:
        return [Problem(None, "to_version", "belongs to another journey")]
    if source.pk == target.pk:
        return [Problem(None, "to_version", "is the version they are on")]
    old = steps_by_id(normalize_graph(source.graph))
    new = steps_by_id(normalize_graph(target.graph))
    problems = []
    for step_id, target_id in step_map.items():
        if step_id not in old:
            problems.append(Problem(step_id, "step_map", f"v{source.number} has no such step"))
        elif target_id not in new:
            problems.append(
                Problem(step_id, "step_map", f"v{target.number} has no step {target_id!r}")
            )
        elif old[step_id]["kind"] != new[target_id]["kind"]:
            problems.append(
                Problem(
                    step_id,
                    "step_map",
                    f"a {old[step_id]['kind']} step cannot map to the "
                    f"{new[target_id]['kind']} step {target_id!r}",
                )
            )
    occupied = (
        Enrolment.objects.filter(version=source, status__in=Enrolment.RUNNING)
        .values_list("current_step", flat=True)
        .distinct()
    )
    for step_id in sorted(set(occupied) - set(step_map)):
        problems.append(
            Problem(step_id, "step_map", "customers wait here: map it to a step of the new version")
        )
    return problems


def journey_migrate(
    *,
    journey: Journey,
    from_number: int,
    to_number: int,
    step_map: dict[str, str],
    now: dt.datetime | None = None,
) -> int:
    """Move every running enrolment of version ``from_number`` to ``to_number``; waits keep
    their due time. Raises ``InvalidMigration`` (nothing moved) when the map is not valid."""
    versions = {v.number: v for v in journey.versions.filter(number__in=[from_number, to_number])}
    missing = [n for n in (from_number, to_number) if n not in versions]
    if missing:
        raise InvalidMigration(
            [Problem(None, "version", f"journey has no version {n}") for n in missing]
        )
    source, target = versions[from_number], versions[to_number]
    problems = migration_problems(source=source, target=target, step_map=step_map)
    if problems:
        raise InvalidMigration(problems)
    new_steps = steps_by_id(normalize_graph(target.graph))
    now = now or clock.now()
    moved = 0
    while True:
        with transaction.atomic():
            batch = list(
                Enrolment.objects.select_for_update(skip_locked=True)
                .filter(version=source, status__in=Enrolment.RUNNING)
                .order_by("pk")[:MIGRATE_BATCH]
            )
            for enrolment in batch:
                _move(enrolment, target, new_steps[step_map[enrolment.current_step]], now)
            moved += len(batch)
        if len(batch) < MIGRATE_BATCH:
            return moved


def _move(enrolment: Enrolment, target: JourneyVersion, step: dict, now: dt.datetime) -> None:
    state = State.from_json(enrolment.state)
    awaiting = None
    if step["kind"] == "wait_for_event":
        config = step["config"]
        correlation = config.get("correlation") or {}
        awaiting = Awaiting(event=config["event"])
        if correlation.get("property"):
            value = path_get(
                state.payload, correlation.get("trigger_property") or correlation["property"]
            )
            awaiting = Awaiting(
                config["event"], correlation["property"], None if value is MISSING else value
            )
    visits = {**state.visits, step["id"]: state.visits.get(step["id"], 0) + 1}
    state = replace(state, step=step["id"], awaiting=awaiting, visits=visits)
    EnrolmentTransition.objects.create(
        enrolment=enrolment,
        from_step=enrolment.current_step,
        to_step=step["id"],
        reason="migrated",
        data={"to_version": target.number},
        actor="migration",
        created_at=now,
    )
    enrolment.version = target
    enrolment.current_step = step["id"]
    enrolment.awaited_event = awaiting.event if awaiting else ""
    enrolment.state = state.to_json()
    enrolment.save(update_fields=["version", "current_step", "awaited_event", "state"])
