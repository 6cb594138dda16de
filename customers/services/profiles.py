"""Profile writes made one at a time (REST API, admin). Ingest writes its own, in sets.

Values arrive validated and normalised (email lower-cased, phone E.164, IANA time zone):
the REST serializer does that with the same functions as ingest.
"""

from django.db import transaction

from customers.models import Customer, Identity
from customers.selectors import customer_get_by_external_id
from customers.signals import customer_profile_changed

PROFILE_FIELDS = ("email", "phone", "timezone", "locale", "traits")


def merge_traits(*, current: dict, changes: dict) -> dict:
    """Top-level JSON merge patch: new keys win, a key set to ``None`` is removed."""
    merged = {**current, **changes}
    return {key: value for key, value in merged.items() if value is not None}


@transaction.atomic
def customer_put(
    *,
    external_id: str,
    email: str = "",
    phone: str = "",
    timezone: str = "",
    locale: str = "",
    traits: dict | None = None,
) -> tuple[Customer, bool]:
    """Create the profile of this user id, or replace every writable field of it.

    An id folded into another profile by an alias resolves to the surviving profile.
    Returns the customer and whether it was created.
    """
    customer, created = _customer_for_user_id(external_id)
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    values = {"email": email, "phone": phone, "timezone": timezone, "locale": locale}
    for field, value in values.items():
        setattr(customer, field, value)
    customer.traits = traits or {}
    customer.save(update_fields=[*PROFILE_FIELDS, "updated_at"])
    customer_profile_changed.send(
        sender=Customer, customer_id=customer.pk, fields=list(PROFILE_FIELDS)
    )
    return customer, created


@transaction.atomic
def customer_update(*, customer: Customer, changes: dict) -> Customer:
    """Change only the given fields; ``traits`` are merged key by key (``None`` removes)."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"not profile fields: {', '.join(sorted(unknown))}")
    if not changes:
        return customer
    # Locked, so that traits merged by a concurrent identify are not lost.
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    for field, value in changes.items():
        if field == "traits":
            value = merge_traits(current=customer.traits, changes=value)
        setattr(customer, field, value)
    customer.save(update_fields=[*changes, "updated_at"])
    customer_profile_changed.send(sender=Customer, customer_id=customer.pk, fields=list(changes))
    return customer


def _customer_for_user_id(external_id: str) -> tuple[Customer, bool]:
    customer = customer_get_by_external_id(external_id=external_id)
    if customer is not None:
        return customer, False
    # Ingest may create the same user id at the same moment: both end on the one row.
    customer, created = Customer.objects.get_or_create(external_id=external_id)
    Identity.objects.get_or_create(
        kind=Identity.Kind.USER_ID, value=external_id, defaults={"customer": customer}
    )
    return customer, created
