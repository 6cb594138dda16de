"""Checking a rule before anything compiles or stores it.

Every fault is reported with the JSON path to it (``$.all[2].event.count.at_least``)
and a reason a marketer can act on; all faults are collected, not only the first.
"""

import math
from dataclasses import dataclass
from typing import Any

from consent.channels import CONSENT_CHANNELS
from segments.rules.rfm import RFM_BOUNDS, RFM_SCORES, RFM_SEGMENT_NAMES
from segments.rules.values import MAX_ANNIVERSARY_DAYS, MAX_DAYS, parse_date

MAX_DEPTH = 12
MAX_CONDITIONS = 200
MAX_LIST_VALUES = 1000
MAX_TEXT = 1000

COMBINATORS = ("all", "any", "not")
CONDITIONS = (
    "trait",
    "profile",
    "event",
    "segment",
    "reachable",
    "score",
    "cluster",
    "consent",
    "rfm",
)
KINDS = COMBINATORS + CONDITIONS

# Operators on a JSON value (a trait, an event property).
VALUE_OPERATORS = (
    "equals",
    "not_equals",
    "in",
    "less_than",
    "less_or_equal",
    "greater_than",
    "greater_or_equal",
    "between",
    "contains",
    "starts_with",
    "exists",
    "within_last_days",
    "more_than_days_ago",
    "anniversary_within_days",
    "before",
    "after",
)
# Operators that depend on the clock: segments using them are recomputed on a schedule.
RELATIVE_DATE_OPERATORS = ("within_last_days", "more_than_days_ago", "anniversary_within_days")
TEXT_FIELDS = ("email", "phone", "timezone", "locale")
DATE_FIELDS = ("first_seen", "last_seen")
PROFILE_FIELDS = TEXT_FIELDS + DATE_FIELDS
TEXT_OPERATORS = ("equals", "not_equals", "in", "contains", "starts_with", "exists")
DATE_OPERATORS = ("within_last_days", "more_than_days_ago", "before", "after")
CHANNELS = CONSENT_CHANNELS
SCORE_MODELS = ("churn", "purchase")
SCORE_OPERATORS = ("above", "below", "top_percent")
# consent's own vocabulary: the effective status of a topic on a channel (consent.gate).
CONSENT_STATES = ("allowed", "no_consent", "withdrawn", "pending_confirmation")


@dataclass(frozen=True)
class RuleFault:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class RuleError(ValueError):
    """A rule that cannot be used; ``faults`` lists each problem with its path."""

    def __init__(self, faults: list[RuleFault]) -> None:
        self.faults = faults
        super().__init__("; ".join(str(fault) for fault in faults))

    def as_dict(self) -> dict[str, str]:
        return {fault.path: fault.message for fault in self.faults}


def validate_rule(rule: Any) -> None:
    """Raise ``RuleError`` naming every fault of ``rule``; return quietly if it is valid."""
    checker = _Checker()
    checker.rule(rule, "$", depth=0)
    if checker.faults:
        raise RuleError(checker.faults)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool) or _is_number(value)


def _choices(values: tuple[str, ...]) -> str:
    return ", ".join(values)


