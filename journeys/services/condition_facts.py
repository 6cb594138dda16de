"""What segment-rule conditions read about customers, loaded for a whole batch at once.

Segments builds the snapshots (``segments.snapshots.customer_snapshots``, a fixed number of
queries whatever the batch size, every condition kind). Traits, events and memberships are
not asked of it: they are filled in from ``CustomerFacts`` at evaluation time, so steps that
change traits earlier in the same run are seen; ``payload`` reads the trigger's payload.
"""

from collections.abc import Iterable

from customers.models import Customer
from segments.rules import CustomerSnapshot
from segments.snapshots import customer_snapshots

# Condition kinds whose inputs the runner's facts provide, not the snapshot.
FROM_FACTS = frozenset({"trait", "event", "segment", "payload"})


def snapshots_load(
    *, customers: dict[int, Customer], kinds: Iterable[str]
) -> dict[int, CustomerSnapshot]:
    """A snapshot per customer id for conditions of these ``kinds``."""
    return customer_snapshots(customers=customers.values(), kinds=set(kinds) - FROM_FACTS)
