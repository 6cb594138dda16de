"""Condition steps in the segment rule language (docs/segments.md), plus the trigger payload.

Registered as the condition evaluator in ``JourneysConfig.ready()``. A condition's rule is
a segment rule — traits, profile fields, events (did / did not, counts, windows, property
filters), segment membership, reachability, consent, scores, clusters, RFM — evaluated for
one customer by segments' pure evaluator, with one addition the segment language cannot
express because a segment has no trigger: ``payload`` conditions on the enrolment's trigger
payload, e.g. ``{"payload": {"key": "cart_total", "op": "greater_than", "value": 100}}``.
``all`` / ``any`` / ``not`` combine both freely.

The journeys rule forms that came before (``{"trait": {"name", "op": "eq"}}``,
``{"segment": "vip"}``, ``{"event": {"name", "min_count"}}``, payload ops ``eq`` … ``lte``)
are still accepted, so published versions and exported journeys keep working; they are
evaluated by ``BasicConditions`` as before.
"""

import datetime as dt
from dataclasses import replace
from typing import Any

from journeys.engine.conditions import OPERATORS as BASIC_OPERATORS
from journeys.engine.conditions import BasicConditions
from journeys.engine.facts import CustomerFacts
from segments.rules import CustomerSnapshot, RuleError, evaluate_rule, validate_rule
from segments.rules.validation import CONDITIONS, VALUE_OPERATORS

COMBINATORS = ("all", "any", "not")
PAYLOAD = "payload"
KINDS = (*COMBINATORS, *CONDITIONS, PAYLOAD)
# Operators only the older journeys forms have (both have in, contains, exists).
LEGACY_ONLY_OPERATORS = frozenset(BASIC_OPERATORS) - frozenset(VALUE_OPERATORS)


def leaf_language(kind: str, body: Any) -> str:
    """Which evaluator a (non-combinator) condition belongs to: ``segments``, ``basic``
    (the older journeys forms) or ``payload`` (segment operators on the trigger payload)."""
    if kind == PAYLOAD:
        op = body.get("op") if isinstance(body, dict) else None
        return "payload" if op in VALUE_OPERATORS else "basic"
    if kind == "trait" and isinstance(body, dict) and "name" in body and "key" not in body:
        return "basic"
    if kind == "segment" and isinstance(body, str):
        return "basic"
    if kind == "event" and isinstance(body, dict):
        where = body.get("where")
        legacy_where = isinstance(where, list) and any(
            isinstance(item, dict) and item.get("op") in LEGACY_ONLY_OPERATORS for item in where
        )
        if "min_count" in body or legacy_where:
            return "basic"
    return "segments"


class SegmentRuleConditions:
    """``journeys.ports.ConditionEvaluator`` backed by ``segments.rules``."""

    def __init__(self) -> None:
        self.basic = BasicConditions()

    # -- validation ---------------------------------------------------------------------------

    def validate(self, rule: Any, field: str = "rule") -> list[tuple[str, str]]:
        """Every fault as (JSON path under ``field``, reason), e.g.
        ``("config.rule.all[1].event.count.at_least", "must be a whole number ≥ 0")``."""
        if not isinstance(rule, dict) or len(rule) != 1:
            return [(field, f"must be an object with exactly one of the keys {', '.join(KINDS)}")]
        kind, body = next(iter(rule.items()))
        here = f"{field}.{kind}"
        if kind in ("all", "any"):
            if not isinstance(body, list) or not body:
                return [(here, "must be a non-empty list of rules")]
            return [p for i, child in enumerate(body) for p in self.validate(child, f"{here}[{i}]")]
        if kind == "not":
            return self.validate(body, here)
        if kind not in KINDS:
            return [(field, f"unknown condition {kind!r} (expected one of {', '.join(KINDS)})")]
        language = leaf_language(kind, body)
        if language == "basic":
            return self.basic.validate(rule, field)
        if language == "payload":
            return self._validate_payload(body, here)
        try:
            validate_rule(rule)
        except RuleError as error:
            # segments names faults from the rule's root, "$.event.count.at_least".
            return [(field + fault.path[1:], fault.message) for fault in error.faults]
        return []

    def _validate_payload(self, body: dict, here: str) -> list[tuple[str, str]]:
        name_key = "key" if "key" in body else "property"
        try:
            validate_rule({"trait": _as_trait(body)})
        except RuleError as error:
            problems = []
            for fault in error.faults:
                suffix = fault.path.removeprefix("$.trait")
                if suffix == ".key":
                    suffix = f".{name_key}"
                problems.append((here + suffix, fault.message))
            return problems
        return []

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(
        self, rule: dict, *, facts: CustomerFacts, payload: dict, now: dt.datetime
    ) -> bool:
        return _Evaluation(self.basic, facts, payload, now).rule(rule)


class _Evaluation:
    def __init__(self, basic, facts: CustomerFacts, payload: dict, now: dt.datetime) -> None:
        self.basic, self.facts, self.payload, self.now = basic, facts, payload, now
        self._snapshot: CustomerSnapshot | None = None

    def rule(self, rule: dict) -> bool:
        kind, body = next(iter(rule.items()))
        if kind == "all":
            return all(self.rule(child) for child in body)
        if kind == "any":
            return any(self.rule(child) for child in body)
        if kind == "not":
            return not self.rule(body)
        language = leaf_language(kind, body)
        if language == "basic":
            return self.basic.evaluate(rule, facts=self.facts, payload=self.payload, now=self.now)
        if language == "payload":
            payload_only = CustomerSnapshot(
                first_seen=self.now, last_seen=self.now, traits=self.payload
            )
            return evaluate_rule({"trait": _as_trait(body)}, payload_only, now=self.now)
        return evaluate_rule(rule, self.snapshot(), now=self.now)

    def snapshot(self) -> CustomerSnapshot:
        """The runner's snapshot, with what the run itself can change: traits set by an
        earlier step, the events up to now, the current memberships."""
        if self._snapshot is None:
            base = self.facts.snapshot or CustomerSnapshot(first_seen=self.now, last_seen=self.now)
            self._snapshot = replace(
                base,
                traits=self.facts.traits,
                events=self.facts.events,
                segment_keys=self.facts.segment_keys,
            )
        return self._snapshot


def _as_trait(body: dict) -> dict:
    """A payload condition as the trait condition it is on a snapshot of the payload."""
    return {"key": body.get("key", body.get("property"))} | {
        name: value for name, value in body.items() if name not in ("key", "property")
    }
