"""The events admin: read-only, filtered by type and name, by date."""

import pytest
from django.urls import reverse

from customers.models import Event
from tests.customers.factories import CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:customers_event_changelist")


def test_filter_by_type_and_name(admin_client):
    # given
    wanted = EventFactory(type="track", name="Order Completed")
    EventFactory(type="track", name="Product Viewed")
    EventFactory(type="page", name="Order Completed")
    # when
    response = admin_client.get(CHANGELIST, {"type__exact": "track", "name": "Order Completed"})
    # then
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [wanted]


def test_date_hierarchy_and_customer_link_from_the_timeline(admin_client):
    # given
    customer = CustomerFactory()
    mine = EventFactory(customer=customer)
    EventFactory()
    # when
    response = admin_client.get(
        CHANGELIST,
        {"customer__id__exact": customer.pk, "timestamp__year": mine.timestamp.year},
    )
    # then
    assert list(response.context["cl"].result_list) == [mine]


def test_search_by_message_id(admin_client):
    # given
    wanted = EventFactory(message_id="abc-123")
    EventFactory(message_id="abc-1234")
    # when
    response = admin_client.get(CHANGELIST, {"q": "abc-123"})
    # then
    assert list(response.context["cl"].result_list) == [wanted]


def test_events_are_read_only(admin_client):
    # given
    event = EventFactory(name="Product Viewed", properties={"sku": "A-1"})
    change_url = reverse("admin:customers_event_change", args=[event.pk])
    # when
    page = admin_client.get(change_url)
    edit = admin_client.post(change_url, {"name": "Changed"})
    add = admin_client.get(reverse("admin:customers_event_add"))
    # then
    assert page.status_code == 200
    assert "&quot;sku&quot;: &quot;A-1&quot;" in page.content.decode()
    assert edit.status_code == 403
    assert add.status_code == 403
    event.refresh_from_db()
    assert event.name == "Product Viewed"
    assert Event.objects.count() == 1
