"""A journey version's graph: the JSON schema (docs/journeys.md), its validation and the
pure helpers the engine and the trigger index use.

A graph is ``{"schema": 1, "steps": [step, ...]}``; a step is
``{"id": str, "kind": str, "config": {...}, "exits": {exit name: step id}}``.
"""

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from consent.channels import Channel
from journeys.engine.conditions import filters_match, validate_filter

SCHEMA_VERSION = 1
# consent.channels imports no models, so the pure core may use it.
CHANNELS = tuple(Channel.values)
TRIGGER_TYPES = ("event", "segment", "date_trait", "api")
WAIT_KINDS = ("wait", "wait_for_event")
FIXED_EXITS = {
    "trigger": ("next",),
    "wait": ("next",),
    "wait_for_event": ("event", "timeout"),
    "condition": ("yes", "no"),
    "send": ("next",),
    "send_best_channel": ("next",),
    "update_profile": ("next",),
    "webhook": ("next",),
    "exit": (),
}
KINDS = (*FIXED_EXITS, "split")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DURATION_UNITS = ("days", "hours", "minutes", "seconds")
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Problem:
    """One reason a graph cannot be published, named by its step and field."""

    step: str | None
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"step": self.step, "field": self.field, "message": self.message}


class InvalidGraph(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{p.step or 'graph'}: {p.field}: {p.message}" for p in problems)
        )


# Reading a graph -------------------------------------------------------------------------


def steps_by_id(graph: dict) -> dict[str, dict]:
    return {step["id"]: step for step in graph["steps"]}


def entry_step(graph: dict) -> dict:
    return next(step for step in graph["steps"] if step["kind"] == "trigger")


def exit_names(step: dict) -> tuple[str, ...]:
    if step["kind"] == "split":
        return tuple(branch["name"] for branch in step["config"]["branches"])
    return FIXED_EXITS[step["kind"]]


def duration(config: dict) -> dt.timedelta:
    return dt.timedelta(**{unit: config.get(unit, 0) for unit in DURATION_UNITS})


def next_weekday_time(
    now: dt.datetime, *, weekdays: Iterable[str], time_of_day: str, timezone: str
) -> dt.datetime:
    """The first moment after ``now`` that is one of ``weekdays`` at ``time_of_day`` in the
    customer's zone (UTC when the zone is unknown), as an aware UTC datetime."""
    try:
        zone = ZoneInfo(timezone) if timezone else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    hour, minute = (int(part) for part in time_of_day.split(":"))
    wanted = {WEEKDAYS.index(day) for day in weekdays}
    local_now = now.astimezone(zone)
    for days_ahead in range(8):
        day = local_now.date() + dt.timedelta(days=days_ahead)
        if day.weekday() not in wanted:
            continue
        candidate = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)
        # Round-trip through UTC so a time inside a DST gap lands on a real instant.
        candidate = candidate.astimezone(dt.UTC)
        if candidate > now:
            return candidate
    raise AssertionError("a weekday in the next eight days always matches")


# The segments app tells of membership changes with these events (``segment_key`` property).
SEGMENT_EVENTS = {"entered": "Segment Entered", "left": "Segment Exited"}


def trigger_event_name(config: dict) -> str | None:
    """The event name that can start a journey with this trigger, if any."""
    if config.get("type") == "event":
        return config.get("event")
    if config.get("type") == "segment":
        return SEGMENT_EVENTS.get(config.get("on"))
    return None


def trigger_matches(config: dict, *, event_name: str, properties: dict) -> bool:
    """Whether an event starts a journey with this trigger (an event or segment trigger)."""
    if config.get("type") == "segment":
        return SEGMENT_EVENTS.get(config.get("on")) == event_name and properties.get(
            "segment_key"
        ) == config.get("segment")
    return (
        config.get("type") == "event"
        and config.get("event") == event_name
        and filters_match(config.get("filters", []), properties)
    )


# Validation -------------------------------------------------------------------------------


def validate_graph(graph: Any, *, conditions, templates=None) -> list[Problem]:
    """Every problem that stops this graph from being published; empty when it is valid.

    ``conditions`` validates condition rules (``journeys.ports.ConditionEvaluator``);
    ``templates`` (a ``TemplateCatalog``) checks that each template exists on its channel,
    and is skipped when ``None``.
    """
    shape = _validate_shape(graph)
    if shape:
        return shape
    graph = normalize_graph(graph)
    problems: list[Problem] = []
    for step in graph["steps"]:
        problems.extend(_validate_config(step, conditions=conditions, templates=templates))
    if problems:
        # Exits of a split come from its config: check the structure once configs are sound.
        return problems
    problems.extend(_validate_structure(graph))
    return problems


