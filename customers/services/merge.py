"""Folding one customer profile into another (alias)."""

from django.db import transaction

from customers.models import Customer, CustomerMerge, Device, Event, Identity
from customers.signals import customer_merged

_PROFILE_FIELDS = ("email", "phone", "timezone", "locale")


def merged_traits(*, older: dict, newer: dict) -> dict:
    """Newest wins: keys of the more recently seen profile override the other's."""
    return {**older, **newer}


@transaction.atomic
def customer_merge(*, source_id: int, target_id: int) -> Customer:
    """Move everything of ``source`` onto ``target`` and delete ``source``.

    Events, identities and devices are re-pointed; traits are merged newest-wins (by
    ``last_seen``); apps above are told through ``customer_merged`` so they re-point theirs.
    """
    if source_id == target_id:
        return Customer.objects.get(pk=target_id)
    # Lock both in id order so that two merges of the same pair cannot deadlock.
    locked = {
        customer.pk: customer
        for customer in Customer.objects.select_for_update()
        .filter(pk__in=[source_id, target_id])
        .order_by("pk")
    }
    source, target = locked.get(source_id), locked.get(target_id)
    if target is None:
        raise Customer.DoesNotExist(f"customer {target_id} does not exist")
    if source is None:  # merged already by a concurrent request
        return target

    newer, older = (source, target) if source.last_seen > target.last_seen else (target, source)
    target.traits = merged_traits(older=older.traits, newer=newer.traits)
    for field in _PROFILE_FIELDS:
        setattr(target, field, getattr(newer, field) or getattr(older, field))
    target.first_seen = min(source.first_seen, target.first_seen)
    target.last_seen = max(source.last_seen, target.last_seen)
    if not target.external_id and source.external_id:
        external_id, source.external_id = source.external_id, None
        source.save(update_fields=["external_id"])
        target.external_id = external_id
    target.save()

    identities = list(
        Identity.objects.filter(customer=source).values_list("kind", "value").order_by("pk")
    )
    Identity.objects.filter(customer=source).update(customer=target)
    if source.external_id:
        Identity.objects.get_or_create(
            kind=Identity.Kind.USER_ID, value=source.external_id, defaults={"customer": target}
        )
    Device.objects.filter(customer=source).update(customer=target)
    events_moved = Event.objects.filter(customer=source).update(customer=target)
    customer_merged.send(sender=Customer, source_id=source.pk, target_id=target.pk)
    CustomerMerge.objects.create(
        survivor=target,
        merged_customer_id=source.pk,
        merged_external_id=source.external_id or "",
        merged_identities=[list(pair) for pair in identities],
        events_moved=events_moved,
    )
    source.delete()
    return target
