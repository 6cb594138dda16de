"""The journey state machine: a pure function of the graph, the enrolment's state, one
input and the time. It reads no clock, database or network, so a replay of the same inputs
takes the same path (splits draw from a hash of enrolment, step and visit).
"""

import datetime as dt
import hashlib
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from journeys.engine.conditions import MISSING, BasicConditions, compare, path_get
from journeys.engine.facts import CustomerFacts
from journeys.engine.graph import duration, entry_step, next_weekday_time, steps_by_id

# A valid graph cannot loop without a wait; this only stops a broken one from spinning.
MAX_STEPS_PER_CALL = 1000
# A webhook to another system is no marketing message: the built-in consent topic.
WEBHOOK_TOPIC = "transactional"
# Event ids remembered per enrolment to ignore a redelivered event.
REMEMBERED_EVENT_IDS = 100


class Status(StrEnum):
    ACTIVE = "active"
    WAITING = "waiting"
    COMPLETED = "completed"
    EXITED = "exited"
    CONVERTED = "converted"
    FAILED = "failed"


FINISHED = frozenset({Status.COMPLETED, Status.EXITED, Status.CONVERTED, Status.FAILED})


@dataclass(frozen=True)
class Awaiting:
    event: str
    # When set, the event's ``property`` must equal ``value`` (taken from the trigger).
    property: str | None = None
    value: Any = None


@dataclass(frozen=True)
class State:
    enrolment_id: str
    status: Status = Status.ACTIVE
    step: str | None = None
    wake_at: dt.datetime | None = None
    awaiting: Awaiting | None = None
    visits: dict[str, int] = field(default_factory=dict)
    payload: dict = field(default_factory=dict)
    seen_event_ids: tuple[str, ...] = ()
    timezone: str = ""
    holdout: bool = False
    # What split draws hash with the step and visit (the enrolment id when empty). The
    # runner uses the journey and customer, so a dry run draws what the real run will.
    seed: str = ""

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def to_json(self) -> dict:
        return {
            "enrolment_id": self.enrolment_id,
            "status": str(self.status),
            "step": self.step,
            "wake_at": self.wake_at.isoformat() if self.wake_at else None,
            "awaiting": (
                {
                    "event": self.awaiting.event,
                    "property": self.awaiting.property,
                    "value": self.awaiting.value,
                }
                if self.awaiting
                else None
            ),
            "visits": dict(self.visits),
            "payload": self.payload,
            "seen_event_ids": list(self.seen_event_ids),
            "timezone": self.timezone,
            "holdout": self.holdout,
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: dict) -> "State":
        awaiting = data.get("awaiting")
        return cls(
            enrolment_id=data["enrolment_id"],
            status=Status(data["status"]),
            step=data.get("step"),
            wake_at=dt.datetime.fromisoformat(data["wake_at"]) if data.get("wake_at") else None,
            awaiting=Awaiting(**awaiting) if awaiting else None,
            visits=dict(data.get("visits", {})),
            payload=data.get("payload", {}),
            seen_event_ids=tuple(data.get("seen_event_ids", ())),
            timezone=data.get("timezone", ""),
            holdout=data.get("holdout", False),
            seed=data.get("seed", ""),
        )


# Inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrol:
    payload: dict = field(default_factory=dict)
    timezone: str = ""


@dataclass(frozen=True)
class EventReceived:
    name: str
    properties: dict
    id: str


@dataclass(frozen=True)
class Timer:
    """A wake-up for the wait that set ``due``; a timer for an older wait is ignored."""

    due: dt.datetime


@dataclass(frozen=True)
class ExitRequested:
    reason: str = "exit_requested"
    converted: bool = False


Input = Enrol | EventReceived | Timer | ExitRequested


# Effects ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    from_step: str | None
    to_step: str | None
    reason: str
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SendMessage:
    step: str
    channel: str
    template: Any
    topic: str
    idempotency_key: str


@dataclass(frozen=True)
class UpdateTraits:
    step: str
    set: dict
    unset: tuple[str, ...]


@dataclass(frozen=True)
class CallWebhook:
    """A call to another system through a webhook template (its URL lives there)."""

    step: str
    template: Any
    topic: str
    body: dict
    idempotency_key: str


