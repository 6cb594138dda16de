"""Read queries of the customers app, for the REST API, the admin and other apps."""

from contextlib import suppress

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q, QuerySet

from customers.ingest.messages import normalise_email
from customers.models import ApiKey, Customer, Event, Identity

TIMELINE_LENGTH = 50
EVENT_NAME_CHOICES_LIMIT = 200
LOCALE_CHOICES_SAMPLE = 10_000


def customer_get_by_external_id(*, external_id: str) -> Customer | None:
    """The profile a user id belongs to, including ids folded into it by an alias merge."""
    identity = (
        Identity.objects.select_related("customer")
        .filter(kind=Identity.Kind.USER_ID, value=external_id)
        .first()
    )
    return identity.customer if identity else None


def customer_search_condition(search: str) -> Q | None:
    """The filter for a search box: an exact email address or the start of an external id.

    Both halves are served by indexes: the email's b-tree for the exact (normalised)
    address, and the ``varchar_pattern_ops`` index Django adds to the unique external id
    for the prefix. None when there is nothing to search for.
    """
    search = search.strip()
    if not search:
        return None
    condition = Q(external_id__startswith=search)
    if "@" in search:
        # Not an address after all: then only the external id can match.
        with suppress(ValidationError):
            condition |= Q(email=normalise_email(search))
    return condition


def customer_list(*, search: str = "") -> QuerySet[Customer]:
    """Customers, newest first, with their identities; optionally narrowed by a search."""
    customers = Customer.objects.prefetch_related(
        Prefetch("identities", queryset=Identity.objects.order_by("pk"))
    ).order_by("-pk")
    condition = customer_search_condition(search)
    return customers if condition is None else customers.filter(condition)


def customer_locales(*, sample: int | None = None) -> list[str]:
    """The locales of the newest ``sample`` profiles, for the admin's filter: a walk down
    the primary key, where the distinct locales of every profile would read the whole
    table on each page load (there is no index on locale)."""
    newest = Customer.objects.order_by("-pk").values("pk")[: sample or LOCALE_CHOICES_SAMPLE]
    return list(
        Customer.objects.filter(pk__in=newest)
        .exclude(locale="")
        .order_by("locale")
        .values_list("locale", flat=True)
        .distinct()
    )


def customer_events(
    *, customer: Customer, event_type: str | None = None, name: str | None = None
) -> QuerySet[Event]:
    """A customer's events, newest first (backed by the ``event_customer_time`` index)."""
    events = Event.objects.filter(customer=customer)
    if event_type:
        events = events.filter(type=event_type)
    if name:
        events = events.filter(name=name)
    return events.order_by("-timestamp", "-pk")


def customer_timeline(*, customer: Customer, limit: int = TIMELINE_LENGTH) -> tuple[list, int]:
    """The newest ``limit`` events of a customer and how many there are in all."""
    events = list(customer_events(customer=customer)[:limit])
    total = len(events) if len(events) < limit else Event.objects.filter(customer=customer).count()
    return events, total


def event_names(*, limit: int = EVENT_NAME_CHOICES_LIMIT) -> list[str]:
    """The distinct non-empty event names, alphabetically, for filters (at most ``limit``)."""
    return list(
        Event.objects.exclude(name="")
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()[:limit]
    )


def api_key_list() -> QuerySet[ApiKey]:
    return ApiKey.objects.order_by("-pk")


def api_key_get(*, api_key_id: int) -> ApiKey | None:
    return ApiKey.objects.filter(pk=api_key_id).first()
