"""The variables a template sees: plain data only, never model instances.

Plain dicts keep the sandbox honest (no model methods to call), make a render a pure
function of its context, and let the admin build a sample context without a database.
"""

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from campaigns.rendering.links import link_providers

CUSTOMER_FIELDS = (
    "id",
    "external_id",
    "email",
    "phone",
    "timezone",
    "locale",
    "first_seen",
    "last_seen",
)


def customer_variables(customer: Any) -> dict[str, Any]:
    """The customer's fields and traits; traits are also reachable at the top level
    (``customer.first_name``) unless a field has the same name."""
    if isinstance(customer, Mapping):
        fields = {name: customer.get(name) for name in CUSTOMER_FIELDS if name in customer}
        traits = dict(customer.get("traits") or {})
    else:
        fields = {name: getattr(customer, name, None) for name in CUSTOMER_FIELDS}
        traits = dict(getattr(customer, "traits", None) or {})
    return {**traits, **fields, "traits": traits}


def event_variables(event: Any) -> dict[str, Any] | None:
    if event is None:
        return None
    if isinstance(event, Mapping):
        return dict(event)
    return {
        "id": event.pk,
        "type": event.type,
        "name": event.name,
        "properties": event.properties or {},
        "timestamp": event.timestamp,
    }


def build_context(
    *,
    customer: Any,
    now: dt.datetime,
    event: Any = None,
    segments: Iterable[str] = (),
    scores: Mapping[str, float] | None = None,
    recommendations: Iterable[Mapping[str, Any]] = (),
    links: Mapping[str, str] | None = None,
    link_arguments: Mapping[str, Any] | None = None,
    default_timezone: str = "UTC",
    default_locale: str = "en",
) -> dict[str, Any]:
    """The context for ``render``. Links come from the registered providers (when
    ``link_arguments`` is given) and then from ``links``, which wins."""
    customer_vars = customer_variables(customer)
    all_links: dict[str, str] = {}
    if link_arguments is not None:
        all_links.update(link_providers.collect(**link_arguments))
    all_links.update(links or {})
    return {
        "customer": customer_vars,
        "event": event_variables(event),
        "segments": sorted(segments),
        "scores": dict(scores or {}),
        "recommendations": [dict(item) for item in recommendations],
        "links": all_links,
        "now": now,
        "locale": customer_vars.get("locale") or default_locale,
        "timezone": customer_vars.get("timezone") or default_timezone,
    }


SAMPLE_LINKS = {
    "unsubscribe": "https://example.com/u/sample-token",
    "preferences": "https://example.com/p/sample-token",
    "view_in_browser": "https://example.com/v/sample-token",
}


def sample_context(
    *, now: dt.datetime, extra: Mapping[str, Any] | None = None, locale: str = "en"
) -> dict[str, Any]:
    """A made-up customer and event that templates are checked against at save time.

    ``extra`` (the template's sample data) is merged in, so a template using a trait or an
    event property the sample lacks can declare it there.
    """
    customer = {
        "id": 1,
        "external_id": "sample-user",
        "email": "ada@example.com",
        "phone": "+15555550100",
        "timezone": "Europe/London",
        "locale": locale,
        "first_seen": now - dt.timedelta(days=30),
        "last_seen": now,
        "traits": {"first_name": "Ada", "last_name": "Lovelace", "name": "Ada Lovelace"},
    }
    event = {
        "id": 1,
        "type": "track",
        "name": "Sample Event",
        "properties": {},
        "timestamp": now,
    }
    extra = dict(extra or {})
    extra_customer = dict(extra.pop("customer", None) or {})
    customer["traits"].update(extra_customer.pop("traits", None) or {})
    customer.update(extra_customer)
    extra_event = dict(extra.pop("event", None) or {})
    event["properties"] = {**event["properties"], **(extra_event.pop("properties", None) or {})}
    event.update(extra_event)
    context = build_context(
        customer=customer,
        now=now,
        event=event,
        segments=extra.pop("segments", ()),
        scores=extra.pop("scores", None),
        recommendations=extra.pop("recommendations", ()),
        links={**SAMPLE_LINKS, **(extra.pop("links", None) or {})},
        default_timezone="UTC",
    )
    context.update(extra)
    return context
