"""Events other apps record about a known customer (delivery feedback, say).

Keyed by a ``message_id`` the caller derives from its own ids, so recording the same
thing twice stores it once; new events are handed to the reactors after commit, exactly
like ingested ones.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.db import connection, transaction
from django.utils import timezone

from customers.models import Event
from customers.services.handover import events_enqueue_hand_over


@dataclass(frozen=True)
class CustomerEvent:
    customer_id: int
    name: str
    message_id: str
    timestamp: dt.datetime
    properties: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


@transaction.atomic
def events_record(*, events: Sequence[CustomerEvent]) -> list[int]:
    """Store track events; a ``message_id`` already stored is skipped. Returns new ids."""
    if not events:
        return []
    received = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO customers_event
                (customer_id, type, name, properties, context, timestamp, message_id,
                 received_at)
            SELECT e.customer_id, %s, e.name, e.properties::jsonb, e.context::jsonb,
                   e.timestamp, e.message_id, %s
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[],
                        %s::timestamptz[], %s::text[])
                AS e(customer_id, name, properties, context, timestamp, message_id)
            ON CONFLICT (message_id) DO NOTHING
            RETURNING id
            """,
            [
                Event.Type.TRACK,
                received,
                [event.customer_id for event in events],
                [event.name for event in events],
                [orjson.dumps(event.properties).decode() for event in events],
                [orjson.dumps(event.context).decode() for event in events],
                [event.timestamp for event in events],
                [event.message_id for event in events],
            ],
        )
        ids = [row[0] for row in cursor.fetchall()]
    events_enqueue_hand_over(event_ids=ids)
    return ids
