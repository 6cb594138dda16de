"""/api/v1/customers/{external_id}/events/: newest first, cursor pages, type and name."""

import datetime as dt

import pytest

from customers.models import Event, Identity
from tests.customers.api_helpers import call
from tests.customers.factories import BASE_TIME, CustomerFactory, EventFactory


def events_of(external_id: str) -> str:
    return f"/api/v1/customers/{external_id}/events/"


@pytest.fixture
def customer(db):
    return CustomerFactory(external_id="u1")


def at(minutes: int) -> dt.datetime:
    return BASE_TIME + dt.timedelta(minutes=minutes)


@pytest.mark.django_db
class TestEvents:
    def test_newest_first_with_every_field(self, client, read_key, customer):
        EventFactory(customer=customer, name="Product Viewed", timestamp=at(1))
        EventFactory(
            customer=customer,
            name="Order Completed",
            timestamp=at(5),
            properties={"total": 42.5},
            message_id="m-order",
        )
        EventFactory(name="Someone else's", timestamp=at(9))

        response = call(client, "get", events_of("u1"), read_key)

        assert response.status_code == 200
        results = response.json()["results"]
        assert [e["name"] for e in results] == ["Order Completed", "Product Viewed"]
        assert results[0]["properties"] == {"total": 42.5}
        assert results[0]["message_id"] == "m-order"
        assert results[0]["type"] == "track"
        assert dt.datetime.fromisoformat(results[0]["timestamp"]) == at(5)

    def test_cursor_pages_walk_the_whole_history_once(self, client, read_key, customer):
        # Equal timestamps too: the cursor must still neither skip nor repeat.
        for minute in (1, 2, 2, 2, 3, 4, 5):
            EventFactory(customer=customer, timestamp=at(minute))

        seen, path, params, pages = [], events_of("u1"), {"page_size": 3}, 0
        while path:
            body = call(client, "get", path, read_key, **params).json()
            seen.extend(e["id"] for e in body["results"])
            path, params, pages = body["next"], {}, pages + 1

        expected = list(
            Event.objects.filter(customer=customer)
            .order_by("-timestamp", "-pk")
            .values_list("pk", flat=True)
        )
        assert seen == expected
        assert pages == 3

    def test_filters_by_type_and_name(self, client, read_key, customer):
        EventFactory(customer=customer, name="Product Viewed")
        EventFactory(customer=customer, name="Order Completed")
        EventFactory(customer=customer, type=Event.Type.PAGE, name="Home")

        tracks = call(client, "get", events_of("u1"), read_key, type="track").json()
        orders = call(client, "get", events_of("u1"), read_key, name="Order Completed").json()
        home = call(client, "get", events_of("u1"), read_key, type="page", name="Home").json()

        assert len(tracks["results"]) == 2
        assert [e["name"] for e in orders["results"]] == ["Order Completed"]
        assert [e["name"] for e in home["results"]] == ["Home"]

    def test_unknown_type_is_400_naming_the_parameter(self, client, read_key, customer):
        response = call(client, "get", events_of("u1"), read_key, type="purchase")

        assert response.status_code == 400
        assert list(response.json()) == ["type"]
        assert "not a valid choice" in response.json()["type"][0]

    def test_events_of_a_merged_id_are_the_survivors(self, client, read_key, customer):
        Identity.objects.create(kind=Identity.Kind.USER_ID, value="old-id", customer=customer)
        EventFactory(customer=customer)

        response = call(client, "get", events_of("old-id"), read_key)

        assert len(response.json()["results"]) == 1

    def test_unknown_customer_is_404(self, client, read_key):
        response = call(client, "get", events_of("nobody"), read_key)
        assert response.status_code == 404
