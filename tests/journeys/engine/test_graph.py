import pytest

from journeys.engine.conditions import BasicConditions
from journeys.engine.graph import next_weekday_time, validate_graph
from tests.journeys.graphs import Templates, documented_example, event_trigger, graph, linear, step


def problems_of(candidate, templates=None):
    found = validate_graph(
        candidate, conditions=BasicConditions(), templates=templates or Templates()
    )
    return {(p.step, p.field, p.message) for p in found}


def test_the_documented_example_is_valid():
    from journeys.segment_conditions import SegmentRuleConditions

    found = validate_graph(
        documented_example(), conditions=SegmentRuleConditions(), templates=Templates()
    )
    assert found == []


def test_every_step_kind_with_a_minimal_config_is_valid():
    candidate = linear(
        step("w1", "wait", {"duration": {"minutes": 5}}),
        step("w2", "wait", {"until": {"weekdays": ["mon", "fri"], "time": "09:30"}}),
        step(
            "c",
            "condition",
            {"rule": {"payload": {"property": "x", "op": "exists"}}},
            yes="s",
            no="s",
        ),
        step("s", "send", {"channel": "email", "template": 1, "topic": "news"}),
        step(
            "b",
            "send_best_channel",
            {
                "channels": [{"channel": "push", "template": 2}, {"channel": "sms", "template": 3}],
                "topic": "cart",
            },
        ),
        step("u", "update_profile", {"unset": ["cart"]}),
        step("h", "webhook", {"template": 4, "body": {"source": "journeyline"}}),
    )
    assert problems_of(candidate) == set()


@pytest.mark.parametrize(
    "trigger_config",
    [
        {"type": "segment", "segment": "vip", "on": "left"},
        {"type": "date_trait", "trait": "birthday", "offset_days": -3},
        {"type": "api"},
        {
            "type": "event",
            "event": "Order Completed",
            "filters": [{"property": "total", "op": "gte", "value": 10}],
        },
    ],
)
def test_each_trigger_type_is_valid(trigger_config):
    candidate = graph(step("start", "trigger", trigger_config, next="done"), step("done", "exit"))
    assert problems_of(candidate) == set()


def test_no_trigger_and_two_triggers_are_refused():
    assert problems_of(graph(step("done", "exit"))) == {
        (None, "steps", "must have exactly one trigger step (the entry), found 0")
    }
    two = graph(
        event_trigger(next="done"),
        {**event_trigger(next="done"), "id": "again"},
        step("done", "exit"),
    )
    assert problems_of(two) == {
        (None, "steps", "must have exactly one trigger step (the entry), found 2: start, again")
    }


def test_an_unreachable_step_is_named():
    candidate = graph(event_trigger(next="done"), step("lost", "exit"), step("done", "exit"))
    assert problems_of(candidate) == {("lost", "id", "is not reachable from the trigger")}


def test_a_missing_exit_an_unknown_exit_and_an_unknown_target_are_named():
    candidate = graph(
        event_trigger(next="cond"),
        step(
            "cond",
            "condition",
            {"rule": {"trait": {"name": "a", "op": "exists"}}},
            yes="done",
            maybe="done",
        ),
        step("w", "wait", {"duration": {"days": 1}}, next="nowhere"),
        step("done", "exit"),
    )
    assert problems_of(candidate) == {
        ("cond", "exits.no", "is missing"),
        ("cond", "exits.maybe", "is not an exit of a condition step (its exits: yes, no)"),
        ("w", "exits.next", "no step has id 'nowhere'"),
    }


def test_a_path_that_never_ends_is_refused():
    # The wait loops on itself forever: it never reaches an exit.
    candidate = graph(
        event_trigger(next="w"),
        step("w", "wait", {"duration": {"days": 1}}, next="w"),
    )
    assert problems_of(candidate) == {
        ("start", "exits", "no path from this step ends at an exit"),
        ("w", "exits", "no path from this step ends at an exit"),
    }


def test_a_loop_without_a_wait_is_refused_and_a_loop_through_a_wait_is_allowed():
    rule = {"trait": {"name": "done", "op": "exists"}}
    spinning = graph(
        event_trigger(next="check"),
        step("check", "condition", {"rule": rule}, yes="done", no="nudge"),
        step("nudge", "send", {"channel": "email", "template": 1, "topic": "t"}, next="check"),
        step("done", "exit"),
    )
    assert problems_of(spinning) == {
        ("check", "exits", "is on a loop that does not pass through a wait"),
        ("nudge", "exits", "is on a loop that does not pass through a wait"),
    }
    waiting = graph(
        event_trigger(next="check"),
        step("check", "condition", {"rule": rule}, yes="done", no="nudge"),
        step("nudge", "send", {"channel": "email", "template": 1, "topic": "t"}, next="pause"),
        step("pause", "wait", {"duration": {"days": 3}}, next="check"),
        step("done", "exit"),
    )
    assert problems_of(waiting) == set()


