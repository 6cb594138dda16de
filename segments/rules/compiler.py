"""Compiling a rule to one Django ``Q`` over ``Customer``: a pure function of (rule, now).

Every leaf compiles to a predicate that is never NULL (SQL's third truth value would make
``not`` disagree with the single-customer evaluator), events and memberships compile to
``Exists`` / counting subqueries correlated on the customer, so the whole rule is one
statement with no per-customer Python.
"""

import datetime as dt
import re
from typing import Any

import orjson
from django.db.models import (
    BooleanField,
    Count,
    DateTimeField,
    Exists,
    Expression,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.fields.json import KeyTransform

from segments.rules.validation import validate_rule
from segments.rules.values import DATE_PATTERN, anniversary_days, parse_date

_PLACEHOLDER = re.compile(r"\{(\d+)\}")


class Predicate(Expression):
    """A boolean SQL fragment over sub-expressions, ``{0}``, ``{1}``…

    Under a ``not`` it is coalesced to false, so that SQL's unknown does not turn into
    "not matched" on both sides. Elsewhere unknown already means "not selected", and the
    bare predicate keeps the planner's row estimates (a COALESCE hides the comparison
    from its statistics).
    """

    conditional = True

    def __init__(self, template: str, *expressions: Any, coalesce: bool = True) -> None:
        super().__init__(output_field=BooleanField())
        self.template = template
        self.coalesce = coalesce
        self.expressions = [
            expression if hasattr(expression, "resolve_expression") else Value(expression)
            for expression in expressions
        ]

    def __repr__(self) -> str:
        return f"Predicate({self.template!r}, {self.expressions!r})"

    def get_source_expressions(self) -> list:
        return self.expressions

    def set_source_expressions(self, expressions) -> None:
        self.expressions = list(expressions)

    def as_sql(self, compiler, connection):
        compiled = [compiler.compile(expression) for expression in self.expressions]
        params: list = []

        def substitute(match: re.Match) -> str:
            sql, expression_params = compiled[int(match.group(1))]
            params.extend(expression_params)
            return f"({sql})"

        sql = _PLACEHOLDER.sub(substitute, self.template)
        if self.coalesce:
            return f"COALESCE(({sql}), false)", params
        return f"({sql})", params


def _json(value: Any) -> Value:
    return Value(orjson.dumps(value).decode())


def compile_rule(
    rule: dict, *, now: dt.datetime, validate: bool = True, few_customers: bool = False
) -> Q:
    """The customers ``rule`` holds for at ``now``, as a ``Q``.

    The rule is validated first, unless the caller passes ``validate=False`` for a rule it
    validated when it was stored (the incremental path compiles on every event).

    Event counts compile two ways with the same meaning. Over the whole population (the
    default) they are a grouped semi-join: one pass over the matching events, hashed.
    For a few customers (``few_customers=True``, the per-event path) they are correlated
    subqueries that stop counting at the bound, each an index range scan of one customer's
    events.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if validate:
        validate_rule(rule)
    return _Compiler(now, few_customers=few_customers).rule(rule)


class _Compiler:
    def __init__(self, now: dt.datetime, *, few_customers: bool) -> None:
        self.now = now
        self.few_customers = few_customers
        # True while compiling under an even number of ``not``.
        self.positive = True

    def rule(self, rule: dict) -> Q:
        kind, body = next(iter(rule.items()))
        if kind == "all":
            result = Q()
            for child in body:
                result &= self.rule(child)
            return result
        if kind == "any":
            result = self.rule(body[0])
            for child in body[1:]:
                result |= self.rule(child)
            return result
        if kind == "not":
            self.positive = not self.positive
            try:
                return ~self.rule(body)
            finally:
                self.positive = not self.positive
        condition = getattr(self, kind)(body)
        if isinstance(condition, Predicate):
            condition.coalesce = not self.positive
        return condition if isinstance(condition, Q) else Q(condition)

    # -- conditions -------------------------------------------------------------------------

    def trait(self, body: dict) -> Expression:
        return self.json_value(_key_transform("traits", body["key"]), body)

    def profile(self, body: dict) -> Expression:
        field, op, value = body["field"], body["op"], body.get("value")
        column = F(field)
        if op in ("within_last_days", "more_than_days_ago", "before", "after"):
            return self.instant(column, op, value)
        if op == "exists":
            return Predicate("{0} <> ''", column)
        if op == "equals":
            return Predicate("{0} = {1}", column, value)
        if op == "not_equals":
            return Predicate("{0} <> {1}", column, value)
        if op == "in":
            return Predicate("{0} = ANY({1})", column, Value(list(value)))
        if op == "contains":
            return Predicate("strpos({0}, {1}) > 0", column, value)
        if op == "starts_with":
            return Predicate("starts_with({0}, {1})", column, value)
        raise AssertionError(op)

    def event(self, body: dict) -> Expression | Q:
        from customers.models import Event

        matching = Event.objects.filter(name=body["name"], timestamp__lte=self.now)
        if "within_days" in body:
            matching = matching.filter(
                timestamp__gt=self.now - dt.timedelta(days=body["within_days"])
            )
        for condition in body.get("where", []):
            predicate = self.json_value(
                _key_transform("properties", condition["property"]), condition
            )
            # A filter on event rows: unknown drops the row just as false does.
            predicate.coalesce = False
            matching = matching.filter(Q(predicate))
        events = matching.filter(customer_id=OuterRef("pk"))
        if not body.get("performed", True):
            return ~Exists(events)
        count = body.get("count", {"at_least": 1})
        at_least, at_most = count.get("at_least", 0), count.get("at_most")
        if not self.few_customers and (at_least > 1 or at_most not in (None, 0)):
            return _counted_semi_join(matching, at_least, at_most)
        if at_most is None:
            if at_least <= 1:
                return Exists(events) if at_least == 1 else Predicate("true")
            # Counting stops at at_least rows: a heavy user costs no more than a light one.
            return Predicate("{0} >= {1}", _limited_count(events, at_least), at_least)
        if at_most == 0:
            return ~Exists(events)
        number = _limited_count(events, at_most + 1)
        if at_least == 0:
            return Predicate("{0} <= {1}", number, at_most)
        return Predicate("{0} BETWEEN {1} AND {2}", number, at_least, at_most)

    def segment(self, body: dict) -> Expression:
        from segments.models import SegmentMembership

        return Exists(
            SegmentMembership.objects.filter(
                customer_id=OuterRef("pk"), segment__key=body["key"], exited_at__isnull=True
            )
        )

    def reachable(self, body: dict) -> Expression:
        channel = body["channel"]
        if channel == "email":
            return Predicate("{0} <> ''", F("email"))
        if channel == "sms":
            return Predicate("{0} <> ''", F("phone"))
        from customers.models import Device

        return Exists(Device.objects.filter(customer_id=OuterRef("pk")))

    def score(self, body: dict) -> Expression:
        from segments.models import CustomerScore

        op, value = body["op"], body["value"]
        if op == "top_percent":
            condition = {"percentile__gt": 1 - value / 100}
        else:
            condition = {"score__gt" if op == "above" else "score__lt": value}
        return Exists(
            CustomerScore.objects.filter(
                customer_id=OuterRef("pk"), kind=body["model"], **condition
            )
        )

    def cluster(self, body: dict) -> Expression:
        from segments.models import CustomerCluster

        return Exists(
            CustomerCluster.objects.filter(customer_id=OuterRef("pk"), cluster__in=body["in"])
        )

    def consent(self, body: dict) -> Expression:
        # consent.gate.effective_status in SQL, over the derived state table: the topic's
        # own row, and the channel-wide row ("unsubscribe from everything") that silences
        # every topic unless the topic was granted again after it. An unknown topic, or
        # one not sent on the channel, has no state.
        return Predicate(
            """EXISTS (SELECT 1 FROM consent_topic topic
              LEFT JOIN consent_consentstate topic_state
                ON topic_state.customer_id = {0} AND topic_state.channel = {1}
               AND topic_state.topic_id = topic.id
              LEFT JOIN consent_consentstate channel_state
                ON channel_state.customer_id = {0} AND channel_state.channel = {1}
               AND channel_state.topic_id IS NULL
              WHERE topic.key = {2} AND {1} = ANY(topic.channels) AND (CASE
                WHEN topic.is_transactional THEN 'allowed'
                WHEN channel_state.action = 'withdraw' AND NOT COALESCE(
                  topic_state.action = 'grant'
                  AND (topic_state.occurred_at, topic_state.event_id)
                    > (channel_state.occurred_at, channel_state.event_id), false)
                  THEN 'withdrawn'
                WHEN topic_state.action IS NULL THEN
                  CASE WHEN topic."default" = 'opt_out' THEN 'allowed' ELSE 'no_consent' END
                WHEN topic_state.action = 'grant' THEN 'allowed'
                WHEN topic_state.action = 'pending' THEN 'pending_confirmation'
                ELSE 'withdrawn' END) = {3})""",
            F("pk"),
            body["channel"],
            body["topic"],
            body["state"],
        )

    def rfm(self, body: dict) -> Expression:
        from segments.models import CustomerRFM

        condition: dict = {}
        if "segment" in body:
            names = body["segment"]
            condition["segment__in"] = [names] if isinstance(names, str) else list(names)
        lookups = {"gte": "gte", "lte": "lte", "equals": "exact"}
        for score in ("recency", "frequency", "monetary"):
            for bound, value in body.get(score, {}).items():
                condition[f"{score}_score__{lookups[bound]}"] = value
        return Exists(CustomerRFM.objects.filter(customer_id=OuterRef("pk"), **condition))

    # -- values -----------------------------------------------------------------------------

    def json_value(self, target: Expression, body: dict) -> Expression:
        """A condition on a jsonb value (``target`` is NULL when the key is missing)."""
        op, value = body["op"], body.get("value")
        if op == "exists":
            return Predicate("jsonb_typeof({0}) <> 'null'", target)
        if op == "equals":
            return Predicate("{0} = {1}::jsonb", target, _json(value))
        if op == "not_equals":
            return Predicate("NOT COALESCE({0} = {1}::jsonb, false)", target, _json(value))
        if op == "in":
            return Predicate(
                "{0} = ANY({1}::jsonb[])",
                target,
                Value([orjson.dumps(item).decode() for item in value]),
            )
        comparisons = {
            "less_than": "<",
            "less_or_equal": "<=",
            "greater_than": ">",
            "greater_or_equal": ">=",
        }
        if op in comparisons:
            # jsonb orders numbers numerically; the type test keeps strings out.
            return Predicate(
                f"jsonb_typeof({{0}}) = 'number' AND {{0}} {comparisons[op]} {{1}}::jsonb",
                target,
                _json(value),
            )
        if op == "between":
            return Predicate(
                "jsonb_typeof({0}) = 'number' AND {0} >= {1}::jsonb AND {0} <= {2}::jsonb",
                target,
                _json(value[0]),
                _json(value[1]),
            )
        if op == "contains":
            if isinstance(value, str):
                return Predicate(
                    "CASE jsonb_typeof({0})"
                    " WHEN 'string' THEN strpos({0} #>> '{}', {1}) > 0"
                    " WHEN 'array' THEN EXISTS"
                    "  (SELECT 1 FROM jsonb_array_elements({0}) AS item WHERE item = {2}::jsonb)"
                    " ELSE false END",
                    target,
                    value,
                    _json(value),
                )
            return Predicate(
                "CASE WHEN jsonb_typeof({0}) = 'array' THEN EXISTS"
                " (SELECT 1 FROM jsonb_array_elements({0}) AS item WHERE item = {1}::jsonb)"
                " ELSE false END",
                target,
                _json(value),
            )
        if op == "starts_with":
            return Predicate(
                "jsonb_typeof({0}) = 'string' AND starts_with({0} #>> '{}', {1})", target, value
            )
        if op == "anniversary_within_days":
            return Predicate(
                "CASE WHEN jsonb_typeof({0}) = 'string' AND ({0} #>> '{}') ~ {1}"
                " AND pg_input_is_valid({0} #>> '{}', 'timestamptz')"
                " THEN substr({0} #>> '{}', 6, 5) = ANY({2}) ELSE false END",
                target,
                DATE_PATTERN,
                Value(anniversary_days(now=self.now, days=value)),
            )
        return self.instant(_json_instant(target), op, value)

    def instant(self, instant: Expression, op: str, value: Any) -> Expression:
        """A condition on a timestamptz expression (NULL when the value is no date)."""
        if op == "within_last_days":
            since = self.now - dt.timedelta(days=value)
            return Predicate("{0} >= {1} AND {0} <= {2}", instant, since, self.now)
        if op == "more_than_days_ago":
            return Predicate("{0} < {1}", instant, self.now - dt.timedelta(days=value))
        if op == "before":
            return Predicate("{0} < {1}", instant, parse_date(value))
        if op == "after":
            return Predicate("{0} > {1}", instant, parse_date(value))
        raise AssertionError(op)


class _JsonInstant(Expression):
    """The timestamptz a jsonb value names, or NULL when it is not an ISO date string."""

    def __init__(self, target: Expression) -> None:
        super().__init__(output_field=DateTimeField())
        self.target = target

    def get_source_expressions(self) -> list:
        return [self.target]

    def set_source_expressions(self, expressions) -> None:
        (self.target,) = expressions

    def as_sql(self, compiler, connection):
        sql, params = compiler.compile(self.target)
        text = f"(({sql}) #>> '{{}}')"
        return (
            f"(CASE WHEN jsonb_typeof({sql}) = 'string' AND {text} ~ %s"
            f" AND pg_input_is_valid({text}, 'timestamptz') THEN {text}::timestamptz END)",
            [*params, *params, DATE_PATTERN, *params, *params],
        )


def _json_instant(target: Expression) -> Expression:
    return _JsonInstant(target)


def _key_transform(column: str, key: str) -> Expression:
    expression: Any = F(column)
    for part in key.split("."):
        expression = KeyTransform(part, expression)
    return expression


def _counted_semi_join(matching, at_least: int, at_most: int | None) -> Q:
    """Customers with at_least..at_most of the ``matching`` events, as
    ``id IN (events grouped by customer)``."""
    counted = matching.order_by().values("customer_id").annotate(number=Count("pk"))
    if at_least == 0:
        # Nobody with more than at_most (customers without any such event included).
        return ~Q(pk__in=counted.filter(number__gt=at_most).values("customer_id"))
    bounds = {"number__gte": at_least}
    if at_most is not None:
        bounds["number__lte"] = at_most
    return Q(pk__in=counted.filter(**bounds).values("customer_id"))


class _LimitedCount(Subquery):
    """How many rows a subquery has, counting no further than its LIMIT."""

    template = "(SELECT count(*) FROM (%(subquery)s) AS limited_events)"

    def __init__(self, queryset) -> None:
        super().__init__(queryset, output_field=IntegerField())


def _limited_count(events, limit: int) -> Expression:
    """How many of ``events`` there are, counting no further than ``limit``."""
    return _LimitedCount(events.order_by().values("pk")[:limit])
