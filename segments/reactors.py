"""The segments reactor: re-evaluate, for the customers of new events, the segments those
events can change. Runs inside the hand-over transaction (see customers.reactors)."""

from collections.abc import Sequence

from customers.models import Event
from segments.services.index import segment_index
from segments.services.memberships import segments_reevaluate


def on_events(events: Sequence[Event]) -> None:
    index = segment_index()
    if not index.segments:
        return
    segment_ids: set[int] = set()
    customer_ids: set[int] = set()
    for event in events:
        device = event.context.get("device") if isinstance(event.context, dict) else None
        affected = index.for_event(
            name=event.name,
            event_type=event.type,
            property_keys=list(event.properties) if isinstance(event.properties, dict) else [],
            has_device=isinstance(device, dict) and bool(device.get("token")),
        )
        if affected:
            segment_ids |= affected
            customer_ids.add(event.customer_id)
    if segment_ids:
        segments_reevaluate(customer_ids=sorted(customer_ids), segment_ids=segment_ids, index=index)
