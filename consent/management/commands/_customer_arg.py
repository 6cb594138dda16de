"""The customer argument of the privacy commands: an external id, or #id."""

from django.core.management.base import CommandError

from consent.selectors import customer_by_external_id
from customers.models import Customer


def customer_from_argument(value: str) -> Customer:
    value = value.strip()
    customer = customer_by_external_id(external_id=value)
    if customer is None and value.startswith("#") and value[1:].isdigit():
        customer = Customer.objects.filter(pk=int(value[1:])).first()
    if customer is None:
        raise CommandError(f"no customer {value!r} (give an external id, or #id)")
    return customer
