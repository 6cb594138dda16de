"""A small rule language for condition steps and trigger filters: traits, the trigger's
payload and the customer's recent events.

The running app registers the segment rule language instead
(``journeys.segment_conditions``), which still accepts these forms and evaluates them here.

Rules::

    {"all": [rule, ...]}  {"any": [rule, ...]}  {"not": rule}
    {"trait": {"name": "plan", "op": "eq", "value": "pro"}}
    {"payload": {"property": "total", "op": "gte", "value": 50}}
    {"event": {"name": "Order Completed", "min_count": 1, "within_days": 30,
               "where": [{"property": "total", "op": "gt", "value": 0}]}}
    {"segment": "vip"}   (the customer is in that segment now)
"""

import datetime as dt
from typing import Any

from journeys.engine.facts import CustomerFacts

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists", "not_exists")
# The segment rule language's value operators that need no clock, accepted in filters too
# (with that language's meaning: docs/segments.md). ``in``, ``contains`` and ``exists``
# keep the meaning above.
SEGMENT_OPERATORS = (
    "equals",
    "not_equals",
    "less_than",
    "less_or_equal",
    "greater_than",
    "greater_or_equal",
    "between",
    "starts_with",
    "before",
    "after",
)
MISSING = object()
# The segment operators above never read the clock; the evaluator still wants a time.
_NO_CLOCK = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def path_get(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return MISSING
        data = data[part]
    return data


def compare(actual: Any, op: str, expected: Any) -> bool:
    if op in SEGMENT_OPERATORS:
        return _segment_compare(actual, op, expected)
    if op == "exists":
        return actual is not MISSING and actual is not None
    if op == "not_exists":
        return actual is MISSING or actual is None
    if actual is MISSING:
        return False
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op == "in":
        return actual in expected
    if op == "contains":
        return isinstance(actual, str | list) and expected in actual
    # Ordering compares numbers with numbers and strings with strings, nothing else.
    numbers = (int, float)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return False
    if not (
        (isinstance(actual, numbers) and isinstance(expected, numbers))
        or (isinstance(actual, str) and isinstance(expected, str))
    ):
        return False
    return {
        "gt": actual > expected,
        "gte": actual >= expected,
        "lt": actual < expected,
        "lte": actual <= expected,
    }[op]


def _segment_compare(actual: Any, op: str, expected: Any) -> bool:
    # Imported here: the engine's own module stays importable without the segments app.
    from segments.rules import CustomerSnapshot, evaluate_rule

    snapshot = CustomerSnapshot(
        first_seen=_NO_CLOCK,
        last_seen=_NO_CLOCK,
        traits={} if actual is MISSING else {"value": actual},
    )
    condition = {"trait": {"key": "value", "op": op, "value": expected}}
    return evaluate_rule(condition, snapshot, now=_NO_CLOCK)


def _segment_value_problems(op: str, value: Any, field: str) -> list[tuple[str, str]]:
    from segments.rules import RuleError, validate_rule

    try:
        validate_rule({"trait": {"key": "value", "op": op, "value": value}})
    except RuleError as error:
        return [(f"{field}.value", fault.message) for fault in error.faults]
    return []


def validate_filter(item: Any, field: str) -> list[tuple[str, str]]:
    """Problems of one ``{"property", "op", "value"}`` filter as (field path, reason)."""
    if not isinstance(item, dict):
        return [(field, "must be an object with property, op and value")]
    problems = []
    name_key = "name" if "name" in item and "property" not in item else "property"
    if not isinstance(item.get(name_key), str) or not item.get(name_key):
        problems.append((f"{field}.{name_key}", "must be a non-empty string"))
    op = item.get("op")
    if op in SEGMENT_OPERATORS:
        if "value" not in item:
            problems.append((f"{field}.value", f"is required for op {op}"))
        else:
            problems.extend(_segment_value_problems(op, item["value"], field))
    elif op not in OPERATORS:
        operators = ", ".join(OPERATORS + SEGMENT_OPERATORS)
        problems.append((f"{field}.op", f"must be one of {operators}"))
    elif op not in ("exists", "not_exists"):
        if "value" not in item:
            problems.append((f"{field}.value", f"is required for op {op}"))
        elif op == "in" and not isinstance(item["value"], list):
            problems.append((f"{field}.value", "must be a list for op in"))
    unknown = set(item) - {"property", "name", "op", "value"}
    if unknown:
        problems.append((field, f"unknown keys: {', '.join(sorted(unknown))}"))
    return problems


def filters_match(filters: list[dict], properties: dict) -> bool:
    return all(
        compare(path_get(properties, item["property"]), item["op"], item.get("value"))
        for item in filters
    )


class BasicConditions:
    """Trait, payload and event conditions, evaluated from ``CustomerFacts``."""

    def validate(self, rule: Any, field: str = "rule") -> list[tuple[str, str]]:
        if not isinstance(rule, dict) or len(rule) != 1:
            return [
                (
                    field,
                    "must be an object with exactly one of all, any, not, trait, payload, event, segment",
                )
            ]
        kind, body = next(iter(rule.items()))
        here = f"{field}.{kind}"
        if kind in ("all", "any"):
            if not isinstance(body, list) or not body:
                return [(here, "must be a non-empty list of rules")]
            return [p for i, child in enumerate(body) for p in self.validate(child, f"{here}[{i}]")]
        if kind == "not":
            return self.validate(body, here)
        if kind == "trait":
            return validate_filter(body, here)
        if kind == "payload":
            return validate_filter(body, here)
        if kind == "event":
            return self._validate_event(body, here)
        if kind == "segment":
            if not isinstance(body, str) or not body:
                return [(here, "must be a segment key")]
            return []
        return [(field, f"unknown condition {kind!r}")]

    def _validate_event(self, body: Any, here: str) -> list[tuple[str, str]]:
        if not isinstance(body, dict):
            return [(here, "must be an object")]
        problems = []
        if not isinstance(body.get("name"), str) or not body.get("name"):
            problems.append((f"{here}.name", "must be a non-empty string"))
        for key in ("min_count", "within_days"):
            value = body.get(key)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                problems.append((f"{here}.{key}", "must be a whole number ≥ 0"))
        where = body.get("where", [])
        if not isinstance(where, list):
            problems.append((f"{here}.where", "must be a list of filters"))
        else:
            for i, item in enumerate(where):
                problems.extend(validate_filter(item, f"{here}.where[{i}]"))
        unknown = set(body) - {"name", "min_count", "within_days", "where"}
        if unknown:
            problems.append((here, f"unknown keys: {', '.join(sorted(unknown))}"))
        return problems

    def evaluate(
        self, rule: dict, *, facts: CustomerFacts, payload: dict, now: dt.datetime
    ) -> bool:
        kind, body = next(iter(rule.items()))
        if kind == "all":
            return all(self.evaluate(c, facts=facts, payload=payload, now=now) for c in body)
        if kind == "any":
            return any(self.evaluate(c, facts=facts, payload=payload, now=now) for c in body)
        if kind == "not":
            return not self.evaluate(body, facts=facts, payload=payload, now=now)
        if kind == "trait":
            return compare(path_get(facts.traits, body["name"]), body["op"], body.get("value"))
        if kind == "payload":
            return compare(path_get(payload, body["property"]), body["op"], body.get("value"))
        if kind == "segment":
            return body in facts.segment_keys
        # event
        since = None
        if body.get("within_days") is not None:
            since = now - dt.timedelta(days=body["within_days"])
        count = sum(
            1
            for event in facts.events
            if event.name == body["name"]
            and (since is None or event.timestamp >= since)
            and event.timestamp <= now
            and filters_match(body.get("where", []), event.properties)
        )
        return count >= body.get("min_count", 1)
