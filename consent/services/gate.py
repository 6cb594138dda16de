"""The gate's thin shell: load snapshots in a few set queries, then ask the pure ``decide``.

``consent_decide`` for one message, ``consent_decide_many`` for a broadcast: the batch
form issues the same handful of queries for 1,000 customers as for one.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.conf import settings
from django.db import connection
from django.utils import timezone

from consent.gate import Decision, GateSettings, RecordedState, Snapshot, TopicRule, decide
from consent.models import AddressKind, PrivacyRequest, Topic
from consent.services.ledger import ConsentError
from consent.services.suppression import address_hash

_ADDRESS_KIND = {
    "email": AddressKind.EMAIL,
    "sms": AddressKind.PHONE,
    "push": AddressKind.PUSH_TOKEN,
}


def gate_settings() -> GateSettings:
    return GateSettings.from_settings(settings)


def topic_rule(topic: Topic) -> TopicRule:
    return TopicRule(
        key=topic.key,
        channels=frozenset(topic.channels),
        opt_out_default=topic.default == Topic.Default.OPT_OUT,
        double_opt_in=topic.double_opt_in,
        is_transactional=topic.is_transactional,
    )


def snapshots_load(
    *,
    customer_ids: list[int],
    channel: str,
    topic_id: int | None,
    now: dt.datetime,
    cap_window_seconds: int,
) -> dict[int, Snapshot]:
    """Everything the gate needs for these customers on one channel, in five queries."""
    ids = list(dict.fromkeys(customer_ids))
    addresses: dict[int, list[str]] = defaultdict(list)
    zones: dict[int, str] = {}
    with connection.cursor() as cursor:
        # Profiles (and push tokens) of customers that exist; others stay unknown.
        if channel == "push":
            cursor.execute(
                "SELECT c.id, c.timezone, d.token FROM customers_customer c "
                "LEFT JOIN customers_device d ON d.customer_id = c.id WHERE c.id = ANY(%s)",
                [ids],
            )
            for customer_id, zone, token in cursor.fetchall():
                zones[customer_id] = zone
                if token:
                    addresses[customer_id].append(token)
        else:
            column = "email" if channel == "email" else "phone"
            cursor.execute(
                f"SELECT id, timezone, {column} FROM customers_customer WHERE id = ANY(%s)",  # noqa: S608 (a fixed column name)
                [ids],
            )
            for customer_id, zone, address in cursor.fetchall():
                zones[customer_id] = zone
                if address:
                    addresses[customer_id].append(address)

        topic_states: dict[int, RecordedState] = {}
        channel_states: dict[int, RecordedState] = {}
        cursor.execute(
            "SELECT customer_id, topic_id, action, occurred_at, event_id "
            "FROM consent_consentstate WHERE customer_id = ANY(%s) AND channel = %s "
            "AND (topic_id IS NULL OR topic_id = %s)",
            [ids, channel, topic_id],
        )
        for customer_id, row_topic_id, action, occurred_at, event_id in cursor.fetchall():
            state = RecordedState(action, occurred_at, event_id)
            if row_topic_id is None:
                channel_states[customer_id] = state
            else:
                topic_states[customer_id] = state

        kind = _ADDRESS_KIND[channel]
        hashed = {
            address_hash(kind=kind, address=address): address
            for customer_addresses in addresses.values()
            for address in customer_addresses
        }
        suppressed: set[str] = set()
        if hashed:
            cursor.execute(
                "SELECT address_hash FROM consent_suppression "
                "WHERE kind = %s AND address_hash = ANY(%s)",
                [kind, list(hashed)],
            )
            suppressed = {hashed[digest] for (digest,) in cursor.fetchall()}

        cursor.execute(
            "SELECT customer_id FROM consent_privacyrequest "
            "WHERE kind = %s AND customer_id = ANY(%s)",
            [PrivacyRequest.Kind.ERASURE, ids],
        )
        erased = {customer_id for (customer_id,) in cursor.fetchall()}

        sends: dict[int, dict[str, list[dt.datetime]]] = defaultdict(lambda: defaultdict(list))
        if cap_window_seconds:
            cursor.execute(
                "SELECT customer_id, channel, sent_at FROM consent_sendlog "
                "WHERE customer_id = ANY(%s) AND NOT is_transactional "
                "AND sent_at > %s AND sent_at <= %s",
                [ids, now - dt.timedelta(seconds=cap_window_seconds), now],
            )
            for customer_id, send_channel, sent_at in cursor.fetchall():
                sends[customer_id][send_channel].append(sent_at)

    return {
        customer_id: Snapshot(
            customer_id=customer_id,
            addresses=tuple(addresses.get(customer_id, ())),
            suppressed_addresses=frozenset(
                address for address in addresses.get(customer_id, ()) if address in suppressed
            ),
            topic_state=topic_states.get(customer_id),
            channel_state=channel_states.get(customer_id),
            timezone=zones.get(customer_id, ""),
            erased=customer_id in erased,
            recent_sends={name: tuple(times) for name, times in sends.get(customer_id, {}).items()},
        )
        for customer_id in ids
    }


def consent_decide_many(
    *, customer_ids: list[int], channel: str, topic_key: str, now: dt.datetime | None = None
) -> dict[int, Decision]:
    """The gate for a broadcast: one decision per customer id, loaded in a few queries.

    Unknown customer ids come back ``unreachable``.
    """
    if channel not in _ADDRESS_KIND:
        raise ConsentError("channel", f"must be one of {', '.join(_ADDRESS_KIND)}")
    now = now or timezone.now()
    rules = gate_settings()
    topic = Topic.objects.filter(key=topic_key).first()
    rule = topic_rule(topic) if topic is not None else None
    snapshots = snapshots_load(
        customer_ids=customer_ids,
        channel=channel,
        topic_id=topic.pk if topic is not None else None,
        now=now,
        cap_window_seconds=rules.longest_cap_window(),
    )
    return {
        customer_id: decide(snapshot=snapshot, channel=channel, topic=rule, now=now, settings=rules)
        for customer_id, snapshot in snapshots.items()
    }


def consent_decide(
    *, customer_id: int, channel: str, topic_key: str, now: dt.datetime | None = None
) -> Decision:
    """The gate for one message, asked right before the provider."""
    return consent_decide_many(
        customer_ids=[customer_id], channel=channel, topic_key=topic_key, now=now
    )[customer_id]