@dataclass(frozen=True)
class Wake:
    at: dt.datetime


@dataclass(frozen=True)
class Exit:
    reason: str
    status: Status


Effect = Transition | SendMessage | UpdateTraits | CallWebhook | Wake | Exit


def idempotency_key(enrolment_id: str, step_id: str, visit: int) -> str:
    return f"journey:{enrolment_id}:{step_id}:{visit}"


def split_draw(enrolment_id: str, step_id: str, visit: int) -> float:
    """A number in [0, 1) fixed by enrolment, step and visit."""
    digest = hashlib.sha256(f"{enrolment_id}:{step_id}:{visit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# The machine ------------------------------------------------------------------------------


def advance(
    graph: dict,
    state: State,
    event: Input,
    now: dt.datetime,
    *,
    facts: CustomerFacts | None = None,
    conditions=None,
) -> tuple[State, list[Effect]]:
    """Apply one input; run through every step that needs no waiting; stop at a wait or
    the end. An input that does not concern the enrolment returns it unchanged with no
    effects."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    run = _Run(graph, state, now, facts or CustomerFacts(), conditions or BasicConditions())
    if state.is_finished:
        return state, []
    if isinstance(event, Enrol):
        if state.step is not None:
            return state, []
        run.state = replace(state, payload=event.payload, timezone=event.timezone)
        run.enter(entry_step(graph)["id"], from_step=None, reason="enrolled")
    elif isinstance(event, EventReceived):
        if not _awaits(state, event):
            return state, []
        seen = (*state.seen_event_ids, event.id)[-REMEMBERED_EVENT_IDS:]
        run.state = replace(state, seen_event_ids=seen)
        run.follow("event", data={"event_id": event.id})
    elif isinstance(event, Timer):
        if state.status != Status.WAITING or state.wake_at != event.due or now < event.due:
            return state, []
        run.follow("timeout" if state.awaiting else "next")
    elif isinstance(event, ExitRequested):
        status = Status.CONVERTED if event.converted else Status.EXITED
        run.effects.append(Transition(state.step, None, event.reason))
        run.finish(event.reason, status)
    else:
        raise TypeError(f"not an engine input: {event!r}")
    return run.state, run.effects


def _awaits(state: State, event: EventReceived) -> bool:
    awaiting = state.awaiting
    if state.status != Status.WAITING or awaiting is None or awaiting.event != event.name:
        return False
    if event.id in state.seen_event_ids:
        return False
    if awaiting.property is None:
        return True
    return compare(path_get(event.properties, awaiting.property), "eq", awaiting.value)


class _Run:
    def __init__(self, graph, state, now, facts, conditions) -> None:
        self.steps = steps_by_id(graph)
        self.state: State = state
        self.now = now
        self.facts = facts
        self.traits = dict(facts.traits)
        self.conditions = conditions
        self.effects: list[Effect] = []
        self.moves = 0

    def follow(self, exit_name: str, data: dict | None = None) -> None:
        step_id = self.state.step
        target = self.steps.get(step_id, {}).get("exits", {}).get(exit_name)
        if target is None:
            self.fail(f"step {step_id!r} has no exit {exit_name!r}")
            return
        self.enter(target, from_step=step_id, reason=exit_name, data=data)

    def enter(
        self, step_id: str, *, from_step: str | None, reason: str, data: dict | None = None
    ) -> None:
        while True:
            self.moves += 1
            if self.moves > MAX_STEPS_PER_CALL:
                self.fail("too many steps without a wait")
                return
            step = self.steps.get(step_id)
            if step is None:
                self.fail(f"no step {step_id!r} in this version")
                return
            visits = {**self.state.visits, step_id: self.state.visits.get(step_id, 0) + 1}
            self.state = replace(
                self.state,
                step=step_id,
                status=Status.ACTIVE,
                wake_at=None,
                awaiting=None,
                visits=visits,
            )
            self.effects.append(Transition(from_step, step_id, reason, data or {}))
            outcome = self.execute(step, visits[step_id])
            if outcome is None:
                return
            exit_name, data = outcome
            target = step.get("exits", {}).get(exit_name)
            if target is None:
                self.fail(f"step {step_id!r} has no exit {exit_name!r}")
                return
            from_step, step_id, reason = step_id, target, exit_name

    def execute(self, step: dict, visit: int) -> tuple[str, dict] | None:
        """Do the step; the exit to take and the transition's data, or ``None`` to stop."""
        step_id, kind, config = step["id"], step["kind"], step.get("config", {})
        key = idempotency_key(self.state.enrolment_id, step_id, visit)
        if kind == "trigger":
            return "next", {}
        if kind == "wait":
            if "duration" in config:
                wake_at = self.now + duration(config["duration"])
            else:
                wake_at = next_weekday_time(
                    self.now,
                    weekdays=config["until"]["weekdays"],
                    time_of_day=config["until"]["time"],
                    timezone=self.facts.timezone or self.state.timezone,
                )
            self.wait(wake_at, None)
            return None
        if kind == "wait_for_event":
            correlation = config.get("correlation") or {}
            awaiting = Awaiting(event=config["event"])
            if correlation.get("property"):
                trigger_property = correlation.get("trigger_property") or correlation["property"]
                value = path_get(self.state.payload, trigger_property)
                awaiting = Awaiting(
                    event=config["event"],
                    property=correlation["property"],
                    # A trigger without the property can only time out: nothing matches.
                    value=None if value is MISSING else value,
                )
            self.wait(self.now + duration(config["timeout"]), awaiting)
            return None
        if kind == "condition":
            facts = replace(self.facts, traits=self.traits)
            holds = self.conditions.evaluate(
                config["rule"], facts=facts, payload=self.state.payload, now=self.now
            )
            return ("yes" if holds else "no"), {}
        if kind == "split":
            branches = config["branches"]
            total = sum(branch["weight"] for branch in branches)
            seed = self.state.seed or self.state.enrolment_id
            point = split_draw(seed, step_id, visit) * total
            chosen = branches[-1]
            for branch in branches:
                if point < branch["weight"]:
                    chosen = branch
                    break
                point -= branch["weight"]
            if chosen.get("holdout"):
                self.state = replace(self.state, holdout=True)
            return chosen["name"], {
                "branch": chosen["name"],
                "holdout": bool(chosen.get("holdout")),
            }
        if kind == "send":
            self.effects.append(
                SendMessage(
                    step_id, config["channel"], config["template"], config.get("topic", ""), key
                )
            )
            return "next", {}
        if kind == "send_best_channel":
            reachable = self.facts.reachable_channels
            for option in config["channels"]:
                if reachable is None or option["channel"] in reachable:
                    self.effects.append(
                        SendMessage(
                            step_id,
                            option["channel"],
                            option["template"],
                            config.get("topic", ""),
                            key,
                        )
                    )
                    return "next", {"channel": option["channel"]}
            return "next", {"skipped": "no reachable channel"}
        if kind == "update_profile":
            to_set, to_unset = config.get("set", {}), tuple(config.get("unset", []))
            self.traits = {
                name: value
                for name, value in {**self.traits, **to_set}.items()
                if name not in to_unset
            }
            self.effects.append(UpdateTraits(step_id, dict(to_set), to_unset))
            return "next", {}
        if kind == "webhook":
            self.effects.append(
                CallWebhook(
                    step_id,
                    config["template"],
                    config.get("topic") or WEBHOOK_TOPIC,
                    config.get("body", {}),
                    key,
                )
            )
            return "next", {}
        if kind == "exit":
            self.finish(config.get("reason") or "completed", Status.COMPLETED)
            return None
        self.fail(f"unknown step kind {kind!r}")
        return None

    def wait(self, wake_at: dt.datetime, awaiting: Awaiting | None) -> None:
        self.state = replace(self.state, status=Status.WAITING, wake_at=wake_at, awaiting=awaiting)
        self.effects.append(Wake(wake_at))

    def finish(self, reason: str, status: Status) -> None:
        self.state = replace(self.state, status=status, wake_at=None, awaiting=None)
        self.effects.append(Exit(reason, status))

    def fail(self, reason: str) -> None:
        self.effects.append(Transition(self.state.step, None, "failed", {"error": reason}))
        self.finish(reason, Status.FAILED)
