"""The SQL compiler and the single-customer evaluator agree on generated data and rules."""

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from consent.gate import RecordedState, TopicRule
from consent.models import ConsentEvent, ConsentState, Topic
from customers.models import Customer, Device, Event
from segments.models import (
    CustomerCluster,
    CustomerRFM,
    CustomerScore,
    ModelVersion,
    Segment,
    SegmentMembership,
)
from segments.rules import (
    CustomerSnapshot,
    EventFact,
    RuleError,
    compile_rule,
    evaluate_rule,
    validate_rule,
)
from segments.rules.rfm import RFM_SEGMENT_NAMES, rfm_segment
from tests.segments.factories import NOW

pytestmark = pytest.mark.django_db

KEYS = ["a", "b", "n.a"]
SEGMENT_KEYS = ["s1", "s2"]
EVENT_NAMES = ["Order", "Visit"]
# t3 is never defined: conditions on it hold for nobody.
TOPIC_KEYS = ["t1", "t2", "t3"]
CHANNELS = ["email", "sms", "push"]
DATES = [
    "2026-03-09",
    "2026-03-10T11:59:59Z",
    "2026-03-10T12:00:00+01:00",
    "2026-02-08T12:00:00",
    "1990-03-11",
    "2000-02-29",
    "1999-12-31T23:59:59.5-05:00",
    "2026-02-30",
    "yesterday",
    "2026-3-1",
]

scalars = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5, 2.0, 1e20]),
    st.text(alphabet="abAB ", max_size=3),
    st.sampled_from(DATES),
)
json_values = st.one_of(
    st.none(), scalars, st.lists(scalars, max_size=3), st.fixed_dictionaries({"a": scalars})
)
documents = st.dictionaries(st.sampled_from(["a", "b", "n"]), json_values, max_size=3)
offsets = st.integers(-40 * 24, 10 * 24).map(lambda hours: dt.timedelta(hours=hours))
moments = offsets.map(lambda offset: NOW + offset)
numbers = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2.0]))


def value_condition(key_field: str, key: str):
    base = {key_field: key}

    def with_op(op, value=None):
        body = {**base, "op": op}
        if value is not None:
            body["value"] = value
        return body

    return st.one_of(
        st.builds(with_op, st.just("exists")),
        st.builds(with_op, st.sampled_from(["equals", "not_equals"]), scalars),
        st.builds(with_op, st.just("in"), st.lists(scalars, min_size=1, max_size=3)),
        st.builds(
            with_op,
            st.sampled_from(["less_than", "less_or_equal", "greater_than", "greater_or_equal"]),
            numbers,
        ),
        st.builds(
            with_op, st.just("between"), st.lists(numbers, min_size=2, max_size=2).map(sorted)
        ),
        st.builds(with_op, st.just("contains"), scalars.filter(lambda v: v != "")),
        st.builds(
            with_op, st.just("starts_with"), st.text(alphabet="abAB", min_size=1, max_size=2)
        ),
        st.builds(
            with_op,
            st.sampled_from(["within_last_days", "more_than_days_ago", "anniversary_within_days"]),
            st.integers(0, 40),
        ),
        st.builds(with_op, st.sampled_from(["before", "after"]), st.sampled_from(DATES[:7])),
    )


trait_conditions = st.sampled_from(KEYS).flatmap(
    lambda key: value_condition("key", key).map(lambda body: {"trait": body})
)
profile_conditions = st.one_of(
    st.builds(
        lambda field, op, value: {"profile": {"field": field, "op": op, "value": value}},
        st.sampled_from(["email", "phone", "locale"]),
        st.sampled_from(["equals", "not_equals", "contains", "starts_with"]),
        st.sampled_from(["a", "nl", "+31", "@x.com", "nl-NL"]),
    ),
    st.builds(
        lambda field: {"profile": {"field": field, "op": "exists"}},
        st.sampled_from(["email", "phone", "timezone"]),
    ),
    st.builds(
        lambda field, op, days: {"profile": {"field": field, "op": op, "value": days}},
        st.sampled_from(["first_seen", "last_seen"]),
        st.sampled_from(["within_last_days", "more_than_days_ago"]),
        st.integers(0, 40),
    ),
)