class _Checker:
    def __init__(self) -> None:
        self.faults: list[RuleFault] = []
        self.conditions = 0

    def fail(self, path: str, message: str) -> None:
        self.faults.append(RuleFault(path, message))

    def rule(self, rule: Any, path: str, *, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.fail(path, f"rules may nest at most {MAX_DEPTH} levels deep")
            return
        if not isinstance(rule, dict):
            self.fail(path, f"must be an object with one of the keys {_choices(KINDS)}")
            return
        if len(rule) != 1 or next(iter(rule)) not in KINDS:
            keys = ", ".join(sorted(map(str, rule))) or "no key"
            self.fail(path, f"must have exactly one of the keys {_choices(KINDS)} (found {keys})")
            return
        kind, body = next(iter(rule.items()))
        self.conditions += 1
        if self.conditions == MAX_CONDITIONS + 1:
            self.fail(path, f"a rule may hold at most {MAX_CONDITIONS} conditions")
        inner = f"{path}.{kind}"
        if kind in ("all", "any"):
            if not isinstance(body, list) or not body:
                self.fail(inner, "must be a non-empty list of rules")
                return
            for index, child in enumerate(body):
                self.rule(child, f"{inner}[{index}]", depth=depth + 1)
        elif kind == "not":
            self.rule(body, inner, depth=depth + 1)
        elif not isinstance(body, dict):
            self.fail(inner, "must be an object")
        else:
            getattr(self, kind)(body, inner)

    def keys(self, body: dict, path: str, *, required: tuple, optional: tuple = ()) -> bool:
        fine = True
        for key in required:
            if key not in body:
                self.fail(f"{path}.{key}", "is required")
                fine = False
        for key in body:
            if key not in required and key not in optional:
                allowed = _choices(required + optional)
                self.fail(f"{path}.{key}", f"is not a known field (expected {allowed})")
                fine = False
        return fine

    def key_path(self, key: Any, path: str) -> None:
        if not isinstance(key, str) or not key.strip():
            self.fail(path, "must be a non-empty string")
        elif len(key) > 255:
            self.fail(path, "must be at most 255 characters")
        elif any(not part for part in key.split(".")):
            self.fail(path, "must not have an empty part between dots (use a.b for nesting)")
        elif "\x00" in key:
            self.fail(path, "must not contain a NUL character")

    # -- conditions -------------------------------------------------------------------------

    def trait(self, body: dict, path: str) -> None:
        if self.keys(body, path, required=("key", "op"), optional=("value",)):
            self.key_path(body["key"], f"{path}.key")
            self.value_operation(body, path, VALUE_OPERATORS)

    def profile(self, body: dict, path: str) -> None:
        if not self.keys(body, path, required=("field", "op"), optional=("value",)):
            return
        field = body["field"]
        if field in TEXT_FIELDS:
            self.value_operation(body, path, TEXT_OPERATORS, text_only=True)
        elif field in DATE_FIELDS:
            self.value_operation(body, path, DATE_OPERATORS)
        else:
            self.fail(f"{path}.field", f"must be one of {_choices(PROFILE_FIELDS)}")

    def event(self, body: dict, path: str) -> None:
        optional = ("where", "count", "within_days", "performed")
        if not self.keys(body, path, required=("name",), optional=optional):
            return
        name = body["name"]
        if not isinstance(name, str) or not name.strip():
            self.fail(f"{path}.name", "must be a non-empty event name")
        elif len(name) > 255:
            self.fail(f"{path}.name", "must be at most 255 characters")
        performed = body.get("performed", True)
        if not isinstance(performed, bool):
            self.fail(f"{path}.performed", "must be true or false")
        elif not performed and "count" in body:
            self.fail(f"{path}.count", "cannot be combined with performed: false")
        if "within_days" in body:
            self.days(body["within_days"], f"{path}.within_days", minimum=1)
        where = body.get("where", [])
        if not isinstance(where, list):
            self.fail(f"{path}.where", "must be a list of property conditions")
        else:
            for index, condition in enumerate(where):
                self.property_condition(condition, f"{path}.where[{index}]")
        if "count" in body:
            self.count(body["count"], f"{path}.count")

    def property_condition(self, condition: Any, path: str) -> None:
        if not isinstance(condition, dict):
            self.fail(path, "must be an object with property, op and value")
            return
        if self.keys(condition, path, required=("property", "op"), optional=("value",)):
            self.key_path(condition["property"], f"{path}.property")
            self.value_operation(condition, path, VALUE_OPERATORS)

    def count(self, count: Any, path: str) -> None:
        if not isinstance(count, dict):
            self.fail(path, "must be an object with at_least and/or at_most")
            return
        if not self.keys(count, path, required=(), optional=("at_least", "at_most")):
            return
        if not count:
            self.fail(path, "must give at_least, at_most or both")
            return
        for bound in ("at_least", "at_most"):
            if bound in count and (not _is_whole(count[bound]) or count[bound] < 0):
                self.fail(f"{path}.{bound}", "must be a whole number ≥ 0")
                return
        if "at_least" in count and "at_most" in count and count["at_least"] > count["at_most"]:
            self.fail(path, "at_least must not be greater than at_most")

    def segment(self, body: dict, path: str) -> None:
        if self.keys(body, path, required=("key",)):
            key = body["key"]
            if not isinstance(key, str) or not key.strip() or len(key) > 64:
                self.fail(f"{path}.key", "must be a segment key (1 to 64 characters)")

    def reachable(self, body: dict, path: str) -> None:
        if self.keys(body, path, required=("channel",)) and body["channel"] not in CHANNELS:
            self.fail(f"{path}.channel", f"must be one of {_choices(CHANNELS)}")

    def score(self, body: dict, path: str) -> None:
        if not self.keys(body, path, required=("model", "op", "value")):
            return
        if body["model"] not in SCORE_MODELS:
            self.fail(f"{path}.model", f"must be one of {_choices(SCORE_MODELS)}")
        if body["op"] not in SCORE_OPERATORS:
            self.fail(f"{path}.op", f"must be one of {_choices(SCORE_OPERATORS)}")
        value = body["value"]
        if body["op"] == "top_percent":
            if not _is_number(value) or not 0 < value <= 100:
                self.fail(f"{path}.value", "must be a percentage above 0, up to 100")
        elif not _is_number(value) or not 0 <= value <= 1:
            self.fail(f"{path}.value", "must be a number from 0 to 1")

    def cluster(self, body: dict, path: str) -> None:
        if not self.keys(body, path, required=("in",)):
            return
        clusters = body["in"]
        if (
            not isinstance(clusters, list)
            or not 0 < len(clusters) <= MAX_LIST_VALUES
            or not all(type(cluster) is int and cluster >= 0 for cluster in clusters)
        ):
            self.fail(f"{path}.in", "must be a non-empty list of cluster numbers (0, 1, ...)")

    def consent(self, body: dict, path: str) -> None:
        if not self.keys(body, path, required=("channel", "topic", "state")):
            return
        if body["channel"] not in CHANNELS:
            self.fail(f"{path}.channel", f"must be one of {_choices(CHANNELS)}")
        topic = body["topic"]
        if not isinstance(topic, str) or not topic.strip() or len(topic) > 64:
            self.fail(f"{path}.topic", "must be a topic key (1 to 64 characters)")
        if body["state"] not in CONSENT_STATES:
            self.fail(f"{path}.state", f"must be one of {_choices(CONSENT_STATES)}")

    def rfm(self, body: dict, path: str) -> None:
        if not self.keys(body, path, required=(), optional=("segment", *RFM_SCORES)):
            return
        if not body:
            self.fail(path, f"must give segment or a score ({_choices(RFM_SCORES)})")
            return
        if "segment" in body:
            names = body["segment"]
            names = [names] if isinstance(names, str) else names
            if (
                not isinstance(names, list)
                or not names
                or not all(isinstance(name, str) and name in RFM_SEGMENT_NAMES for name in names)
            ):
                self.fail(
                    f"{path}.segment",
                    f"must be one of {_choices(RFM_SEGMENT_NAMES)}, or a non-empty list of them",
                )
        for score in RFM_SCORES:
            if score in body:
                self.rfm_score(body[score], f"{path}.{score}")

    def rfm_score(self, bounds: Any, path: str) -> None:
        if not isinstance(bounds, dict):
            self.fail(path, f"must be an object with {_choices(RFM_BOUNDS)}")
            return
        if not self.keys(bounds, path, required=(), optional=RFM_BOUNDS):
            return
        if not bounds:
            self.fail(path, f"must give {_choices(RFM_BOUNDS)}")
            return
        for bound, value in bounds.items():
            if not _is_whole(value) or not 1 <= value <= 5:
                self.fail(f"{path}.{bound}", "must be a whole score from 1 to 5")
                return
        if bounds.get("gte", 1) > bounds.get("lte", 5):
            self.fail(path, "gte must not be greater than lte")

    # -- operators and their values ---------------------------------------------------------

    def value_operation(
        self, body: dict, path: str, operators: tuple[str, ...], *, text_only: bool = False
    ) -> None:
        op = body["op"]
        if op not in operators:
            self.fail(f"{path}.op", f"must be one of {_choices(operators)}")
            return
        value_path = f"{path}.value"
        if op == "exists":
            if "value" in body:
                self.fail(value_path, "is not used with exists (wrap the condition in not)")
            return
        if "value" not in body:
            self.fail(value_path, f"is required with {op}")
            return
        value = body["value"]
        if op in ("equals", "not_equals"):
            self.scalar(value, value_path, text_only=text_only)
        elif op == "in":
            if not isinstance(value, list) or not value or len(value) > MAX_LIST_VALUES:
                self.fail(value_path, f"must be a list of 1 to {MAX_LIST_VALUES} values")
                return
            for index, item in enumerate(value):
                self.scalar(item, f"{value_path}[{index}]", text_only=text_only)
        elif op in ("less_than", "less_or_equal", "greater_than", "greater_or_equal"):
            if not _is_number(value):
                self.fail(value_path, "must be a number")
        elif op == "between":
            if (
                not isinstance(value, list)
                or len(value) != 2
                or not all(_is_number(bound) for bound in value)
            ):
                self.fail(value_path, "must be a list of two numbers [low, high]")
            elif value[0] > value[1]:
                self.fail(value_path, "the low bound must not be greater than the high bound")
        elif op == "contains":
            if text_only or isinstance(value, str):
                self.text(value, value_path)
            else:
                self.scalar(value, value_path)
        elif op == "starts_with":
            self.text(value, value_path)
        elif op in ("within_last_days", "more_than_days_ago"):
            self.days(value, value_path, minimum=0)
        elif op == "anniversary_within_days":
            if not _is_whole(value) or not 0 <= value <= MAX_ANNIVERSARY_DAYS:
                self.fail(
                    value_path, f"must be a whole number of days from 0 to {MAX_ANNIVERSARY_DAYS}"
                )
        elif op in ("before", "after") and parse_date(value) is None:
            self.fail(
                value_path, "must be an ISO 8601 date such as 2025-01-31 or 2025-01-31T09:00:00Z"
            )

    def scalar(self, value: Any, path: str, *, text_only: bool = False) -> None:
        if text_only:
            self.text(value, path)
        elif not _is_scalar(value):
            self.fail(path, "must be a string, a number or true/false")
        elif isinstance(value, str):
            self.text(value, path, allow_empty=True)

    def text(self, value: Any, path: str, *, allow_empty: bool = False) -> None:
        if not isinstance(value, str):
            self.fail(path, "must be a string")
        elif not value and not allow_empty:
            self.fail(path, "must not be empty")
        elif len(value) > MAX_TEXT:
            self.fail(path, f"must be at most {MAX_TEXT} characters")
        elif "\x00" in value:
            self.fail(path, "must not contain a NUL character")

    def days(self, value: Any, path: str, *, minimum: int) -> None:
        if not _is_whole(value) or not minimum <= value <= MAX_DAYS:
            self.fail(path, f"must be a whole number of days from {minimum} to {MAX_DAYS}")
