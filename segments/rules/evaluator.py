"""Evaluating a rule for one customer from a snapshot: a pure function, no database.

It states the rule language's meaning in plain Python; the SQL compiler must agree with it
on every input (a property test holds them to that).
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from consent.gate import RecordedState, TopicRule, effective_status
from segments.rules.validation import validate_rule
from segments.rules.values import anniversary_days, json_equal, json_type, parse_date, path_get


@dataclass(frozen=True)
class EventFact:
    name: str
    timestamp: dt.datetime
    properties: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerSnapshot:
    """What a rule can look at for one customer."""

    first_seen: dt.datetime
    last_seen: dt.datetime
    email: str = ""
    phone: str = ""
    timezone: str = ""
    locale: str = ""
    traits: dict = field(default_factory=dict)
    events: tuple[EventFact, ...] = ()
    segment_keys: frozenset[str] = frozenset()
    has_push_device: bool = False
    # The latest model score of each kind ("churn": 0.83), and its percentile among all
    # scored customers (the share with that score or lower).
    scores: dict = field(default_factory=dict)
    score_percentiles: dict = field(default_factory=dict)
    # The customer's cluster in the active clustering, if any.
    cluster: int | None = None
    # Consent topics by key, and the customer's derived consent state per (channel, topic
    # key), the key None for the channel-wide row ("unsubscribe from everything").
    consent_topics: dict[str, TopicRule] = field(default_factory=dict)
    consent_states: dict[tuple[str, str | None], RecordedState] = field(default_factory=dict)
    # The customer's RFM scores ({"recency": 5, "frequency": 4, "monetary": 3,
    # "segment": "champions"}), or None when the customer has no order.
    rfm: dict | None = None


def evaluate_rule(rule: dict, snapshot: CustomerSnapshot, *, now: dt.datetime) -> bool:
    """Whether ``rule`` holds for the customer in ``snapshot`` at ``now`` (validates first)."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    validate_rule(rule)
    return _Evaluator(snapshot, now).rule(rule)


class _Evaluator:
    def __init__(self, snapshot: CustomerSnapshot, now: dt.datetime) -> None:
        self.snapshot = snapshot
        self.now = now

    def rule(self, rule: dict) -> bool:
        kind, body = next(iter(rule.items()))
        if kind == "all":
            return all(self.rule(child) for child in body)
        if kind == "any":
            return any(self.rule(child) for child in body)
        if kind == "not":
            return not self.rule(body)
        return getattr(self, kind)(body)

    def trait(self, body: dict) -> bool:
        found, value = path_get(self.snapshot.traits, tuple(body["key"].split(".")))
        return _json_value(found, value, body, self.now)

    def profile(self, body: dict) -> bool:
        op, expected = body["op"], body.get("value")
        actual = getattr(self.snapshot, body["field"])
        if isinstance(actual, dt.datetime):
            return _instant(actual, op, expected, self.now)
        if op == "exists":
            return actual != ""
        if op == "equals":
            return actual == expected
        if op == "not_equals":
            return actual != expected
        if op == "in":
            return actual in expected
        if op == "contains":
            return expected in actual
        if op == "starts_with":
            return actual.startswith(expected)
        raise AssertionError(op)

    def event(self, body: dict) -> bool:
        since = None
        if "within_days" in body:
            since = self.now - dt.timedelta(days=body["within_days"])
        where = body.get("where", [])
        matching = sum(
            1
            for event in self.snapshot.events
            if event.name == body["name"]
            and event.timestamp <= self.now
            and (since is None or event.timestamp > since)
            and all(_property(event.properties, condition, self.now) for condition in where)
        )
        if not body.get("performed", True):
            return matching == 0
        count = body.get("count", {"at_least": 1})
        at_least, at_most = count.get("at_least", 0), count.get("at_most")
        return matching >= at_least and (at_most is None or matching <= at_most)

    def segment(self, body: dict) -> bool:
        return body["key"] in self.snapshot.segment_keys

    def reachable(self, body: dict) -> bool:
        channel = body["channel"]
        if channel == "email":
            return self.snapshot.email != ""
        if channel == "sms":
            return self.snapshot.phone != ""
        return self.snapshot.has_push_device

    def score(self, body: dict) -> bool:
        return _score(self.snapshot, body)

    def cluster(self, body: dict) -> bool:
        return self.snapshot.cluster is not None and self.snapshot.cluster in body["in"]

    def consent(self, body: dict) -> bool:
        channel = body["channel"]
        topic = self.snapshot.consent_topics.get(body["topic"])
        if topic is None or channel not in topic.channels:
            return False
        status = effective_status(
            topic=topic,
            topic_state=self.snapshot.consent_states.get((channel, topic.key)),
            channel_state=self.snapshot.consent_states.get((channel, None)),
        )
        return status == body["state"]

    def rfm(self, body: dict) -> bool:
        scores = self.snapshot.rfm
        if scores is None:
            return False
        if "segment" in body:
            names = body["segment"]
            if scores["segment"] not in ([names] if isinstance(names, str) else names):
                return False
        for score in ("recency", "frequency", "monetary"):
            bounds = body.get(score, {})
            value = scores[score]
            if "gte" in bounds and value < bounds["gte"]:
                return False
            if "lte" in bounds and value > bounds["lte"]:
                return False
            if "equals" in bounds and value != bounds["equals"]:
                return False
        return True


