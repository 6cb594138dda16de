"""External ids with "/", "?", "#", "%", spaces or any other character are addressable in
every REST path that takes one: percent-encoded as one segment, they round-trip."""

from urllib.parse import quote

import pytest
from django.urls import resolve, reverse
from hypothesis import given
from hypothesis import strategies as st

from consent.models import ConsentEvent
from customers.models import Customer
from journeys.models import Enrolment
from tests.consent.factories import TopicFactory
from tests.customers.api_helpers import call
from tests.customers.factories import CustomerFactory, EventFactory
from tests.journeys.factories import live_journey

AWKWARD_IDS = ["a/b", "x y", "100%", "ü@example.com", "q?x=1#top", "a/", "/a", "line\nbreak"]

# route name -> the fixed part after the id
ROUTES = {
    "customers-detail": "",
    "customers-events": "events/",
    "customers-consent": "consent/",
    "customers-consent-events": "consent/events/",
    "customers-export": "export/",
}
# An id ending in one of these reads as that part of the shorter id (documented).
RESERVED_TAILS = ("/events", "/consent", "/consent/events", "/export")


def url(external_id: str, tail: str = "") -> str:
    """The path a client builds: the id percent-encoded as one segment."""
    return f"/api/v1/customers/{quote(external_id, safe='')}/{tail}"


@given(
    external_id=st.text(min_size=1, max_size=40).filter(
        lambda text: "\x00" not in text and not text.endswith(RESERVED_TAILS)
    )
)
def test_every_route_resolves_to_the_id_it_was_given(external_id):
    # The server hands Django the decoded path; reverse() builds one that resolves alike.
    for name, tail in ROUTES.items():
        # when
        match = resolve(f"/api/v1/customers/{external_id}/{tail}")
        # then
        assert (match.url_name, match.kwargs) == (name, {"external_id": external_id})
        assert reverse(name, kwargs={"external_id": external_id}).endswith(f"/{tail}")


def test_an_id_ending_in_a_sub_resource_name_reads_as_that_part_of_the_shorter_id():
    match = resolve("/api/v1/customers/a/events/")
    assert (match.url_name, match.kwargs) == ("customers-events", {"external_id": "a"})
    # but the sub-resources of such an id still resolve to it
    match = resolve("/api/v1/customers/a/events/consent/")
    assert (match.url_name, match.kwargs) == ("customers-consent", {"external_id": "a/events"})


@pytest.mark.django_db
@pytest.mark.parametrize("external_id", AWKWARD_IDS)
def test_the_profile_is_created_read_and_changed_by_its_encoded_id(
    client, write_api_key, external_id
):
    # when
    created = call(client, "put", url(external_id), write_api_key, {"email": "an@example.com"})
    read = call(client, "get", url(external_id), write_api_key)
    changed = call(client, "patch", url(external_id), write_api_key, {"locale": "nl-NL"})
    # then
    assert created.status_code == 201, created.json()
    assert (read.status_code, read.json()["external_id"]) == (200, external_id)
    assert (changed.status_code, changed.json()["locale"]) == (200, "nl-NL")
    assert list(Customer.objects.values_list("external_id", "locale")) == [(external_id, "nl-NL")]


@pytest.mark.django_db
def test_a_url_built_by_reverse_reaches_the_same_profile(client, read_key):
    # given
    CustomerFactory(external_id="a/b c%")
    # when
    response = call(client, "get", reverse("customers-detail", args=["a/b c%"]), read_key)
    # then
    assert (response.status_code, response.json()["external_id"]) == (200, "a/b c%")


@pytest.mark.django_db
@pytest.mark.parametrize("external_id", AWKWARD_IDS)
def test_events_consent_and_export_of_an_awkward_id(client, write_api_key, admin_key, external_id):
    # given
    TopicFactory(key="news", name="Newsletter", channels=["email"], default="opt_in")
    customer = CustomerFactory(external_id=external_id)
    EventFactory.create_batch(2, customer=customer)
    EventFactory(customer=CustomerFactory(external_id="a"))  # "a/" and "a/b" are not "a"
    consent_row = {"channel": "email", "topic": "news", "action": "grant", "source": "api"}
    # when
    events = call(client, "get", url(external_id, "events/"), write_api_key)
    consent = call(client, "get", url(external_id, "consent/"), write_api_key)
    recorded = call(client, "post", url(external_id, "consent/events/"), write_api_key, consent_row)
    ledger = call(client, "get", url(external_id, "consent/events/"), write_api_key)
    export = call(client, "get", url(external_id, "export/"), admin_key)
    # then
    assert events.status_code == 200
    assert len(events.json()["results"]) == 2
    assert (consent.status_code, consent.json()["customer"]) == (200, external_id)
    assert recorded.status_code == 201, recorded.json()
    assert ConsentEvent.objects.filter(customer=customer).count() == 1
    assert ConsentEvent.objects.count() == 1
    assert len(ledger.json()["results"]) == 1
    assert (export.status_code, export.json()["customer"]["external_id"]) == (200, external_id)


@pytest.mark.django_db
def test_an_unknown_encoded_id_is_a_404_and_writes_nothing(client, write_api_key):
    # given
    CustomerFactory(external_id="a")
    # when
    responses = [
        call(client, "get", url("a/b"), write_api_key),
        call(client, "patch", url("a/b"), write_api_key, {"locale": "nl-NL"}),
        call(client, "get", url("a/b", "events/"), write_api_key),
        call(client, "get", url("a/b", "consent/"), write_api_key),
        call(client, "get", url("a\x00b", "consent/"), write_api_key),
        call(client, "get", url("a\x00b", "events/"), write_api_key),
    ]
    # then
    assert [response.status_code for response in responses] == [404] * 6
    assert list(Customer.objects.values_list("external_id", "locale")) == [("a", "")]


@pytest.mark.django_db
def test_a_journey_enrols_a_customer_by_an_awkward_id(client, write_api_key):
    # given a journey entered through the API that only waits
    journey = live_journey(
        {
            "schema": 1,
            "steps": [
                {
                    "id": "start",
                    "kind": "trigger",
                    "config": {"type": "api"},
                    "exits": {"next": "pause"},
                },
                {
                    "id": "pause",
                    "kind": "wait",
                    "config": {"duration": {"days": 1}},
                    "exits": {"next": "done"},
                },
                {"id": "done", "kind": "exit"},
            ],
        }
    )
    customer = CustomerFactory(external_id="shop/42 ü%")
    # when
    response = call(
        client,
        "post",
        f"/api/v1/journeys/{journey.pk}/enrolments/",
        write_api_key,
        {"external_id": "shop/42 ü%"},
    )
    # then
    assert response.status_code == 201, response.json()
    assert response.json()["external_id"] == "shop/42 ü%"
    assert list(Enrolment.objects.values_list("customer_id", flat=True)) == [customer.pk]
