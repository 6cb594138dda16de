"""The customers admin: searchable, read-only profiles with their event timeline."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from customers.admin.paginators import EstimatedCountPaginator
from customers.models import Customer, Event, Identity
from customers.services.merge import customer_merge
from tests.customers.factories import (
    CustomerFactory,
    DeviceFactory,
    EventFactory,
    IdentityFactory,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:customers_customer_changelist")


def change_url(customer: Customer) -> str:
    return reverse("admin:customers_customer_change", args=[customer.pk])


def listed(response) -> list[Customer]:
    return list(response.context["cl"].result_list)


def test_search_by_email_is_exact_and_case_insensitive(admin_client):
    # given
    wanted = CustomerFactory(email="ann@example.com")
    CustomerFactory(email="anne@example.com")
    # when
    response = admin_client.get(CHANGELIST, {"q": "  ANN@Example.com "})
    # then
    assert response.status_code == 200
    assert listed(response) == [wanted]


def test_search_by_external_id_prefix(admin_client):
    # given
    first = CustomerFactory(external_id="shop-1001")
    second = CustomerFactory(external_id="shop-1002")
    CustomerFactory(external_id="app-1001")
    # when
    response = admin_client.get(CHANGELIST, {"q": "shop-100"})
    # then
    assert sorted(listed(response), key=lambda c: c.pk) == [first, second]


def test_list_filter_by_contact(admin_client):
    # given
    with_phone = CustomerFactory(email="", phone="+31612345678")
    CustomerFactory(email="someone@example.com", phone="")
    # when
    response = admin_client.get(CHANGELIST, {"contact": "phone"})
    # then
    assert listed(response) == [with_phone]


def test_changelist_queries_do_not_grow_with_customers(admin_client):
    # given a first page measured with 2 customers
    CustomerFactory.create_batch(2)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(CHANGELIST)
    # when there are 20
    CustomerFactory.create_batch(18)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(CHANGELIST)
    # then the page costs the same number of queries
    assert len(listed(response)) == 20
    assert len(many.captured_queries) == len(few.captured_queries)


def test_change_page_shows_traits_readably_and_escaped(admin_client):
    # given
    customer = CustomerFactory(traits={"plan": "gold", "nick": "<script>x</script>"})
    # when
    response = admin_client.get(change_url(customer))
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "<pre" in html
    assert "&quot;plan&quot;: &quot;gold&quot;" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>x</script>" not in html


def test_change_page_shows_the_newest_50_events_and_the_count(admin_client):
    # given 60 events, the first one the oldest
    customer = CustomerFactory()
    events = [
        EventFactory(customer=customer, name=f"Event {n:02d}", properties={"n": n})
        for n in range(60)
    ]
    # when
    response = admin_client.get(change_url(customer))
    # then
    html = response.content.decode()
    assert "Newest 50 of 60 events" in html
    assert html.count('<tr><td><a href="/admin/customers/event/') == 50
    assert "Event 59" in html and "Event 10" in html
    assert "Event 09" not in html
    assert html.index("Event 59") < html.index("Event 58")
    assert "{&quot;n&quot;: 59}" in html
    assert events[0].type in html


def test_change_page_shows_identities_and_devices_read_only(admin_client):
    # given
    customer = CustomerFactory(external_id="u-42")
    IdentityFactory(customer=customer, value="anon-abc")
    DeviceFactory(customer=customer, platform="android", token="t" * 100)
    # when
    response = admin_client.get(change_url(customer))
    # then
    html = response.content.decode()
    assert "anon-abc" in html and "u-42" in html
    assert "Android" in html
    assert "t" * 100 not in html  # push tokens are shortened
    assert 'name="identities-0-value"' not in html  # no editable inline field


def test_profiles_cannot_be_edited_added_or_deleted_in_the_admin(admin_client):
    # given
    customer = CustomerFactory(email="keep@example.com")
    EventFactory(customer=customer)
    # when
    edit = admin_client.post(change_url(customer), {"email": "changed@example.com"})
    add = admin_client.get(reverse("admin:customers_customer_add"))
    delete = admin_client.post(
        reverse("admin:customers_customer_delete", args=[customer.pk]), {"post": "yes"}
    )
    # then
    assert edit.status_code == 403
    assert add.status_code == 403
    assert delete.status_code == 403
    customer.refresh_from_db()
    assert customer.email == "keep@example.com"
    assert Customer.objects.count() == 1
    assert Identity.objects.count() == 1
    assert Event.objects.count() == 1


def test_change_page_shows_the_alias_merges_it_absorbed(admin_client):
    # given a profile that absorbed another one with 3 events
    survivor = CustomerFactory(external_id="u-new")
    merged = CustomerFactory(external_id="u-old")
    EventFactory.create_batch(3, customer=merged)
    customer_merge(source_id=merged.pk, target_id=survivor.pk)
    # when
    response = admin_client.get(change_url(survivor))
    # then
    html = response.content.decode()
    assert "merged profiles (alias)" in html.lower()
    assert "user_id:u-old" in html
    assert "Newest 3 of 3 events" in html


def test_timeline_links_to_all_events_of_the_customer(admin_client):
    # given
    customer = CustomerFactory()
    EventFactory(customer=customer)
    # when
    html = admin_client.get(change_url(customer)).content.decode()
    # then
    assert f"/admin/customers/event/?customer__id__exact={customer.pk}" in html


def test_change_page_queries_do_not_grow_with_events(admin_client):
    # given
    customer = CustomerFactory()
    EventFactory.create_batch(51, customer=customer)
    with CaptureQueriesContext(connection) as few:
        admin_client.get(change_url(customer))
    # when
    EventFactory.create_batch(30, customer=customer)
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(change_url(customer))
    # then
    assert "Newest 50 of 81 events" in response.content.decode()
    assert len(many.captured_queries) == len(few.captured_queries)


def count_queries_over_customers(queries: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in queries.captured_queries
        if "COUNT(" in query["sql"].upper() and '"customers_customer"' in query["sql"]
    ]


@pytest.fixture
def analysed_customers(monkeypatch):
    customers = CustomerFactory.create_batch(3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
    # Treat the table as big, so that 3 rows already take the estimate.
    monkeypatch.setattr(EstimatedCountPaginator, "EXACT_BELOW", 1)
    return customers


def test_a_big_unfiltered_list_shows_the_estimate_without_counting(
    admin_client, analysed_customers
):
    # when
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(CHANGELIST)
    # then the page renders every customer and its total from pg_class, with no COUNT(*)
    assert response.status_code == 200
    assert len(listed(response)) == 3
    assert response.context["cl"].result_count == 3
    assert count_queries_over_customers(queries) == []
    assert sum("reltuples" in query["sql"] for query in queries.captured_queries) == 1


def test_a_filtered_list_counts_only_what_matches(admin_client, analysed_customers):
    # given one customer of the four without email or phone
    CustomerFactory(email="", phone="")
    # when
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(CHANGELIST, {"contact": "none"})
    # then the count is exact and the whole table is never counted
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert response.context["cl"].full_result_count is None
    counts = count_queries_over_customers(queries)
    assert len(counts) == 1
    assert "WHERE" in counts[0]


def test_the_locale_filter_offers_the_locales_of_recent_profiles_and_filters(
    admin_client, monkeypatch
):
    # given an old locale beyond the sample, and two recent ones
    CustomerFactory(locale="fr-FR")
    dutch = CustomerFactory(locale="nl-NL")
    CustomerFactory(locale="de-DE")
    CustomerFactory(locale="")
    monkeypatch.setattr("customers.selectors.LOCALE_CHOICES_SAMPLE", 3)
    # when
    offered = admin_client.get(CHANGELIST)
    filtered = admin_client.get(CHANGELIST, {"locale": "nl-NL"})
    # then
    (locale_filter,) = [
        spec for spec in offered.context["cl"].filter_specs if spec.title == "locale"
    ]
    assert [value for value, _ in locale_filter.lookup_choices] == ["de-DE", "nl-NL"]
    assert listed(filtered) == [dutch]
