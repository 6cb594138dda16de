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
from consent.models import AddressKind, Topic
from consent.services.ledger import ConsentError
from consent.services.suppression import address_hash
from consent.services.topics import topic_get

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


_SNAPSHOT_SQL = """
SELECT c.id, c.timezone, {address},
       topic_state.action, extract(epoch FROM topic_state.occurred_at)::float8, topic_state.event_id,
       channel_state.action, extract(epoch FROM channel_state.occurred_at)::float8,
       channel_state.event_id,
       erased.customer_id IS NOT NULL,
       sends.channels, sends.times
FROM unnest(%(ids)s::bigint[]) AS wanted(id)
JOIN customers_customer c ON c.id = wanted.id
LEFT JOIN consent_consentstate topic_state
       ON topic_state.customer_id = c.id AND topic_state.channel = %(channel)s
      AND topic_state.topic_id = %(topic_id)s
LEFT JOIN consent_consentstate channel_state
       ON channel_state.customer_id = c.id AND channel_state.channel = %(channel)s
      AND channel_state.topic_id IS NULL
LEFT JOIN (
    -- One grouped scan for the whole batch (a per-customer lateral costs a probe each).
    SELECT log.customer_id, array_agg(log.channel) AS channels,
           array_agg(extract(epoch FROM log.sent_at)::float8) AS times
    FROM consent_sendlog log
    WHERE log.customer_id = ANY(%(ids)s::bigint[]) AND NOT log.is_transactional
      AND log.sent_at > %(since)s AND log.sent_at <= %(now)s
    GROUP BY log.customer_id
) sends ON sends.customer_id = c.id
LEFT JOIN (
    SELECT DISTINCT erasure.customer_id FROM consent_privacyrequest erasure
    WHERE erasure.customer_id = ANY(%(ids)s::bigint[]) AND erasure.kind = 'erasure'
) erased ON erased.customer_id = c.id
"""
_ADDRESS_SQL = {
    # Profiles hold normalised addresses; lower() guards rows written around the ingest.
    "email": "ARRAY[NULLIF(lower(btrim(c.email)), '')]",
    "sms": "ARRAY[NULLIF(c.phone, '')]",
    "push": "ARRAY(SELECT d.token FROM customers_device d WHERE d.customer_id = c.id)",
}


def _from_epoch(seconds) -> dt.datetime:
    # Times come as epoch seconds: converting them here is several times cheaper than the
    # driver's time-zone-aware timestamp loader, and this is the hot path of broadcasts.
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC)


def snapshots_load(
    *,
    customer_ids: list[int],
    channel: str,
    topic_id: int | None,
    now: dt.datetime,
    cap_window_seconds: int,
) -> dict[int, Snapshot]:
    """Everything the gate needs for these customers on one channel, in two queries:
    profiles with their consent state, erasure and recent sends; then suppressions
    (matched by keyed hash, which only Python can compute)."""
    ids = list(dict.fromkeys(customer_ids))
    # The ids go as one text literal: quoting a thousand parameters one by one costs more
    # than the query itself (the connection binds on the client side).
    id_array = "{" + ",".join(str(int(customer_id)) for customer_id in ids) + "}"
    since = now - dt.timedelta(seconds=cap_window_seconds)
    with connection.cursor() as cursor:
        cursor.execute(
            _SNAPSHOT_SQL.format(address=_ADDRESS_SQL[channel]),
            {"ids": id_array, "channel": channel, "topic_id": topic_id, "since": since, "now": now},
        )
        rows = cursor.fetchall()
        kind = _ADDRESS_KIND[channel]
        hashed = {
            address_hash(kind=kind, address=address): address
            for row in rows
            for address in row[2]
            if address
        }
        suppressed: set[str] = set()
        if hashed:
            cursor.execute(
                "SELECT address_hash FROM consent_suppression "
                "WHERE kind = %s AND address_hash = ANY(%s::text[])",
                [kind, "{" + ",".join(hashed) + "}"],  # hex digests: nothing to escape
            )
            suppressed = {hashed[digest] for (digest,) in cursor.fetchall()}

    snapshots = {}
    for (
        customer_id,
        zone,
        addresses,
        topic_action,
        topic_at,
        topic_event,
        channel_action,
        channel_at,
        channel_event,
        erased,
        send_channels,
        send_times,
    ) in rows:
        addresses = tuple(address for address in addresses if address)
        recent_sends: dict[str, tuple[dt.datetime, ...]] = {}
        if send_channels:
            grouped: dict[str, list[dt.datetime]] = defaultdict(list)
            for send_channel, sent_at in zip(send_channels, send_times, strict=True):
                grouped[send_channel].append(_from_epoch(sent_at))
            recent_sends = {name: tuple(times) for name, times in grouped.items()}
        snapshots[customer_id] = Snapshot(
            customer_id=customer_id,
            addresses=addresses,
            suppressed_addresses=frozenset(a for a in addresses if a in suppressed)
            if suppressed
            else frozenset(),
            topic_state=RecordedState(topic_action, topic_at, topic_event)
            if topic_action
            else None,
            channel_state=RecordedState(channel_action, channel_at, channel_event)
            if channel_action
            else None,
            timezone=zone,
            erased=erased,
            recent_sends=recent_sends,
        )
    # Ids with no profile: nothing to send to.
    for customer_id in ids:
        if customer_id not in snapshots:
            snapshots[customer_id] = Snapshot(customer_id=customer_id)
    return snapshots


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
    topic = topic_get(key=topic_key)
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
