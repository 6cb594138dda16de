"""Storing a validated batch of Segment messages: profiles, identities, devices, events.

Everything happens in one transaction, in sets: one statement inserts all events, one
updates all profiles. New event ids are handed to the reactors after commit.
"""

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from django.db import OperationalError, connection, transaction

from customers.ingest.messages import Message
from customers.services.handover import events_enqueue_hand_over
from customers.services.identity import IdentityResolver
from customers.services.prepared import prepared_cursor

logger = logging.getLogger(__name__)

_DEADLOCK_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Submission:
    """The valid messages of one request, with the key that sent them and when."""

    messages: list[Message]
    api_key_id: int | None
    received_at: dt.datetime


def events_ingest(
    *, messages: list[Message], api_key_id: int | None, received_at: dt.datetime
) -> list[int]:
    """Store the messages; return the ids of events stored now (repeats are skipped)."""
    return events_ingest_many(
        submissions=[Submission(messages=messages, api_key_id=api_key_id, received_at=received_at)]
    )


def events_ingest_many(*, submissions: list[Submission]) -> list[int]:
    """Store the messages of several requests in one transaction (see group_commit)."""
    for attempt in range(_DEADLOCK_RETRIES):
        try:
            stored = _ingest_known_activity(submissions)
            return stored if stored is not None else _ingest_once(submissions)
        except OperationalError as error:
            # Two requests updating the same profiles can deadlock; PostgreSQL aborts one.
            if (
                getattr(error.__cause__, "sqlstate", None) != "40P01"
                or attempt == _DEADLOCK_RETRIES - 1
            ):
                raise
            logger.warning("ingest deadlock, retrying", extra={"attempt": attempt + 1})
    raise AssertionError("unreachable")


def _flatten(submissions: list[Submission]) -> tuple[list[Message], list, list]:
    messages = [message for submission in submissions for message in submission.messages]
    api_key_ids = [s.api_key_id for s in submissions for _ in s.messages]
    received = [s.received_at for s in submissions for _ in s.messages]
    return messages, api_key_ids, received


_ACTIVITY_TYPES = frozenset({"track", "page", "screen", "group"})


def _ingest_known_activity(submissions: list[Submission]) -> list[int] | None:
    """The common case in two round trips and no explicit transaction: activity of known
    customers (no identify, alias or device token) changes nothing but the events and the
    seen times, which one statement writes atomically. None when the case does not apply.
    """
    messages, api_key_ids, received = _flatten(submissions)
    if any(m.type not in _ACTIVITY_TYPES or m.device for m in messages):
        return None
    resolver = IdentityResolver()
    resolver.load(messages)
    customer_ids = [resolver.known_customer(message) for message in messages]
    if None in customer_ids:
        return None
    with prepared_cursor() as cursor:
        cursor.execute(
            f"""
            WITH inserted AS ({_INSERT_EVENTS} RETURNING id, customer_id, timestamp),
            seen AS (
                UPDATE customers_customer c SET
                    first_seen = LEAST(c.first_seen, s.first_seen),
                    last_seen = GREATEST(c.last_seen, s.last_seen)
                FROM (SELECT customer_id, min(timestamp) AS first_seen, max(timestamp) AS last_seen
                      FROM inserted GROUP BY customer_id) s
                WHERE c.id = s.customer_id
            )
            SELECT id FROM inserted ORDER BY id
            """,  # noqa: S608 (constant SQL)
            [_event_rows(messages, customer_ids, api_key_ids, received)],
        )
        event_ids = [row[0] for row in cursor.fetchall()]
    if event_ids:
        events_enqueue_hand_over(event_ids=event_ids)
    return event_ids


@transaction.atomic
def _ingest_once(submissions: list[Submission]) -> list[int]:
    messages, api_key_ids, received = _flatten(submissions)
    resolver = IdentityResolver()
    resolver.preload(messages)
    customer_ids = [resolver.resolve(message) for message in messages]
    # Merges later in the batch may have folded a profile used earlier.
    customer_ids = [
        _final(resolver, message, cid) for message, cid in zip(messages, customer_ids, strict=True)
    ]

    inserted = _insert_events(messages, customer_ids, api_key_ids, received)
    if not inserted:
        return []
    new_messages = [
        (message, customer_id)
        for message, customer_id in zip(messages, customer_ids, strict=True)
        if message.message_id in inserted
    ]
    _update_profiles(new_messages)
    _upsert_devices(new_messages, max(received))
    event_ids = sorted(inserted.values())
    events_enqueue_hand_over(event_ids=event_ids)
    return event_ids


def _final(resolver: IdentityResolver, message: Message, customer_id: int) -> int:
    if message.type == "alias":
        return resolver.customer_of.get(("user_id", message.user_id), customer_id)
    if message.user_id:
        return resolver.customer_of.get(("user_id", message.user_id), customer_id)
    return resolver.customer_of.get(("anonymous_id", message.anonymous_id), customer_id)


