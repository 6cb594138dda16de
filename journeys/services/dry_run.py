"""Dry run: replay a customer's recorded events against a graph with the pure engine.

Nothing is written and nothing is sent: the result is the path the customer would take
and the messages they would get.
"""

import datetime as dt
from dataclasses import dataclass, field, replace

from customers.models import Customer, Event
from journeys import clock
from journeys.compiled import compile_graph
from journeys.engine import (
    CallWebhook,
    CustomerFacts,
    Enrol,
    EventFact,
    EventReceived,
    SendMessage,
    State,
    Timer,
    Transition,
    advance,
)
from journeys.engine.graph import entry_step, normalize_graph, trigger_matches
from journeys.ports import ports
from journeys.services.condition_facts import snapshots_load
from journeys.services.enrolments import split_seed

DRY_RUN_EVENT_LIMIT = 10_000


@dataclass
class DryRun:
    entered_at: dt.datetime | None = None
    path: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    status: str = "not_entered"
    current_step: str | None = None
    wake_at: dt.datetime | None = None


def journey_dry_run(
    *,
    graph: dict,
    customer: Customer,
    payload: dict | None = None,
    until: dt.datetime | None = None,
    journey_id: int | None = None,
) -> DryRun:
    """Replay ``customer``'s events in time order up to ``until`` (the journeys clock by
    default). An event trigger enrols at its first matching event; an API or segment
    trigger enrols at the customer's first event with ``payload``. Waits that come due
    between events fire in between, as the tick would. The graph must be valid."""
    graph = normalize_graph(graph)
    until = until or clock.now()
    events = list(
        Event.objects.filter(customer=customer, type="track", timestamp__lte=until)
        .exclude(name="")
        .order_by("timestamp", "pk")
        .values_list("pk", "name", "properties", "timestamp")[:DRY_RUN_EVENT_LIMIT]
    )
    from segments.models import SegmentMembership

    # Today's profile, memberships, scores and consent: the replay does not rebuild their
    # history. The snapshot is loaded as the runner loads it, so both take the same branch.
    kinds = compile_graph(graph).condition_kinds
    snapshot = (
        snapshots_load(customers={customer.pk: customer}, kinds=kinds)[customer.pk]
        if kinds
        else None
    )
    facts_base = CustomerFacts(
        snapshot=snapshot,
        traits=dict(customer.traits),
        reachable_channels=_reachable(customer),
        timezone=customer.timezone,
        segment_keys=frozenset(
            SegmentMembership.objects.filter(customer=customer, exited_at=None).values_list(
                "segment__key", flat=True
            )
        ),
    )
    all_facts = tuple(EventFact(name, at, properties) for _, name, properties, at in events)
    trigger = entry_step(graph)["config"]
    result = DryRun()
    seed = split_seed(journey_id=journey_id, customer_id=customer.pk) if journey_id else ""
    state = State(f"dry-run-{customer.pk}", seed=seed)

    def feed(engine_input, now):
        nonlocal state
        facts = replace(
            facts_base, events=tuple(fact for fact in all_facts if fact.timestamp <= now)
        )
        state, effects = advance(
            graph, state, engine_input, now, facts=facts, conditions=ports.conditions
        )
        _record(result, effects, now)

    def fire_timers(before: dt.datetime):
        while state.wake_at is not None and state.wake_at <= before and not state.is_finished:
            feed(Timer(state.wake_at), state.wake_at)

    for event_id, name, properties, at in events:
        if result.entered_at is None:
            if trigger.get("type") == "event":
                if not trigger_matches(trigger, event_name=name, properties=properties):
                    continue
                entry_payload = properties
            else:
                entry_payload = payload or {}
            result.entered_at = at
            feed(Enrol(entry_payload, timezone=customer.timezone), at)
            continue
        fire_timers(at)
        if state.is_finished:
            break
        feed(EventReceived(name, properties, str(event_id)), at)
    if result.entered_at is not None:
        fire_timers(until)
        result.status = str(state.status)
        result.current_step = state.step
        result.wake_at = state.wake_at
    return result


def _reachable(customer: Customer) -> frozenset[str]:
    reachable = {"webhook"}
    if customer.email:
        reachable.add("email")
    if customer.phone:
        reachable.add("sms")
    if customer.devices.exists():
        reachable.add("push")
    return frozenset(reachable)


def _record(result: DryRun, effects, now: dt.datetime) -> None:
    for effect in effects:
        if isinstance(effect, Transition):
            result.path.append(
                {
                    "at": now,
                    "from_step": effect.from_step,
                    "to_step": effect.to_step,
                    "reason": effect.reason,
                    "data": effect.data,
                }
            )
        elif isinstance(effect, SendMessage):
            result.messages.append(
                {
                    "at": now,
                    "step": effect.step,
                    "channel": effect.channel,
                    "template": effect.template,
                    "topic": effect.topic,
                }
            )
        elif isinstance(effect, CallWebhook):
            result.messages.append(
                {
                    "at": now,
                    "step": effect.step,
                    "channel": "webhook",
                    "template": effect.template,
                    "topic": effect.topic,
                }
            )
