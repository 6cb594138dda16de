"""What segment-rule conditions read about customers, loaded for a whole batch at once.

Profile fields, push devices, scores and clusters come in a fixed number of queries
whatever the batch size. Condition kinds journeys does not load itself (consent state,
RFM, any kind segments adds later) fall back to segments' own single-customer snapshot,
one customer at a time: correct, but a few queries per customer.

Traits, events and memberships are filled in from ``CustomerFacts`` at evaluation time,
so steps that change traits earlier in the same run are seen.
"""

from collections import defaultdict
from collections.abc import Iterable

from customers.models import Customer, Device
from segments.rules import CustomerSnapshot

# Condition kinds whose inputs this module loads in sets.
BATCH_KINDS = frozenset(
    {"trait", "profile", "event", "segment", "reachable", "score", "cluster", "payload"}
)


def snapshots_load(
    *, customers: dict[int, Customer], kinds: Iterable[str]
) -> dict[int, CustomerSnapshot]:
    """A snapshot per customer id for conditions of these ``kinds``."""
    from segments.models import CustomerCluster, CustomerScore

    kinds = set(kinds)
    if kinds - BATCH_KINDS:
        from segments.selectors import customer_snapshot

        return {pk: customer_snapshot(customer=customer) for pk, customer in customers.items()}
    push: set[int] = set()
    if "reachable" in kinds:
        push = set(
            Device.objects.filter(customer_id__in=customers).values_list("customer_id", flat=True)
        )
    scores: dict[int, dict] = defaultdict(dict)
    percentiles: dict[int, dict] = defaultdict(dict)
    if "score" in kinds:
        rows = CustomerScore.objects.filter(customer_id__in=customers).values_list(
            "customer_id", "kind", "score", "percentile"
        )
        for customer_id, kind, score, percentile in rows:
            scores[customer_id][kind] = score
            percentiles[customer_id][kind] = percentile
    clusters: dict[int, int] = {}
    if "cluster" in kinds:
        clusters = dict(
            CustomerCluster.objects.filter(customer_id__in=customers).values_list(
                "customer_id", "cluster"
            )
        )
    return {
        pk: CustomerSnapshot(
            first_seen=customer.first_seen,
            last_seen=customer.last_seen,
            email=customer.email,
            phone=customer.phone,
            timezone=customer.timezone,
            locale=customer.locale,
            traits=customer.traits,
            has_push_device=pk in push,
            scores=scores[pk],
            score_percentiles=percentiles[pk],
            cluster=clusters.get(pk),
        )
        for pk, customer in customers.items()
    }
