"""Property tests: random valid graphs driven by random events and timers."""

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from journeys.engine import (
    CallWebhook,
    CustomerFacts,
    Enrol,
    EventReceived,
    ExitRequested,
    SendMessage,
    State,
    Status,
    Timer,
    Transition,
    Wake,
    advance,
    validate_graph,
)
from journeys.engine.conditions import BasicConditions
from journeys.engine.graph import WAIT_KINDS, steps_by_id
from tests.journeys.graphs import Templates

START = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
EVENT_NAMES = ("A", "B")
MIDDLE_KINDS = (
    "wait",
    "wait_for_event",
    "condition",
    "split",
    "send",
    "send_best_channel",
    "update_profile",
    "webhook",
)


@st.composite
def graphs(draw):
    """A valid graph: trigger, 1-8 middle steps, two exits. Each step's first exit goes to
    the next step (so all are reachable and reach an exit); other exits jump forward, or
    back to an earlier wait (so every loop passes a wait)."""
    count = draw(st.integers(1, 8))
    kinds = [draw(st.sampled_from(MIDDLE_KINDS)) for _ in range(count)]
    ids = ["start", *(f"s{i}" for i in range(1, count + 1)), "end_a", "end_b"]
    steps = [{"id": "start", "kind": "trigger", "config": {"type": "api"}, "exits": {"next": "s1"}}]
    for index, kind in enumerate(kinds, start=1):
        forward = ids[index + 1 :]
        backward = [f"s{j}" for j in range(1, index + 1) if kinds[j - 1] in WAIT_KINDS]

        def target(forward=forward, backward=backward):
            return draw(st.sampled_from(forward + backward))

        config, names = _config(draw, kind)
        exits = {names[0]: ids[index + 1]}
        for name in names[1:]:
            exits[name] = target()
        steps.append({"id": f"s{index}", "kind": kind, "config": config, "exits": exits})
    steps += [
        {"id": "end_a", "kind": "exit"},
        {"id": "end_b", "kind": "exit", "config": {"reason": "b"}},
    ]
    targets = {target for each in steps for target in each.get("exits", {}).values()}
    if "end_b" not in targets:
        steps.pop()
    return {"schema": 1, "steps": steps}


def _config(draw, kind):
    minutes = st.integers(1, 120)
    if kind == "wait":
        if draw(st.booleans()):
            return {"duration": {"minutes": draw(minutes)}}, ["next"]
        days = draw(st.lists(st.sampled_from(["mon", "wed", "sat"]), min_size=1, unique=True))
        return {"until": {"weekdays": days, "time": "09:15"}}, ["next"]
    if kind == "wait_for_event":
        config = {
            "event": draw(st.sampled_from(EVENT_NAMES)),
            "timeout": {"minutes": draw(minutes)},
        }
        if draw(st.booleans()):
            config["correlation"] = {"property": "k"}
        return config, draw(st.permutations(["event", "timeout"]))
    if kind == "condition":
        rule = draw(
            st.sampled_from(
                [
                    {"trait": {"name": "flag", "op": "eq", "value": True}},
                    {"payload": {"property": "k", "op": "eq", "value": "x"}},
                    {"not": {"trait": {"name": "visited", "op": "exists"}}},
                ]
            )
        )
        return {"rule": rule}, draw(st.permutations(["yes", "no"]))
    if kind == "split":
        names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=2, unique=True))
        branches = [{"name": name, "weight": draw(st.integers(1, 5))} for name in names]
        return {"branches": branches}, names
    if kind == "send":
        return {"channel": "email", "template": 1, "topic": "t"}, ["next"]
    if kind == "send_best_channel":
        return {
            "channels": [{"channel": "push", "template": 2}, {"channel": "sms", "template": 3}],
            "topic": "t",
        }, ["next"]
    if kind == "update_profile":
        return {"set": {"visited": True}}, ["next"]
    return {"template": 4}, ["next"]


actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("event"),
            st.sampled_from(EVENT_NAMES),
            st.sampled_from(["x", "y"]),
            st.sampled_from([f"m{i}" for i in range(6)]),
        ),
        st.tuples(st.just("timer")),
        st.tuples(st.just("stale_timer")),
        st.tuples(st.just("time_passes"), st.integers(0, 3 * 24 * 3600)),
        st.tuples(st.just("exit")),
    ),
    max_size=25,
)


def assert_valid(graph, state):
    steps = steps_by_id(graph)
    assert state.status != Status.ACTIVE, "a run always ends at a wait or an exit"
    assert state.status != Status.FAILED, "a valid graph never fails"
    assert set(state.visits) <= set(steps)
    if state.is_finished:
        assert state.wake_at is None and state.awaiting is None
        return
    assert state.status == Status.WAITING
    assert state.wake_at is not None
    kind = steps[state.step]["kind"]
    assert kind in WAIT_KINDS
    assert (state.awaiting is not None) == (kind == "wait_for_event")


def assert_chained(previous_step, effects):
    transitions = [e for e in effects if isinstance(e, Transition)]
    for transition in transitions:
        assert transition.from_step == previous_step
        previous_step = transition.to_step
    return previous_step


@settings(max_examples=150, deadline=None)
@given(graph=graphs(), steps=actions, flag=st.booleans(), payload_k=st.sampled_from(["x", "y"]))
def test_random_graphs_and_inputs_keep_the_enrolment_valid_and_never_send_twice(
    graph, steps, flag, payload_k
):
    assert validate_graph(graph, conditions=BasicConditions(), templates=Templates()) == []
    facts = CustomerFacts(traits={"flag": flag}, reachable_channels=frozenset({"sms"}))
    now = START
    state, effects = advance(graph, State("p-1"), Enrol({"k": payload_k}), now, facts=facts)
    keys = [e.idempotency_key for e in effects if isinstance(e, SendMessage | CallWebhook)]
    current = assert_chained(None, effects)
    assert_valid(graph, state)

    for action in steps:
        before = state
        if action[0] == "event":
            _, name, value, event_id = action
            state, effects = advance(
                graph, state, EventReceived(name, {"k": value}, event_id), now, facts=facts
            )
        elif action[0] == "timer":
            if state.wake_at is None:
                continue
            now = max(now, state.wake_at)
            state, effects = advance(graph, state, Timer(state.wake_at), now, facts=facts)
            # A wait always ends when its time comes.
            assert not (
                state.status == Status.WAITING
                and state.step == before.step
                and state.visits[state.step] == before.visits[before.step]
            )
        elif action[0] == "stale_timer":
            state, effects = advance(
                graph, state, Timer(now - dt.timedelta(days=9)), now, facts=facts
            )
            assert (state, effects) == (before, [])
        elif action[0] == "time_passes":
            now += dt.timedelta(seconds=action[1])
            continue
        else:
            state, effects = advance(graph, state, ExitRequested(), now, facts=facts)

        if before.is_finished:
            assert (state, effects) == (before, [])
        if state == before:
            assert effects == []
        current = assert_chained(current if current is not None else before.step, effects)
        assert_valid(graph, state)
        wakes = [e for e in effects if isinstance(e, Wake)]
        assert wakes == (
            [Wake(state.wake_at)] if state.status == Status.WAITING and effects else []
        )
        keys += [e.idempotency_key for e in effects if isinstance(e, SendMessage | CallWebhook)]
        assert len(keys) == len(set(keys)), "a message was emitted twice"


@settings(max_examples=60, deadline=None)
@given(graph=graphs(), steps=actions)
def test_a_replay_of_the_same_inputs_takes_the_same_path(graph, steps):
    def run():
        now = START
        state, effects = advance(graph, State("replay"), Enrol({"k": "x"}), now)
        trail = list(effects)
        for action in steps:
            if action[0] == "event":
                state, effects = advance(
                    graph, state, EventReceived(action[1], {"k": action[2]}, action[3]), now
                )
            elif action[0] == "timer" and state.wake_at is not None:
                now = max(now, state.wake_at)
                state, effects = advance(graph, state, Timer(state.wake_at), now)
            else:
                continue
            trail += effects
        return state, trail

    assert run() == run()