@st.composite
def event_conditions(draw):
    body: dict = {"name": draw(st.sampled_from(EVENT_NAMES))}
    where = draw(
        st.lists(
            st.sampled_from(["a", "n.a"]).flatmap(lambda k: value_condition("property", k)),
            max_size=2,
        )
    )
    if where:
        body["where"] = where
    if draw(st.booleans()):
        body["within_days"] = draw(st.integers(1, 30))
    shape = draw(st.sampled_from(["plain", "not", "at_least", "at_most", "range"]))
    low, high = sorted(draw(st.lists(st.integers(0, 3), min_size=2, max_size=2)))
    if shape == "not":
        body["performed"] = False
    elif shape == "at_least":
        body["count"] = {"at_least": low}
    elif shape == "at_most":
        body["count"] = {"at_most": high}
    elif shape == "range":
        body["count"] = {"at_least": low, "at_most": high}
    return {"event": body}


score_conditions = st.one_of(
    st.builds(
        lambda model, op, value: {"score": {"model": model, "op": op, "value": value}},
        st.sampled_from(["churn", "purchase"]),
        st.sampled_from(["above", "below"]),
        st.sampled_from([0, 0.25, 0.5, 1]),
    ),
    st.builds(
        lambda model, value: {"score": {"model": model, "op": "top_percent", "value": value}},
        st.sampled_from(["churn", "purchase"]),
        st.sampled_from([10, 25, 50, 60, 100]),
    ),
)

consent_conditions = st.builds(
    lambda channel, topic, state: {"consent": {"channel": channel, "topic": topic, "state": state}},
    st.sampled_from(CHANNELS),
    st.sampled_from(TOPIC_KEYS),
    st.sampled_from(["allowed", "no_consent", "withdrawn", "pending_confirmation"]),
)
score_bounds = st.one_of(
    st.fixed_dictionaries({}, optional={"gte": st.integers(1, 5), "lte": st.integers(1, 5)}),
    st.fixed_dictionaries({"equals": st.integers(1, 5)}),
).filter(lambda bounds: bounds and bounds.get("gte", 1) <= bounds.get("lte", 5))
rfm_conditions = (
    st.fixed_dictionaries(
        {},
        optional={
            "segment": st.one_of(
                st.sampled_from(RFM_SEGMENT_NAMES),
                st.lists(st.sampled_from(RFM_SEGMENT_NAMES), min_size=1, max_size=3),
            ),
            "recency": score_bounds,
            "frequency": score_bounds,
            "monetary": score_bounds,
        },
    )
    .filter(bool)
    .map(lambda body: {"rfm": body})
)

cluster_conditions = st.lists(st.integers(0, 2), min_size=1, max_size=2).map(
    lambda clusters: {"cluster": {"in": clusters}}
)

leaves = st.one_of(
    cluster_conditions,
    consent_conditions,
    rfm_conditions,
    score_conditions,
    trait_conditions,
    profile_conditions,
    event_conditions(),
    st.builds(lambda key: {"segment": {"key": key}}, st.sampled_from(SEGMENT_KEYS)),
    st.builds(
        lambda channel: {"reachable": {"channel": channel}},
        st.sampled_from(["email", "sms", "push"]),
    ),
)
rules = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda child: {"not": child}, children),
    ),
    max_leaves=6,
)

