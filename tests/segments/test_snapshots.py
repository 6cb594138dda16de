"""The batch snapshot loader: the same snapshots as the single-customer path, for any mix of
customers, in a fixed number of queries whatever the batch size."""

import datetime as dt
from dataclasses import replace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.gate import RecordedState
from consent.models import Topic
from consent.services.gate import topic_rule
from consent.services.ledger import consent_record
from customers.models import Customer
from segments.models import CustomerCluster, CustomerRFM, CustomerScore, ModelVersion
from segments.rules import EventFact, evaluate_rule
from segments.selectors import customer_snapshot
from segments.snapshots import customer_snapshots
from tests.consent.factories import TopicFactory
from tests.segments.factories import (
    NOW,
    CustomerFactory,
    DeviceFactory,
    EventFactory,
    SegmentFactory,
)
from tests.segments.rules.test_agreement import customers as generated_customers
from tests.segments.rules.test_agreement import store, topic_definitions

pytestmark = pytest.mark.django_db

# Events, memberships, devices, scores, clusters, topics, consent states, RFM.
QUERIES_FOR_EVERY_KIND = 8


@pytest.fixture
def models() -> dict[str, ModelVersion]:
    return {
        kind: ModelVersion.objects.create(kind=kind, version=1, trained_at=NOW, artefact=b"")
        for kind in ("churn", "purchase", "clusters")
    }


def consent(customer, action: str, *, topic: str | None, days_ago: int) -> None:
    consent_record(
        customer_id=customer.pk, channel="email", topic_key=topic, action=action,
        source="api", occurred_at=NOW - dt.timedelta(days=days_ago), now=NOW,
    )  # fmt: skip


def score(customer, models: dict, kind: str, value: float, *, percentile: float) -> None:
    CustomerScore.objects.create(
        customer=customer, kind=kind, model_version=models[kind], score=value,
        percentile=percentile, scored_at=NOW,
    )  # fmt: skip


def cluster(customer, models: dict, number: int) -> None:
    CustomerCluster.objects.create(
        customer=customer, model_version=models["clusters"], cluster=number, assigned_at=NOW
    )


def rfm(customer, recency: int, frequency: int, monetary: int, segment: str) -> None:
    CustomerRFM.objects.create(
        customer=customer, recency_days=1, frequency=1, monetary=1, recency_score=recency,
        frequency_score=frequency, monetary_score=monetary, segment=segment, computed_at=NOW,
    )  # fmt: skip


def customer_with_everything(name: str, models: dict, *, churn: float, number: int, rfm_score: int):
    """A customer with an event, a membership, a push device, a score, a cluster, consent
    state and RFM scores, each told apart from other customers' by ``name`` and numbers."""
    customer = CustomerFactory(external_id=name, traits={"name": name})
    EventFactory(customer=customer, name=f"{name} ordered", timestamp=NOW - dt.timedelta(days=2))
    SegmentFactory(key=f"{name}-fans", kind="static").memberships.create(
        customer=customer, entered_at=NOW
    )
    DeviceFactory(customer=customer)
    score(customer, models, "churn", churn, percentile=churn)
    cluster(customer, models, number)
    rfm(customer, rfm_score, rfm_score, rfm_score, "x")
    consent(customer, "grant", topic="news", days_ago=1)
    return customer


def test_the_batch_gives_each_customer_exactly_their_single_snapshot(models):
    # Given a topic and customers who differ in consent, RFM, scores, clusters and devices
    TopicFactory(key="news", channels=["email"])
    granted = CustomerFactory(external_id="granted")
    consent(granted, "grant", topic="news", days_ago=3)
    DeviceFactory(customer=granted)
    EventFactory(customer=granted, name="Visit", timestamp=NOW - dt.timedelta(days=1))
    EventFactory(customer=granted, name="Order", timestamp=NOW - dt.timedelta(days=5))
    SegmentFactory(key="vip", kind="static").memberships.create(customer=granted, entered_at=NOW)
    score(granted, models, "churn", 0.8, percentile=0.9)
    cluster(granted, models, 2)
    rfm(granted, 5, 5, 4, "champions")
    silenced = CustomerFactory(external_id="silenced", phone="+31612345678")
    consent(silenced, "withdraw", topic=None, days_ago=2)
    score(silenced, models, "purchase", 0.3, percentile=0.25)
    cluster(silenced, models, 0)
    blank = CustomerFactory(external_id="blank")
    everyone = [granted, silenced, blank]

    # When their snapshots are loaded as one batch
    batch = customer_snapshots(customers=Customer.objects.filter(pk__in=[c.pk for c in everyone]))

    # Then each is the customer's own single snapshot, with exactly what they hold
    assert batch == {customer.pk: customer_snapshot(customer=customer) for customer in everyone}
    ann, sil, nobody = (batch[customer.pk] for customer in everyone)
    assert [event.name for event in ann.events] == ["Order", "Visit"]
    assert ann.segment_keys == {"vip"} and sil.segment_keys == frozenset()
    assert (ann.has_push_device, sil.has_push_device, nobody.has_push_device) == (
        True,
        False,
        False,
    )
    assert (ann.scores, ann.score_percentiles) == ({"churn": 0.8}, {"churn": 0.9})
    assert (sil.scores, sil.score_percentiles) == ({"purchase": 0.3}, {"purchase": 0.25})
    assert (ann.cluster, sil.cluster, nobody.cluster) == (2, 0, None)
    assert ann.rfm == {"recency": 5, "frequency": 5, "monetary": 4, "segment": "champions"}
    assert (sil.rfm, nobody.rfm) == (None, None)
    assert [(key, state.action) for key, state in ann.consent_states.items()] == [
        (("email", "news"), "grant")
    ]
    assert [(key, state.action) for key, state in sil.consent_states.items()] == [
        (("email", None), "withdraw")
    ]
    assert nobody.consent_states == {}
    assert ann.consent_topics == sil.consent_topics == nobody.consent_topics
    assert ann.consent_topics["news"] == topic_rule(Topic.objects.get(key="news"))
    # And the rules read them as they should
    allowed = {"consent": {"channel": "email", "topic": "news", "state": "allowed"}}
    withdrawn = {"consent": {"channel": "email", "topic": "news", "state": "withdrawn"}}
    champions = {"rfm": {"segment": "champions"}}
    for rule, selected in [(allowed, ann), (withdrawn, sil), (champions, ann)]:
        assert [evaluate_rule(rule, snapshot, now=NOW) for snapshot in (ann, sil, nobody)] == [
            snapshot is selected for snapshot in (ann, sil, nobody)
        ]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(snapshots=st.lists(generated_customers, min_size=1, max_size=5), topics=topic_definitions)