def _validate_shape(graph: Any) -> list[Problem]:
    if not isinstance(graph, dict):
        return [Problem(None, "graph", "must be an object with schema and steps")]
    problems = []
    if graph.get("schema") != SCHEMA_VERSION:
        problems.append(Problem(None, "schema", f"must be {SCHEMA_VERSION}"))
    steps = graph.get("steps")
    if not isinstance(steps, list) or not steps:
        return [*problems, Problem(None, "steps", "must be a non-empty list of steps")]
    seen: set[str] = set()
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if not isinstance(step, dict):
            problems.append(Problem(None, where, "must be an object"))
            continue
        step_id = step.get("id")
        if not isinstance(step_id, str) or not step_id:
            problems.append(Problem(None, f"{where}.id", "must be a non-empty string"))
            continue
        if step_id in seen:
            problems.append(Problem(step_id, "id", "is used by more than one step"))
        seen.add(step_id)
        if step.get("kind") not in KINDS:
            problems.append(Problem(step_id, "kind", f"must be one of {', '.join(KINDS)}"))
        if not isinstance(step.get("config", {}), dict):
            problems.append(Problem(step_id, "config", "must be an object"))
        exits = step.get("exits", {})
        if not isinstance(exits, dict) or not all(isinstance(t, str) for t in exits.values()):
            problems.append(Problem(step_id, "exits", "must map exit names to step ids"))
        unknown = set(step) - {"id", "kind", "config", "exits", "label", "position"}
        if unknown:
            problems.append(Problem(step_id, "step", f"unknown keys: {', '.join(sorted(unknown))}"))
    return problems


def normalize_graph(graph: dict) -> dict:
    """A copy with the optional ``config`` and ``exits`` of each step filled in."""
    return {
        **graph,
        "steps": [
            {**step, "config": step.get("config", {}), "exits": step.get("exits", {})}
            for step in graph["steps"]
        ],
    }


def _validate_structure(graph: dict) -> list[Problem]:
    problems: list[Problem] = []
    steps = steps_by_id(graph)
    triggers = [step_id for step_id, step in steps.items() if step["kind"] == "trigger"]
    if len(triggers) != 1:
        problems.append(
            Problem(
                None,
                "steps",
                f"must have exactly one trigger step (the entry), found {len(triggers)}"
                + (f": {', '.join(triggers)}" if triggers else ""),
            )
        )
    for step_id, step in steps.items():
        expected = exit_names(step)
        for name in expected:
            if name not in step["exits"]:
                problems.append(Problem(step_id, f"exits.{name}", "is missing"))
        for name, target in step["exits"].items():
            if name not in expected:
                problems.append(
                    Problem(
                        step_id,
                        f"exits.{name}",
                        f"is not an exit of a {step['kind']} step"
                        + (f" (its exits: {', '.join(expected)})" if expected else ""),
                    )
                )
            elif target not in steps:
                problems.append(Problem(step_id, f"exits.{name}", f"no step has id {target!r}"))
            elif steps[target]["kind"] == "trigger":
                problems.append(
                    Problem(step_id, f"exits.{name}", "cannot lead back to the trigger")
                )
    if problems:
        return problems

    edges = {step_id: list(step["exits"].values()) for step_id, step in steps.items()}
    reachable = _reachable(edges, triggers[0])
    for step_id in steps:
        if step_id not in reachable:
            problems.append(Problem(step_id, "id", "is not reachable from the trigger"))

    reverse: dict[str, list[str]] = {step_id: [] for step_id in steps}
    for source, targets in edges.items():
        for target in targets:
            reverse[target].append(source)
    reaches_exit: set[str] = set()
    for step_id, step in steps.items():
        if step["kind"] == "exit":
            reaches_exit |= _reachable(reverse, step_id)
    for step_id in steps:
        if step_id in reachable and step_id not in reaches_exit:
            problems.append(Problem(step_id, "exits", "no path from this step ends at an exit"))

    # A loop that never waits would spin in one call: every cycle must contain a wait.
    instant = {
        step_id: [t for t in targets if steps[t]["kind"] not in WAIT_KINDS]
        for step_id, targets in edges.items()
        if steps[step_id]["kind"] not in WAIT_KINDS
    }
    for cycle_step in _steps_on_cycles(instant):
        problems.append(
            Problem(cycle_step, "exits", "is on a loop that does not pass through a wait")
        )
    return problems