topic_rules = st.builds(
    lambda channels, opt_out, transactional: (channels, opt_out, transactional),
    st.sets(st.sampled_from(CHANNELS), min_size=1).map(frozenset),
    st.booleans(),
    st.booleans(),
)
topic_definitions = st.fixed_dictionaries({"t1": topic_rules, "t2": topic_rules}).map(
    lambda rules: {
        key: TopicRule(key, channels, opt_out_default=opt_out, is_transactional=transactional)
        for key, (channels, opt_out, transactional) in rules.items()
    }
)
# Few distinct moments, so a topic's grant and a channel-wide withdrawal often tie on time
# and the ledger row's id decides.
consent_moments = st.sampled_from([NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=1)])
consent_states = st.dictionaries(
    st.tuples(st.sampled_from(CHANNELS), st.sampled_from(["t1", "t2", None])),
    consent_moments,
    max_size=4,
).flatmap(
    lambda moments: st.fixed_dictionaries(
        {
            key: st.sampled_from(
                ["grant", "withdraw"] if key[1] is None else ["grant", "withdraw", "pending"]
            ).map(lambda action, at=at: RecordedState(action, at, 0))
            for key, at in moments.items()
        }
    )
)
rfm_scores = st.one_of(
    st.none(),
    st.builds(
        lambda recency, frequency, monetary: {
            "recency": recency,
            "frequency": frequency,
            "monetary": monetary,
            "segment": rfm_segment(recency=recency, frequency=frequency),
        },
        st.integers(1, 5),
        st.integers(1, 5),
        st.integers(1, 5),
    ),
)


events = st.builds(
    lambda name, timestamp, properties: EventFact(name, timestamp, properties),
    st.sampled_from(EVENT_NAMES),
    moments,
    documents,
)
customers = st.builds(
    CustomerSnapshot,
    first_seen=moments,
    last_seen=moments,
    email=st.sampled_from(["", "a@x.com", "nl@y.org"]),
    phone=st.sampled_from(["", "+31612345678"]),
    timezone=st.sampled_from(["", "Europe/Amsterdam"]),
    locale=st.sampled_from(["", "nl-NL", "en"]),
    traits=documents.map(
        lambda traits: {**traits, "n": {"a": traits.get("n")}} if "n" in traits else traits
    ),
    events=st.lists(events, max_size=4).map(tuple),
    segment_keys=st.frozensets(st.sampled_from(SEGMENT_KEYS)),
    has_push_device=st.booleans(),
    score_percentiles=st.dictionaries(
        st.sampled_from(["churn", "purchase"]), st.sampled_from([0.1, 0.5, 0.75, 0.9, 1.0])
    ),
    scores=st.dictionaries(
        st.sampled_from(["churn", "purchase"]), st.sampled_from([0.0, 0.25, 0.3, 0.5, 0.99])
    ),
    consent_states=consent_states,
    rfm=rfm_scores,
    cluster=st.one_of(st.none(), st.integers(0, 2)),
)