def test_templates_must_exist_on_the_steps_channel():
    candidate = linear(
        step("a", "send", {"channel": "sms", "template": 1, "topic": "t"}),
        step("b", "send", {"channel": "email", "template": 99, "topic": "t"}),
        step("c", "send_best_channel", {"channels": [{"channel": "fax", "template": 1}]}),
        step("d", "webhook", {"template": 1}),
    )
    assert problems_of(candidate) == {
        ("a", "config.template", "template 1 is a email template, not sms"),
        ("b", "config.template", "no template has id 99"),
        ("c", "config.channels[0].channel", "must be one of email, sms, push, webhook"),
        ("c", "config.topic", "must be a consent topic key, e.g. news"),
        ("d", "config.template", "template 1 is a email template, not webhook"),
    }


def test_invalid_conditions_filters_and_weights_are_named_with_their_field():
    candidate = graph(
        step(
            "start",
            "trigger",
            {
                "type": "event",
                "event": "Paid",
                "filters": [{"property": "total", "op": "bigger", "value": 1}],
            },
            next="cond",
        ),
        step(
            "cond",
            "condition",
            {"rule": {"all": [{"trait": {"name": "", "op": "eq"}}]}},
            yes="ab",
            no="ab",
        ),
        step(
            "ab",
            "split",
            {"branches": [{"name": "a", "weight": 0}, {"name": "b", "weight": -1}]},
            a="done",
            b="done",
        ),
        step("done", "exit"),
    )
    ops = (
        "eq, ne, gt, gte, lt, lte, in, contains, exists, not_exists, equals, not_equals, "
        "less_than, less_or_equal, greater_than, greater_or_equal, between, starts_with, "
        "before, after"
    )
    assert problems_of(candidate) == {
        ("start", "config.filters[0].op", f"must be one of {ops}"),
        ("cond", "config.rule.all[0].trait.name", "must be a non-empty string"),
        ("cond", "config.rule.all[0].trait.value", "is required for op eq"),
        ("ab", "config.branches[0].weight", "must be a number > 0"),
        ("ab", "config.branches[1].weight", "must be a number > 0"),
    }


def test_bad_waits_are_named():
    candidate = linear(
        step("a", "wait", {"duration": {"hours": 0}}),
        step("b", "wait", {"until": {"weekdays": ["someday"], "time": "25:00"}}),
        step(
            "c",
            "wait_for_event",
            {"event": "Paid", "timeout": {"weeks": 1}},
            event="done",
            timeout="done",
        ),
    )
    assert problems_of(candidate) == {
        ("a", "config.duration", "must be longer than zero"),
        (
            "b",
            "config.until.weekdays",
            "must be a non-empty list of mon, tue, wed, thu, fri, sat, sun",
        ),
        ("b", "config.until.time", "must be a time of day as HH:MM"),
        ("c", "config.timeout.weeks", "is not a unit of time"),
    }


def test_shape_problems_come_first():
    assert problems_of([]) == {(None, "graph", "must be an object with schema and steps")}
    assert problems_of({"schema": 1, "steps": [{"id": "a", "kind": "teleport"}]}) == {
        (
            "a",
            "kind",
            "must be one of trigger, wait, wait_for_event, condition, send, "
            "send_best_channel, update_profile, webhook, exit, split",
        )
    }


def test_validation_does_not_change_the_graph():
    candidate = {
        "schema": 1,
        "steps": [
            {"id": "start", "kind": "trigger", "config": {"type": "api"}, "exits": {"next": "d"}},
            {"id": "d", "kind": "exit"},
        ],
    }
    before = repr(candidate)
    assert problems_of(candidate) == set()
    assert repr(candidate) == before


def test_next_weekday_time_is_in_the_customers_zone():
    import datetime as dt

    # Friday 2026-11-20 10:00 UTC is 11:00 in Amsterdam: Friday 09:00 has passed there.
    now = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
    wake = next_weekday_time(
        now, weekdays=["mon", "fri"], time_of_day="09:00", timezone="Europe/Amsterdam"
    )
    assert wake == dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
    # An unknown zone falls back to UTC.
    assert next_weekday_time(now, weekdays=["fri"], time_of_day="12:00", timezone="Nowhere/X") == (
        dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
    )