def _json_list(values: Iterable[dict]) -> list[str]:
    return [orjson.dumps(value).decode() for value in values]


# The rows travel as one JSON array (encoded in C by orjson) rather than nine arrays that
# the driver would quote element by element in Python: most of a request's cost was that.
_INSERT_EVENTS = """
    INSERT INTO customers_event
        (customer_id, type, name, properties, context, timestamp, message_id,
         received_at, api_key_id)
    SELECT e.c, e.t, e.n, e.p, e.x, e.ts, e.m, e.r, e.k
    FROM json_to_recordset(%s::json)
        AS e(c bigint, t text, n text, p jsonb, x jsonb, ts timestamptz, m text,
             r timestamptz, k bigint)
    ON CONFLICT (message_id) DO NOTHING
"""


def _event_rows(
    messages: list[Message],
    customer_ids: list[int],
    api_key_ids: list[int | None],
    received: list[dt.datetime],
) -> str:
    return orjson.dumps(
        [
            {
                "c": customer_id, "t": m.type, "n": m.name, "p": m.properties,
                "x": m.context, "ts": m.timestamp, "m": m.message_id, "r": received_at,
                "k": api_key_id,
            }
            for m, customer_id, api_key_id, received_at in zip(
                messages, customer_ids, api_key_ids, received, strict=True
            )
        ]
    ).decode()  # fmt: skip


def _insert_events(
    messages: list[Message],
    customer_ids: list[int],
    api_key_ids: list[int | None],
    received: list[dt.datetime],
) -> dict[str, int]:
    with prepared_cursor() as cursor:
        cursor.execute(
            _INSERT_EVENTS + " RETURNING message_id, id",
            [_event_rows(messages, customer_ids, api_key_ids, received)],
        )
        return dict(cursor.fetchall())


def _update_profiles(new_messages: list[tuple[Message, int]]) -> None:
    """One statement for every profile the batch touched: traits, contact fields, seen."""
    changes: dict[int, dict] = {}
    # Oldest first, so the newest identify wins each trait.
    for message, customer_id in sorted(new_messages, key=lambda pair: pair[0].timestamp):
        change = changes.setdefault(
            customer_id,
            {"traits": {}, "email": None, "phone": None, "timezone": None, "locale": None,
             "first": message.timestamp, "last": message.timestamp},
        )  # fmt: skip
        change["last"] = message.timestamp
        if message.traits:
            change["traits"].update(message.traits)
        for field in ("email", "phone", "timezone", "locale"):
            value = getattr(message, field)
            if value:
                change[field] = value
    ids = sorted(changes)
    rows = [changes[pk] for pk in ids]
    with connection.cursor() as cursor:
        if len(ids) > 1:
            # Lock in id order: concurrent batches touching the same profiles queue instead
            # of deadlocking.
            cursor.execute(
                "SELECT id FROM customers_customer WHERE id = ANY(%s) ORDER BY id "
                "FOR NO KEY UPDATE",
                [ids],
            )
        cursor.execute(
            """
            UPDATE customers_customer c SET
                traits = c.traits || v.traits::jsonb,
                email = COALESCE(v.email, c.email),
                phone = COALESCE(v.phone, c.phone),
                timezone = COALESCE(v.timezone, c.timezone),
                locale = COALESCE(v.locale, c.locale),
                first_seen = LEAST(c.first_seen, v.first_seen),
                last_seen = GREATEST(c.last_seen, v.last_seen),
                updated_at = now()
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],
                        %s::text[], %s::timestamptz[], %s::timestamptz[])
                AS v(id, traits, email, phone, timezone, locale, first_seen, last_seen)
            WHERE c.id = v.id
            """,
            [
                ids,
                _json_list(row["traits"] for row in rows),
                [row["email"] for row in rows],
                [row["phone"] for row in rows],
                [row["timezone"] for row in rows],
                [row["locale"] for row in rows],
                [row["first"] for row in rows],
                [row["last"] for row in rows],
            ],
        )


def _upsert_devices(new_messages: list[tuple[Message, int]], seen_at: dt.datetime) -> None:
    devices = {}
    for message, customer_id in new_messages:
        if message.device:
            devices[message.device["token"]] = (customer_id, message.device)
    if not devices:
        return
    tokens = list(devices)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO customers_device (customer_id, platform, token, app_id, created_at, last_seen)
            SELECT d.customer_id, d.platform, d.token, d.app_id, %s, %s
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[])
                AS d(customer_id, platform, token, app_id)
            ON CONFLICT (token) DO UPDATE SET
                customer_id = EXCLUDED.customer_id, last_seen = EXCLUDED.last_seen
            """,
            [
                seen_at,
                seen_at,
                [devices[t][0] for t in tokens],
                [devices[t][1]["platform"] for t in tokens],
                tokens,
                [devices[t][1]["app_id"] for t in tokens],
            ],
        )