def store(
    snapshots: list[CustomerSnapshot], topics: dict[str, TopicRule]
) -> tuple[list[int], list[CustomerSnapshot]]:
    """Write the customers; return their ids and the snapshots with the topics and the
    ledger rows' real ids (the state's tie-breaker).

    Customers of earlier examples stay (the consent ledger protects them): queries are
    limited to this example's ids.
    """
    for key, rule in topics.items():
        Topic.objects.update_or_create(
            key=key,
            defaults={
                "name": key, "channels": sorted(rule.channels),
                "default": "opt_out" if rule.opt_out_default else "opt_in",
                "double_opt_in": False, "is_transactional": rule.is_transactional,
            },
        )  # fmt: skip
    topic_ids = dict(Topic.objects.values_list("key", "pk"))
    CustomerRFM.objects.all().delete()
    Segment.objects.all().delete()
    # Static: they only hold memberships for the segment conditions to read.
    segments = {
        key: Segment.objects.create(key=key, name=key, kind="static") for key in SEGMENT_KEYS
    }
    ModelVersion.objects.all().delete()
    models = {
        kind: ModelVersion.objects.create(kind=kind, version=1, trained_at=NOW, artefact=b"")
        for kind in ("churn", "purchase", "clusters")
    }
    ids, stored = [], []
    first = Customer.objects.count()
    for index, snapshot in enumerate(snapshots, start=first):
        customer = Customer.objects.create(
            external_id=f"generated-{index}",
            email=snapshot.email,
            phone=snapshot.phone,
            timezone=snapshot.timezone,
            locale=snapshot.locale,
            traits=snapshot.traits,
            first_seen=snapshot.first_seen,
            last_seen=snapshot.last_seen,
        )
        ids.append(customer.pk)
        Event.objects.bulk_create(
            Event(
                customer=customer,
                type=Event.Type.TRACK,
                name=event.name,
                properties=event.properties,
                timestamp=event.timestamp,
                message_id=f"generated-{index}-{number}",
            )
            for number, event in enumerate(snapshot.events)
        )
        for key in snapshot.segment_keys:
            SegmentMembership.objects.create(
                segment=segments[key], customer=customer, entered_at=NOW
            )
        for kind, score in snapshot.scores.items():
            CustomerScore.objects.create(
                customer=customer, kind=kind, model_version=models[kind], score=score,
                percentile=snapshot.score_percentiles.get(kind, 0), scored_at=NOW,
            )  # fmt: skip
        if snapshot.has_push_device:
            Device.objects.create(
                customer=customer, platform="ios", token=f"generated-token-{index}"
            )
        states = {}
        for (channel, topic_key), state in snapshot.consent_states.items():
            row = ConsentEvent.objects.create(
                customer=customer, channel=channel, topic_id=topic_ids.get(topic_key),
                action=state.action, source="api", occurred_at=state.occurred_at,
            )  # fmt: skip
            ConsentState.objects.create(
                customer=customer, channel=channel, topic_id=topic_ids.get(topic_key),
                action=state.action, occurred_at=state.occurred_at, event=row,
            )  # fmt: skip
            states[(channel, topic_key)] = RecordedState(state.action, state.occurred_at, row.pk)
        if snapshot.cluster is not None:
            CustomerCluster.objects.create(
                customer=customer, model_version=models["clusters"], cluster=snapshot.cluster,
                assigned_at=NOW,
            )  # fmt: skip
        if snapshot.rfm is not None:
            CustomerRFM.objects.create(
                customer=customer, recency_days=1, frequency=1, monetary=1,
                recency_score=snapshot.rfm["recency"],
                frequency_score=snapshot.rfm["frequency"],
                monetary_score=snapshot.rfm["monetary"],
                segment=snapshot.rfm["segment"], computed_at=NOW,
            )  # fmt: skip
        stored.append(replace(snapshot, consent_topics=topics, consent_states=states))
    return ids, stored


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    snapshots=st.lists(customers, min_size=1, max_size=5),
    rule_list=st.lists(rules, min_size=1, max_size=4),
    now=st.integers(-5 * 24, 5 * 24).map(lambda hours: NOW + dt.timedelta(hours=hours)),
    topics=topic_definitions,
)
def test_compiler_and_evaluator_agree(snapshots, rule_list, now, topics):
    for rule in rule_list:
        try:
            validate_rule(rule)
        except RuleError:
            assume(False)
    ids, snapshots = store(snapshots, topics)

    for rule, few_customers in ((rule, mode) for rule in rule_list for mode in (False, True)):
        by_sql = set(
            Customer.objects.filter(pk__in=ids)
            .filter(compile_rule(rule, now=now, few_customers=few_customers))
            .values_list("pk", flat=True)
        )
        by_python = {
            pk
            for pk, snapshot in zip(ids, snapshots, strict=True)
            if evaluate_rule(rule, snapshot, now=now)
        }
        assert by_sql == by_python, rule
        event(
            "selects none"
            if not by_sql
            else "selects all"
            if len(by_sql) == len(ids)
            else "selects some"
        )
