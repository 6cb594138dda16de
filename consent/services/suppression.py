"""The suppression list: addresses nothing is sent to, matched by keyed hash."""

import hashlib
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from consent.models import AddressKind, Suppression
from consent.services.ledger import ConsentError
from customers.ingest.messages import normalise_email, normalise_phone


def address_normalise(*, kind: str, address: str) -> str:
    if kind == AddressKind.EMAIL:
        try:
            return normalise_email(address)
        except ValidationError:
            raise ConsentError("address", "is not an email address") from None
    if kind == AddressKind.PHONE:
        try:
            return normalise_phone(address)
        except ValidationError as error:
            raise ConsentError("address", error.messages[0]) from None
    if kind == AddressKind.PUSH_TOKEN:
        if not address.strip():
            raise ConsentError("address", "must not be empty")
        return address.strip()
    raise ConsentError("kind", f"must be one of {', '.join(AddressKind.values)}")


def address_hash(*, kind: str, address: str) -> str:
    """Keyed hash of an already-normalised address (so it cannot be reversed by a
    dictionary of addresses without the key)."""
    # Keyed BLAKE2b: a MAC like HMAC-SHA256, about twice as fast on the gate's hot path.
    return hashlib.blake2b(
        f"{kind}:{address}".encode(), key=_hash_key(), digest_size=32
    ).hexdigest()


@cache
def _key_for(secret: str) -> bytes:
    # BLAKE2b keys are at most 64 bytes: derive one from the configured secret.
    return hashlib.sha512(secret.encode()).digest()[:64]


def _hash_key() -> bytes:
    return _key_for(settings.CONSENT_SUPPRESSION_HASH_KEY)


@transaction.atomic
def suppression_add(
    *,
    kind: str,
    address: str,
    reason: str,
    note: str = "",
    created_by: str = "",
    keep_address: bool | None = None,
) -> Suppression:
    """Suppress an address (idempotent: an existing row is kept, an erased one stays
    hash-only). Erasure keeps only the hash."""
    if reason not in Suppression.Reason.values:
        raise ConsentError("reason", f"must be one of {', '.join(Suppression.Reason.values)}")
    normalised = address_normalise(kind=kind, address=address)
    digest = address_hash(kind=kind, address=normalised)
    if keep_address is None:
        keep_address = reason != Suppression.Reason.ERASED
    suppression, created = Suppression.objects.get_or_create(
        kind=kind,
        address_hash=digest,
        defaults={
            "address": normalised if keep_address else "",
            "reason": reason,
            "note": note,
            "created_by": created_by,
            "created_at": timezone.now(),
        },
    )
    if not created and not keep_address and suppression.address:
        suppression.address = ""
        suppression.reason = reason
        suppression.save(update_fields=["address", "reason"])
    return suppression


@transaction.atomic
def suppression_remove(*, suppression_id: int) -> int:
    """Lift a suppression. Erased addresses stay: the customer asked to be forgotten."""
    deleted, _ = (
        Suppression.objects.filter(pk=suppression_id)
        .exclude(reason=Suppression.Reason.ERASED)
        .delete()
    )
    return deleted