def test_the_batch_loads_back_what_was_stored(snapshots, topics):
    # Given generated customers written to the database
    ids, stored = store(snapshots, topics)
    # (every topic, including those the migrations create, is in every snapshot)
    all_topics = {topic.key: topic_rule(topic) for topic in Topic.objects.exclude(key__in=topics)}

    # When they are loaded as one batch
    batch = customer_snapshots(customers=Customer.objects.filter(pk__in=ids))

    # Then each snapshot is the stored one and the single path's (events come in time
    # order, and percentiles only with a score, the default 0 when none was generated)
    assert list(batch) == ids
    for pk, snapshot in zip(ids, stored, strict=True):
        expected = replace(
            snapshot,
            events=tuple(sorted(snapshot.events, key=lambda event: event.timestamp)),
            score_percentiles={
                kind: snapshot.score_percentiles.get(kind, 0) for kind in snapshot.scores
            },
            consent_topics=all_topics | topics,
        )
        assert batch[pk] == expected
        assert batch[pk] == customer_snapshot(customer=Customer.objects.get(pk=pk))


@pytest.mark.parametrize("size", [1, 6])
def test_the_number_of_queries_does_not_grow_with_the_batch(models, size):
    # Given customers who each hold something of every kind
    TopicFactory(key="news", channels=["email"])
    batch = [
        customer_with_everything(f"c{n}", models, churn=n / 10, number=n, rfm_score=1 + n % 5)
        for n in range(size)
    ]

    # When their snapshots are loaded for every kind of condition
    with CaptureQueriesContext(connection) as queries:
        snapshots = customer_snapshots(customers=batch)

    # Then one query per input, whatever the batch size, and nothing of anyone else's
    assert len(queries) == QUERIES_FOR_EVERY_KIND
    assert len(snapshots) == size
    for n, customer in enumerate(batch):
        snapshot = snapshots[customer.pk]
        assert snapshot.events == (EventFact(f"c{n} ordered", NOW - dt.timedelta(days=2), {}),)
        assert snapshot.segment_keys == {f"c{n}-fans"}
        assert (snapshot.scores, snapshot.cluster) == ({"churn": n / 10}, n)
        assert snapshot.rfm["recency"] == 1 + n % 5
        assert list(snapshot.consent_states) == [("email", "news")]
        assert isinstance(snapshot.consent_states[("email", "news")], RecordedState)


def test_only_the_inputs_of_the_asked_kinds_are_loaded(models):
    # Given a customer who holds something of every kind
    TopicFactory(key="news", channels=["email"])
    customer = customer_with_everything("c", models, churn=0.5, number=1, rfm_score=3)

    # When only profile and trait conditions are asked for, nothing is queried
    with CaptureQueriesContext(connection) as queries:
        (profile_only,) = customer_snapshots(
            customers=[customer], kinds={"profile", "trait"}
        ).values()
    assert len(queries) == 0
    assert profile_only.traits == {"name": "c"}
    assert (profile_only.events, profile_only.scores, profile_only.rfm) == ((), {}, None)

    # And consent and RFM cost their own inputs only (topics, states; RFM)
    with CaptureQueriesContext(connection) as queries:
        (some,) = customer_snapshots(customers=[customer], kinds={"consent", "rfm"}).values()
    assert len(queries) == 3
    assert some.rfm["recency"] == 3 and list(some.consent_states) == [("email", "news")]
    assert (some.events, some.cluster, some.has_push_device) == ((), None, False)


def test_an_unknown_kind_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown condition kinds: payload, shoe_size"):
        customer_snapshots(customers=[], kinds={"trait", "payload", "shoe_size"})
