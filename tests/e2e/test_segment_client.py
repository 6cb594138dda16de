"""Segment's own Python library, pointed at a live Journeyline, works unchanged."""

import pytest
from segment.analytics import Client
from segment.analytics.request import APIError

from customers.models import Customer, Event

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("gzip", [False, True])
def test_analytics_python_identify_and_track_are_stored(live_server, write_key, gzip):
    errors = []
    client = Client(
        write_key=write_key,
        host=live_server.url,
        gzip=gzip,
        sync_mode=True,
        max_retries=0,
        on_error=lambda error, batch: errors.append(error),
    )

    client.identify(
        "user-42",
        {"email": "Ada@Example.com", "plan": "pro"},
        context={"timezone": "Europe/London"},
        anonymous_id="anon-42",
    )
    client.track("user-42", "Order Completed", {"order_id": "o-1", "total": 30.5})
    client.page(anonymous_id="anon-42", name="Home", properties={"url": "https://shop.example/"})
    client.alias("user-42", "user-42-new")
    client.flush()

    assert errors == []
    customer = Customer.objects.get()
    # alias(previous_id, user_id) folds the old profile into the new id.
    assert customer.external_id == "user-42-new"
    assert customer.email == "ada@example.com"
    assert customer.timezone == "Europe/London"
    assert customer.traits["plan"] == "pro"
    events = Event.objects.order_by("timestamp", "pk")
    assert [(e.type, e.name) for e in events] == [
        ("identify", ""),
        ("track", "Order Completed"),
        ("page", "Home"),
        ("alias", ""),
    ]
    assert events[1].properties == {"order_id": "o-1", "total": 30.5}
    assert events[1].context["library"]["name"] == "analytics-python"
    assert all(event.customer_id == customer.pk for event in events)
    assert set(customer.identities.values_list("value", flat=True)) == {
        "user-42", "anon-42", "user-42-new",
    }  # fmt: skip


def test_a_wrong_write_key_is_reported_to_the_client(live_server, db):
    client = Client(write_key="jl_wrong_key", host=live_server.url, sync_mode=True, max_retries=0)

    with pytest.raises(APIError) as caught:
        client.track("u", "E")

    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"
    assert Event.objects.count() == 0