def _reachable(edges: dict[str, list[str]], start: str) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for target in edges.get(stack.pop(), []):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _steps_on_cycles(edges: dict[str, list[str]]) -> list[str]:
    """Steps lying on a cycle, in graph order (a step is on one when it reaches itself)."""
    return [
        step_id
        for step_id, targets in edges.items()
        if any(step_id in _reachable(edges, target) for target in targets)
    ]


def validate_step_config(step: dict, *, conditions, templates=None) -> list[Problem]:
    """The problems of one step's own settings (not of its place in the graph)."""
    step = {**step, "config": step.get("config", {}), "exits": step.get("exits", {})}
    return _validate_config(step, conditions=conditions, templates=templates)


def _duration_problems(step_id: str, field: str, value: Any) -> list[Problem]:
    if not isinstance(value, dict) or not value:
        return [Problem(step_id, field, f"must be an object of {', '.join(DURATION_UNITS)}")]
    problems = []
    for unit, amount in value.items():
        if unit not in DURATION_UNITS:
            problems.append(Problem(step_id, f"{field}.{unit}", "is not a unit of time"))
        elif not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            problems.append(Problem(step_id, f"{field}.{unit}", "must be a whole number ≥ 0"))
    if not problems and duration(value) <= dt.timedelta(0):
        problems.append(Problem(step_id, field, "must be longer than zero"))
    return problems


def _non_empty_string(config: dict, key: str) -> bool:
    return isinstance(config.get(key), str) and bool(config[key].strip())


