"""What segment rules read about customers, loaded for a whole batch at once.

``customer_snapshots`` builds the ``CustomerSnapshot`` of every customer in a batch in a
fixed number of queries whatever the batch size: at most one per input a condition kind
reads (events, memberships, push devices, scores, clusters, consent topics, consent
states, RFM), and none for the profile and traits, which come with the customer rows.
It is the one place snapshots are built: ``segments.selectors.customer_snapshot`` is a
batch of one, and journeys' condition steps load their batches through it.
"""

from collections import defaultdict
from collections.abc import Iterable

from consent.gate import RecordedState
from consent.models import ConsentState, Topic
from consent.services.gate import topic_rule
from customers.models import Customer, Device, Event
from segments.models import CustomerCluster, CustomerRFM, CustomerScore, SegmentMembership
from segments.rules import CustomerSnapshot, EventFact
from segments.rules.validation import CONDITIONS


def customer_snapshots(
    *, customers: Iterable[Customer], kinds: Iterable[str] | None = None
) -> dict[int, CustomerSnapshot]:
    """A snapshot per customer id, with what conditions of these ``kinds`` read (every
    kind when None); inputs of other kinds are left at their empty defaults."""
    customers = {customer.pk: customer for customer in customers}
    kinds = set(CONDITIONS if kinds is None else kinds)
    unknown = kinds - set(CONDITIONS)
    if unknown:
        raise ValueError(f"unknown condition kinds: {', '.join(sorted(unknown))}")
    ids = list(customers)
    events = _events(ids) if "event" in kinds else {}
    segment_keys = _segment_keys(ids) if "segment" in kinds else {}
    push = _push(ids) if "reachable" in kinds else set()
    scores, percentiles = _scores(ids) if "score" in kinds else ({}, {})
    clusters = _clusters(ids) if "cluster" in kinds else {}
    topics, consent_states = _consent(ids) if "consent" in kinds else ({}, {})
    rfm = _rfm(ids) if "rfm" in kinds else {}
    return {
        pk: CustomerSnapshot(
            first_seen=customer.first_seen,
            last_seen=customer.last_seen,
            email=customer.email,
            phone=customer.phone,
            timezone=customer.timezone,
            locale=customer.locale,
            traits=customer.traits,
            events=tuple(events.get(pk, ())),
            segment_keys=frozenset(segment_keys.get(pk, ())),
            has_push_device=pk in push,
            scores=scores.get(pk, {}),
            score_percentiles=percentiles.get(pk, {}),
            cluster=clusters.get(pk),
            # The same topics for everyone: one dict, shared (snapshots are read-only).
            consent_topics=topics,
            consent_states=consent_states.get(pk, {}),
            rfm=rfm.get(pk),
        )
        for pk, customer in customers.items()
    }


def _events(ids: list[int]) -> dict[int, list[EventFact]]:
    events: dict[int, list[EventFact]] = defaultdict(list)
    rows = (
        Event.objects.filter(customer_id__in=ids)
        .order_by("customer_id", "timestamp", "pk")
        .values_list("customer_id", "name", "timestamp", "properties")
    )
    for customer_id, name, timestamp, properties in rows:
        events[customer_id].append(EventFact(name, timestamp, properties))
    return events


def _segment_keys(ids: list[int]) -> dict[int, set[str]]:
    keys: dict[int, set[str]] = defaultdict(set)
    rows = SegmentMembership.objects.filter(customer_id__in=ids, exited_at=None).values_list(
        "customer_id", "segment__key"
    )
    for customer_id, key in rows:
        keys[customer_id].add(key)
    return keys


def _push(ids: list[int]) -> set[int]:
    return set(Device.objects.filter(customer_id__in=ids).values_list("customer_id", flat=True))


def _scores(ids: list[int]) -> tuple[dict[int, dict], dict[int, dict]]:
    scores: dict[int, dict] = defaultdict(dict)
    percentiles: dict[int, dict] = defaultdict(dict)
    rows = CustomerScore.objects.filter(customer_id__in=ids).values_list(
        "customer_id", "kind", "score", "percentile"
    )
    for customer_id, kind, score, percentile in rows:
        scores[customer_id][kind] = score
        percentiles[customer_id][kind] = percentile
    return scores, percentiles


def _clusters(ids: list[int]) -> dict[int, int]:
    return dict(
        CustomerCluster.objects.filter(customer_id__in=ids).values_list("customer_id", "cluster")
    )


def _consent(ids: list[int]) -> tuple[dict, dict[int, dict]]:
    """Every topic's rule, and each customer's derived state per (channel, topic key),
    the key None for the channel-wide row."""
    topics = {topic.key: topic_rule(topic) for topic in Topic.objects.all()}
    states: dict[int, dict] = defaultdict(dict)
    rows = ConsentState.objects.filter(customer_id__in=ids).values_list(
        "customer_id", "channel", "topic__key", "action", "occurred_at", "event_id"
    )
    for customer_id, channel, topic_key, action, occurred_at, event_id in rows:
        states[customer_id][(channel, topic_key)] = RecordedState(action, occurred_at, event_id)
    return topics, states


def _rfm(ids: list[int]) -> dict[int, dict]:
    rows = CustomerRFM.objects.filter(customer_id__in=ids).values_list(
        "customer_id", "recency_score", "frequency_score", "monetary_score", "segment"
    )
    return {
        customer_id: {
            "recency": recency,
            "frequency": frequency,
            "monetary": monetary,
            "segment": segment,
        }
        for customer_id, recency, frequency, monetary, segment in rows
    }