def _score(snapshot: CustomerSnapshot, body: dict) -> bool:
    value = snapshot.scores.get(body["model"])
    if value is None:
        return False
    if body["op"] == "top_percent":
        return snapshot.score_percentiles.get(body["model"], 0) > 1 - body["value"] / 100
    return value > body["value"] if body["op"] == "above" else value < body["value"]


def _property(properties: dict, condition: dict, now: dt.datetime) -> bool:
    found, value = path_get(properties, tuple(condition["property"].split(".")))
    return _json_value(found, value, condition, now)


def _is_number(value: Any) -> bool:
    return json_type(value) == "number"


def _json_value(found: bool, actual: Any, body: dict, now: dt.datetime) -> bool:
    op, expected = body["op"], body.get("value")
    if op == "not_equals":
        return not (found and json_equal(actual, expected))
    if not found:
        return False
    if op == "exists":
        return actual is not None
    if op == "equals":
        return json_equal(actual, expected)
    if op == "in":
        return any(json_equal(actual, item) for item in expected)
    if op == "less_than":
        return _is_number(actual) and actual < expected
    if op == "less_or_equal":
        return _is_number(actual) and actual <= expected
    if op == "greater_than":
        return _is_number(actual) and actual > expected
    if op == "greater_or_equal":
        return _is_number(actual) and actual >= expected
    if op == "between":
        return _is_number(actual) and expected[0] <= actual <= expected[1]
    if op == "contains":
        if isinstance(actual, str) and isinstance(expected, str):
            return expected in actual
        if isinstance(actual, list):
            return any(json_equal(item, expected) for item in actual)
        return False
    if op == "starts_with":
        return isinstance(actual, str) and actual.startswith(expected)
    if op == "anniversary_within_days":
        if parse_date(actual) is None:
            return False
        return actual[5:10] in anniversary_days(now=now, days=expected)
    instant = parse_date(actual)
    return instant is not None and _instant(instant, op, expected, now)


def _instant(instant: dt.datetime, op: str, value: Any, now: dt.datetime) -> bool:
    if op == "within_last_days":
        return now - dt.timedelta(days=value) <= instant <= now
    if op == "more_than_days_ago":
        return instant < now - dt.timedelta(days=value)
    if op == "before":
        return instant < parse_date(value)
    if op == "after":
        return instant > parse_date(value)
    raise AssertionError(op)


def snapshot_events(events: Iterable[tuple[str, dt.datetime, dict]]) -> tuple[EventFact, ...]:
    return tuple(EventFact(name, timestamp, properties) for name, timestamp, properties in events)