def _validate_config(step: dict, *, conditions, templates) -> list[Problem]:
    step_id, kind, config = step["id"], step["kind"], step["config"]
    problems: list[Problem] = []

    def need_string(key: str) -> None:
        if not _non_empty_string(config, key):
            problems.append(Problem(step_id, f"config.{key}", "must be a non-empty string"))

    def check_template(channel_key: str, template_key: str, channel: Any, template: Any) -> None:
        if channel not in CHANNELS:
            problems.append(Problem(step_id, channel_key, f"must be one of {', '.join(CHANNELS)}"))
            return
        if not isinstance(template, int) or isinstance(template, bool):
            problems.append(Problem(step_id, template_key, "must be a template id"))
            return
        if templates is not None:
            actual = templates.channel_of(template)
            if actual is None:
                problems.append(Problem(step_id, template_key, f"no template has id {template}"))
            elif actual != channel:
                problems.append(
                    Problem(
                        step_id,
                        template_key,
                        f"template {template} is a {actual} template, not {channel}",
                    )
                )

    if kind == "trigger":
        trigger_type = config.get("type")
        if trigger_type not in TRIGGER_TYPES:
            problems.append(
                Problem(step_id, "config.type", f"must be one of {', '.join(TRIGGER_TYPES)}")
            )
        elif trigger_type == "event":
            need_string("event")
            filters = config.get("filters", [])
            if not isinstance(filters, list):
                problems.append(Problem(step_id, "config.filters", "must be a list of filters"))
            else:
                for index, item in enumerate(filters):
                    for field, message in validate_filter(item, f"config.filters[{index}]"):
                        problems.append(Problem(step_id, field, message))
        elif trigger_type == "segment":
            need_string("segment")
            if config.get("on") not in ("entered", "left"):
                problems.append(Problem(step_id, "config.on", "must be entered or left"))
        elif trigger_type == "date_trait":
            need_string("trait")
            offset = config.get("offset_days")
            if not isinstance(offset, int) or isinstance(offset, bool):
                problems.append(
                    Problem(
                        step_id,
                        "config.offset_days",
                        "must be a whole number of days (negative: before the date)",
                    )
                )
            if not isinstance(config.get("annual", False), bool):
                problems.append(
                    Problem(step_id, "config.annual", "must be true (every year) or false")
                )
    elif kind == "wait":
        if ("duration" in config) == ("until" in config):
            problems.append(Problem(step_id, "config", "must have either duration or until"))
        elif "duration" in config:
            problems.extend(_duration_problems(step_id, "config.duration", config["duration"]))
        else:
            until = config["until"]
            if not isinstance(until, dict):
                problems.append(Problem(step_id, "config.until", "must be an object"))
            else:
                weekdays = until.get("weekdays")
                if (
                    not isinstance(weekdays, list)
                    or not weekdays
                    or any(day not in WEEKDAYS for day in weekdays)
                ):
                    problems.append(
                        Problem(
                            step_id,
                            "config.until.weekdays",
                            f"must be a non-empty list of {', '.join(WEEKDAYS)}",
                        )
                    )
                if not isinstance(until.get("time"), str) or not _TIME_OF_DAY.match(until["time"]):
                    problems.append(
                        Problem(step_id, "config.until.time", "must be a time of day as HH:MM")
                    )
    elif kind == "wait_for_event":
        need_string("event")
        problems.extend(_duration_problems(step_id, "config.timeout", config.get("timeout")))
        correlation = config.get("correlation")
        if correlation is not None:
            if not isinstance(correlation, dict) or not _non_empty_string(correlation, "property"):
                problems.append(
                    Problem(
                        step_id,
                        "config.correlation.property",
                        "must name the event property to match against the trigger's payload",
                    )
                )
            elif "trigger_property" in correlation and not _non_empty_string(
                correlation, "trigger_property"
            ):
                problems.append(
                    Problem(
                        step_id, "config.correlation.trigger_property", "must be a property name"
                    )
                )
    elif kind == "condition":
        if "rule" not in config:
            problems.append(Problem(step_id, "config.rule", "is required"))
        else:
            for field, message in conditions.validate(config["rule"], "config.rule"):
                problems.append(Problem(step_id, field, message))
    elif kind == "split":
        branches = config.get("branches")
        if not isinstance(branches, list) or len(branches) < 2:
            problems.append(
                Problem(step_id, "config.branches", "must be a list of at least two branches")
            )
        else:
            names = set()
            for index, branch in enumerate(branches):
                where = f"config.branches[{index}]"
                if not isinstance(branch, dict) or not _non_empty_string(branch, "name"):
                    problems.append(Problem(step_id, f"{where}.name", "must be a non-empty string"))
                    continue
                if branch["name"] in names:
                    problems.append(Problem(step_id, f"{where}.name", "is used twice"))
                names.add(branch["name"])
                weight = branch.get("weight")
                if (
                    not isinstance(weight, int | float)
                    or isinstance(weight, bool)
                    or not weight > 0
                    or weight != weight
                    or weight == float("inf")
                ):
                    problems.append(Problem(step_id, f"{where}.weight", "must be a number > 0"))
                if not isinstance(branch.get("holdout", False), bool):
                    problems.append(Problem(step_id, f"{where}.holdout", "must be true or false"))
    elif kind == "send":
        check_template(
            "config.channel", "config.template", config.get("channel"), config.get("template")
        )
        if not _non_empty_string(config, "topic"):
            problems.append(
                Problem(step_id, "config.topic", "must be a consent topic key, e.g. news")
            )
    elif kind == "send_best_channel":
        options = config.get("channels")
        if not isinstance(options, list) or not options:
            problems.append(
                Problem(
                    step_id,
                    "config.channels",
                    "must be a non-empty list of {channel, template}, best first",
                )
            )
        else:
            seen_channels = set()
            for index, option in enumerate(options):
                where = f"config.channels[{index}]"
                if not isinstance(option, dict):
                    problems.append(Problem(step_id, where, "must be an object"))
                    continue
                if option.get("channel") in seen_channels:
                    problems.append(Problem(step_id, f"{where}.channel", "is listed twice"))
                seen_channels.add(option.get("channel"))
                check_template(
                    f"{where}.channel",
                    f"{where}.template",
                    option.get("channel"),
                    option.get("template"),
                )
        if not _non_empty_string(config, "topic"):
            problems.append(
                Problem(step_id, "config.topic", "must be a consent topic key, e.g. news")
            )
    elif kind == "update_profile":
        to_set = config.get("set", {})
        to_unset = config.get("unset", [])
        if not isinstance(to_set, dict):
            problems.append(Problem(step_id, "config.set", "must be an object of traits"))
        if not isinstance(to_unset, list) or not all(
            isinstance(name, str) and name for name in to_unset
        ):
            problems.append(Problem(step_id, "config.unset", "must be a list of trait names"))
        if not problems and not to_set and not to_unset:
            problems.append(Problem(step_id, "config", "must set or unset at least one trait"))
        if not problems and set(to_set) & set(to_unset):
            problems.append(Problem(step_id, "config.unset", "names a trait that is also set"))
    elif kind == "webhook":
        check_template("config.channel", "config.template", "webhook", config.get("template"))
        if "topic" in config and not _non_empty_string(config, "topic"):
            problems.append(Problem(step_id, "config.topic", "must be a topic key"))
        if not isinstance(config.get("body", {}), dict):
            problems.append(Problem(step_id, "config.body", "must be an object"))
    elif kind == "exit" and not isinstance(config.get("reason", ""), str):
        problems.append(Problem(step_id, "config.reason", "must be a string"))
    return problems
