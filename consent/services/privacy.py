"""Privacy: export everything held about a customer, erase it, purge old events.

Every export and erasure leaves a ``PrivacyRequest`` row (who, when, what). Other apps add
their part through ``consent.hooks.privacy_exporters`` and ``privacy_erasers``.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils import timezone

from consent.hooks import privacy_erasers, privacy_exporters
from consent.models import (
    AddressKind,
    ConsentEvent,
    ConsentState,
    PrivacyRequest,
    SendLog,
    Suppression,
)
from consent.services.ledger import ConsentError
from consent.services.suppression import address_hash, suppression_add
from customers.models import Customer, CustomerMerge, Device, Event, Identity

logger = logging.getLogger(__name__)

# Evidence kept on the ledger after erasure: it proves what was agreed to, not by whom.
_EVIDENCE_KEPT = frozenset({"wording_version"})
_PURGE_BATCH = 5000


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def _customer(customer_id: int, *, lock: bool = False) -> Customer:
    queryset = Customer.objects.select_for_update() if lock else Customer.objects
    customer = queryset.filter(pk=customer_id).first()
    if customer is None:
        raise ConsentError("customer", f"customer {customer_id} does not exist")
    return customer


def _suppressions_of(customer: Customer, tokens: list[str]) -> list[dict]:
    wanted = []
    if customer.email:
        wanted.append((AddressKind.EMAIL, customer.email))
    if customer.phone:
        wanted.append((AddressKind.PHONE, customer.phone))
    wanted += [(AddressKind.PUSH_TOKEN, token) for token in tokens]
    digests = {address_hash(kind=kind, address=address): address for kind, address in wanted}
    return [
        {
            "kind": row.kind,
            "address": digests[row.address_hash],
            "reason": row.reason,
            "since": _iso(row.created_at),
        }
        for row in Suppression.objects.filter(address_hash__in=list(digests))
    ]


@transaction.atomic
def customer_export(*, customer_id: int, requested_by: str, channel: str) -> dict:
    """One JSON-able document with everything held about the customer."""
    customer = _customer(customer_id)
    devices = list(Device.objects.filter(customer=customer).order_by("pk"))
    events = [
        {
            "type": event.type,
            "name": event.name,
            "properties": event.properties,
            "context": event.context,
            "timestamp": _iso(event.timestamp),
            "received_at": _iso(event.received_at),
            "message_id": event.message_id,
        }
        for event in Event.objects.filter(customer=customer).order_by("timestamp", "pk").iterator()
    ]
    ledger = [
        {
            "id": row.pk,
            "channel": row.channel,
            "topic": row.topic.key if row.topic_id else None,
            "action": row.action,
            "source": row.source,
            "evidence": row.evidence,
            "actor": row.actor,
            "occurred_at": _iso(row.occurred_at),
            "recorded_at": _iso(row.recorded_at),
        }
        for row in ConsentEvent.objects.filter(customer=customer)
        .select_related("topic")
        .order_by("occurred_at", "pk")
    ]
    document = {
        "exported_at": _iso(timezone.now()),
        "customer": {
            "id": customer.pk,
            "external_id": customer.external_id,
            "email": customer.email,
            "phone": customer.phone,
            "timezone": customer.timezone,
            "locale": customer.locale,
            "traits": customer.traits,
            "first_seen": _iso(customer.first_seen),
            "last_seen": _iso(customer.last_seen),
            "created_at": _iso(customer.created_at),
        },
        "identities": [
            {"kind": kind, "value": value}
            for kind, value in Identity.objects.filter(customer=customer)
            .order_by("pk")
            .values_list("kind", "value")
        ],
        "devices": [
            {
                "platform": device.platform,
                "token": device.token,
                "app_id": device.app_id,
                "created_at": _iso(device.created_at),
            }
            for device in devices
        ],
        "events": events,
        "consent": {
            "ledger": ledger,
            "state": [
                {
                    "channel": state.channel,
                    "topic": state.topic.key if state.topic_id else None,
                    "action": state.action,
                    "since": _iso(state.occurred_at),
                }
                for state in ConsentState.objects.filter(customer=customer).select_related("topic")
            ],
            "suppressions": _suppressions_of(customer, [device.token for device in devices]),
            "messages_sent": [
                {"channel": channel, "topic": topic, "sent_at": _iso(sent_at)}
                for channel, topic, sent_at in SendLog.objects.filter(customer=customer)
                .order_by("sent_at")
                .values_list("channel", "topic_key", "sent_at")
            ],
        },
        "merged_profiles": [
            {
                "merged_customer_id": merge.merged_customer_id,
                "merged_external_id": merge.merged_external_id,
                "merged_identities": merge.merged_identities,
                "at": _iso(merge.created_at),
            }
            for merge in CustomerMerge.objects.filter(survivor=customer).order_by("pk")
        ],
    }
    for name, exporter in privacy_exporters.items():
        document[name] = exporter(customer_id=customer.pk)
    PrivacyRequest.objects.create(
        kind=PrivacyRequest.Kind.EXPORT,
        customer_id=customer.pk,
        requested_by=requested_by,
        channel=channel,
        summary={
            "events": len(events),
            "consent_ledger_rows": len(ledger),
            "parts": sorted(document),
        },
    )
    return document


@transaction.atomic
def customer_erase(*, customer_id: int, requested_by: str, channel: str) -> PrivacyRequest:
    """Strip the customer's personal data and keep only what proves consent.

    The profile stays (so the ledger keeps its customer) with every personal field
    emptied; identities, devices and events are deleted; the ledger's evidence keeps only
    the wording version; the email, phone and push tokens go to the suppression list as
    keyed hashes, so a re-import of the same address is still not messaged. Running it
    again changes nothing more, and is recorded too.
    """
    customer = _customer(customer_id, lock=True)
    already = PrivacyRequest.objects.filter(
        kind=PrivacyRequest.Kind.ERASURE, customer_id=customer.pk
    ).exists()

    addresses = []
    if customer.email:
        addresses.append((AddressKind.EMAIL, customer.email))
    if customer.phone:
        addresses.append((AddressKind.PHONE, customer.phone))
    addresses += [
        (AddressKind.PUSH_TOKEN, token)
        for token in Device.objects.filter(customer=customer).values_list("token", flat=True)
    ]
    for kind, address in addresses:
        try:
            suppression_add(
                kind=kind, address=address, reason=Suppression.Reason.ERASED, created_by="erasure"
            )
        except ConsentError:
            # An address that never validated cannot be messaged either: just drop it.
            logger.info("erasure skipped an invalid address", extra={"customer_id": customer.pk})

    external_id = customer.external_id
    Customer.objects.filter(pk=customer.pk).update(
        external_id=None,
        email="",
        phone="",
        timezone="",
        locale="",
        traits={},
        updated_at=timezone.now(),
    )
    identities, _ = Identity.objects.filter(customer=customer).delete()
    devices, _ = Device.objects.filter(customer=customer).delete()
    events, _ = Event.objects.filter(customer=customer).delete()
    CustomerMerge.objects.filter(survivor=customer).update(
        merged_external_id="", merged_identities=[]
    )

    stripped = 0
    with connection.cursor() as cursor:
        # The ledger's trigger lets evidence change only while this is on (see 0003).
        cursor.execute("SELECT set_config('consent.erasure', 'on', true)")
        for row in ConsentEvent.objects.filter(customer=customer).only("pk", "evidence"):
            kept = {key: value for key, value in row.evidence.items() if key in _EVIDENCE_KEPT}
            if kept != row.evidence:
                ConsentEvent.objects.filter(pk=row.pk).update(evidence=kept)
                stripped += 1
        cursor.execute("SELECT set_config('consent.erasure', '', true)")

    # The admin's own history names the profile (its str() is the external id).
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk)
    ).update(object_repr=f"erased customer #{customer.pk}", change_message="")

    others = {name: eraser(customer_id=customer.pk) for name, eraser in privacy_erasers.items()}
    return PrivacyRequest.objects.create(
        kind=PrivacyRequest.Kind.ERASURE,
        customer_id=customer.pk,
        requested_by=requested_by,
        channel=channel,
        summary={
            "already_erased": already,
            "had_external_id": bool(external_id),
            "addresses_suppressed": len(addresses),
            "identities_deleted": identities,
            "devices_deleted": devices,
            "events_deleted": events,
            "ledger_rows_stripped": stripped,
            **{f"{name}_erased": count for name, count in others.items()},
        },
    )


def events_purge(*, now: dt.datetime | None = None, older_than_days: int) -> int:
    """Delete customer events older than the retention age, in bounded batches (each its
    own short transaction, so a large backlog never holds a long lock)."""
    if older_than_days <= 0:
        return 0
    cutoff = (now or timezone.now()) - dt.timedelta(days=older_than_days)
    total = 0
    while True:
        with transaction.atomic():
            ids = list(
                Event.objects.filter(timestamp__lt=cutoff).values_list("pk", flat=True)[
                    :_PURGE_BATCH
                ]
            )
            if not ids:
                break
            deleted, _ = Event.objects.filter(pk__in=ids).delete()
            total += deleted
        if len(ids) < _PURGE_BATCH:
            break
    return total
