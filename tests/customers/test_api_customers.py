"""/api/v1/customers/: search, read, create or replace with PUT, change with PATCH."""

import re

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.models import Customer, Identity
from customers.selectors import customer_list
from customers.signals import customer_profile_changed
from tests.customers.api_helpers import call
from tests.customers.factories import CustomerFactory, IdentityFactory
from tests.customers.ingest.helpers import post

LIST = "/api/v1/customers/"


def detail(external_id: str) -> str:
    return f"/api/v1/customers/{external_id}/"


@pytest.mark.django_db
class TestList:
    def test_lists_newest_first_with_identities(self, client, read_key):
        older = CustomerFactory(external_id="u-old")
        IdentityFactory(customer=older, value="anon-1")
        CustomerFactory(external_id="u-new")

        response = call(client, "get", LIST, read_key)

        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 2
        assert [c["external_id"] for c in body["results"]] == ["u-new", "u-old"]
        assert body["results"][1]["anonymous_ids"] == ["anon-1"]
        assert body["results"][1]["user_ids"] == ["u-old"]

    def test_search_by_email_is_exact_after_normalising(self, client, read_key):
        CustomerFactory(external_id="a", email="ada@example.com")
        CustomerFactory(external_id="b", email="ada@example.org")

        response = call(client, "get", LIST, read_key, search="  ADA@Example.com ")

        assert [c["external_id"] for c in response.json()["results"]] == ["a"]

    def test_search_by_external_id_prefix(self, client, read_key):
        for external_id in ("shop-1", "shop-2", "blog-1"):
            CustomerFactory(external_id=external_id)

        response = call(client, "get", LIST, read_key, search="shop-")

        assert sorted(c["external_id"] for c in response.json()["results"]) == ["shop-1", "shop-2"]

    def test_search_treats_like_wildcards_literally(self, client, read_key):
        CustomerFactory(external_id="shop-1")

        response = call(client, "get", LIST, read_key, search="%")

        assert response.json()["count"] == 0

    def test_pages_by_page_size(self, client, read_key):
        CustomerFactory.create_batch(5)

        first = call(client, "get", LIST, read_key, page_size=2).json()
        last = call(client, "get", LIST, read_key, page_size=2, page=3).json()

        assert first["count"] == 5
        assert len(first["results"]) == 2
        assert first["next"] is not None
        assert len(last["results"]) == 1
        assert last["next"] is None

    def test_page_past_the_end_is_404(self, client, read_key):
        response = call(client, "get", LIST, read_key, page=9)
        assert response.status_code == 404

    def test_query_count_does_not_grow_with_customers(
        self, client, read_key, django_assert_max_num_queries
    ):
        for customer in CustomerFactory.create_batch(3):
            IdentityFactory(customer=customer)
        call(client, "get", LIST, read_key)  # the key is looked up and cached
        with django_assert_max_num_queries(3) as few:
            call(client, "get", LIST, read_key)
        CustomerFactory.create_batch(20)

        with django_assert_max_num_queries(len(few.captured_queries)):
            response = call(client, "get", LIST, read_key)

        assert response.json()["count"] == 23


@pytest.mark.django_db
class TestRead:
    def test_reads_a_profile(self, client, read_key):
        CustomerFactory(
            external_id="u1", email="ada@example.com", traits={"plan": "pro"}, timezone="UTC"
        )

        response = call(client, "get", detail("u1"), read_key)

        assert response.status_code == 200
        body = response.json()
        assert body["external_id"] == "u1"
        assert body["email"] == "ada@example.com"
        assert body["traits"] == {"plan": "pro"}
        assert body["timezone"] == "UTC"

    def test_unknown_id_is_404(self, client, read_key):
        response = call(client, "get", detail("nobody"), read_key)
        assert response.status_code == 404

    def test_an_id_merged_by_alias_resolves_to_the_surviving_profile(
        self, client, read_key, basic_auth
    ):
        post(client, "/v1/identify", {"userId": "old-id", "traits": {"a": 1}}, basic_auth)
        post(client, "/v1/identify", {"userId": "new-id", "traits": {"b": 2}}, basic_auth)
        post(client, "/v1/alias", {"previousId": "old-id", "userId": "new-id"}, basic_auth)
        assert Customer.objects.count() == 1

        response = call(client, "get", detail("old-id"), read_key)

        assert response.status_code == 200
        assert response.json()["external_id"] == "new-id"
        assert set(response.json()["user_ids"]) == {"old-id", "new-id"}


@pytest.mark.django_db
class TestPut:
    def test_creates_a_customer_with_normalised_fields(self, client, write_api_key):
        response = call(
            client,
            "put",
            detail("u1"),
            write_api_key,
            {
                "email": " Ada@Example.COM ",
                "phone": "+31 (6) 1234-5678",
                "timezone": "Europe/Amsterdam",
                "locale": "nl-NL",
                "traits": {"plan": "pro", "seats": 3},
            },
        )

        assert response.status_code == 201
        customer = Customer.objects.get()
        assert customer.external_id == "u1"
        assert customer.email == "ada@example.com"
        assert customer.phone == "+31612345678"
        assert customer.timezone == "Europe/Amsterdam"
        assert customer.locale == "nl-NL"
        assert customer.traits == {"plan": "pro", "seats": 3}
        assert list(customer.identities.values_list("kind", "value")) == [("user_id", "u1")]
        assert response.json()["email"] == "ada@example.com"

    def test_replaces_every_field_and_clears_the_omitted_ones(self, client, write_api_key):
        CustomerFactory(
            external_id="u1", email="old@example.com", phone="+31612345678", traits={"a": 1}
        )

        response = call(client, "put", detail("u1"), write_api_key, {"traits": {"b": 2}})

        assert response.status_code == 200
        customer = Customer.objects.get()
        assert (customer.email, customer.phone, customer.traits) == ("", "", {"b": 2})

    def test_the_read_only_parts_of_a_read_profile_may_be_sent_back(self, client, write_api_key):
        CustomerFactory(external_id="u1", email="ada@example.com")
        profile = call(client, "get", detail("u1"), write_api_key).json()
        profile["locale"] = "en-GB"

        response = call(client, "put", detail("u1"), write_api_key, profile)

        assert response.status_code == 200
        assert Customer.objects.get().locale == "en-GB"
        assert Customer.objects.get().email == "ada@example.com"

    def test_put_on_a_merged_id_replaces_the_surviving_profile(self, client, write_api_key):
        survivor = CustomerFactory(external_id="new-id")
        Identity.objects.create(kind=Identity.Kind.USER_ID, value="old-id", customer=survivor)

        response = call(client, "put", detail("old-id"), write_api_key, {"locale": "fr"})

        assert response.status_code == 200
        assert Customer.objects.count() == 1
        survivor.refresh_from_db()
        assert survivor.locale == "fr"

    @pytest.mark.parametrize(
        ("body", "field", "reason"),
        [
            ({"email": "not-an-address"}, "email", "is not a valid email address"),
            ({"phone": "12345"}, "phone", "must be an E.164 number"),
            ({"timezone": "Mars/Olympus"}, "timezone", "must be an IANA time zone"),
            ({"locale": "english please"}, "locale", "must be a language tag"),
            ({"traits": ["a", "list"]}, "traits", "Expected a dictionary"),
            ({"traits": {"blob": "x" * 40_000}}, "traits", "at most 32 KB"),
            ({"emial": "ada@example.com"}, "emial", "is not a writable field"),
            ({"traits": {"note": "a\x00b"}}, "traits", "must not contain the NUL"),
            ({"traits": {"big": 2**70}}, "traits", "numbers within 64 bits"),
            ({"email": "ada\x00@example.com"}, "email", "Null characters are not allowed"),
        ],
    )
    def test_bad_input_is_400_naming_the_field_and_writes_nothing(
        self, client, write_api_key, body, field, reason
    ):
        response = call(client, "put", detail("u1"), write_api_key, body)

        assert response.status_code == 400
        assert list(response.json()) == [field]
        assert reason in response.json()[field][0]
        assert Customer.objects.count() == 0
        assert Identity.objects.count() == 0

    @pytest.mark.parametrize("external_id", ["x" * 256, "nul%00byte"])
    def test_an_impossible_id_is_400_and_writes_nothing(self, client, write_api_key, external_id):
        response = call(client, "put", detail(external_id), write_api_key, {})

        assert response.status_code == 400
        assert list(response.json()) == ["external_id"]
        assert Customer.objects.count() == 0

    def test_an_impossible_id_is_not_found_on_read(self, client, read_key):
        assert call(client, "get", detail("nul%00byte"), read_key).status_code == 404
        assert call(client, "get", detail("x" * 256), read_key).status_code == 404

    def test_malformed_json_is_400_and_writes_nothing(self, client, write_api_key):
        response = call(client, "put", detail("u1"), write_api_key, b'{"email": ')

        assert response.status_code == 400
        assert "JSON parse error" in response.json()["detail"]
        assert Customer.objects.count() == 0

    def test_a_body_that_is_not_an_object_is_400(self, client, write_api_key):
        response = call(client, "put", detail("u1"), write_api_key, ["email"])

        assert response.status_code == 400
        assert "non_field_errors" in response.json()
        assert Customer.objects.count() == 0

    def test_the_change_is_signalled_once(self, client, write_api_key):
        received = []

        def receiver(sender, customer_id, fields, **kwargs):
            received.append((customer_id, sorted(fields)))

        customer_profile_changed.connect(receiver)
        try:
            call(client, "put", detail("u1"), write_api_key, {"locale": "fr"})
        finally:
            customer_profile_changed.disconnect(receiver)

        customer = Customer.objects.get()
        assert received == [
            (customer.pk, ["email", "locale", "phone", "timezone", "traits"]),
        ]


@pytest.mark.django_db
class TestPatch:
    def test_changes_only_the_given_fields(self, client, write_api_key):
        CustomerFactory(external_id="u1", email="ada@example.com", locale="en")

        response = call(client, "patch", detail("u1"), write_api_key, {"phone": "0031612345678"})

        assert response.status_code == 200
        customer = Customer.objects.get()
        assert customer.phone == "+31612345678"
        assert customer.email == "ada@example.com"
        assert customer.locale == "en"

    def test_merges_traits_and_null_removes_one(self, client, write_api_key):
        CustomerFactory(external_id="u1", traits={"plan": "free", "seats": 1, "vip": True})

        response = call(
            client,
            "patch",
            detail("u1"),
            write_api_key,
            {"traits": {"plan": "pro", "vip": None, "country": "NL"}},
        )

        assert response.status_code == 200
        assert Customer.objects.get().traits == {"plan": "pro", "seats": 1, "country": "NL"}
        assert response.json()["traits"] == {"plan": "pro", "seats": 1, "country": "NL"}

    def test_null_or_empty_clears_a_field(self, client, write_api_key):
        CustomerFactory(external_id="u1", email="ada@example.com", timezone="UTC")

        call(client, "patch", detail("u1"), write_api_key, {"email": None, "timezone": ""})

        customer = Customer.objects.get()
        assert (customer.email, customer.timezone) == ("", "")

    def test_unknown_customer_is_404_and_creates_nothing(self, client, write_api_key):
        response = call(client, "patch", detail("nobody"), write_api_key, {"locale": "fr"})

        assert response.status_code == 404
        assert Customer.objects.count() == 0

    def test_bad_field_is_400_and_changes_nothing(self, client, write_api_key):
        CustomerFactory(external_id="u1", email="ada@example.com", locale="en")

        response = call(
            client,
            "patch",
            detail("u1"),
            write_api_key,
            {"locale": "fr", "email": "ada at example"},
        )

        assert response.status_code == 400
        assert response.json() == {"email": ["is not a valid email address"]}
        customer = Customer.objects.get()
        assert (customer.email, customer.locale) == ("ada@example.com", "en")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
bodies = st.dictionaries(
    st.sampled_from(["email", "phone", "timezone", "locale", "traits", "external_id", "x"]),
    json_values,
)


@pytest.mark.django_db
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies | json_values, method=st.sampled_from(["put", "patch"]))
def test_any_json_body_gets_a_clear_answer_never_a_server_error(
    client, write_api_key, body, method
):
    CustomerFactory.reset_sequence()
    Customer.objects.get_or_create(external_id="fuzz")
    Identity.objects.get_or_create(
        kind=Identity.Kind.USER_ID,
        value="fuzz",
        defaults={"customer": Customer.objects.get(external_id="fuzz")},
    )

    response = call(client, method, detail("fuzz"), write_api_key, body)

    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.json()  # names the field, or says what is wrong with the body


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("search", "columns"),
    [("shop-", {"external_id"}), ("Ada@Example.com", {"external_id", "email"})],
)
def test_search_is_served_by_indexes(search, columns):
    # Enough rows, and statistics about them, for the planner to choose as in production.
    Customer.objects.bulk_create(
        Customer(external_id=f"member-{n}", email=f"member{n}@example.com") for n in range(2000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
        cursor.execute("SET LOCAL enable_seqscan = off")

    plan = customer_list(search=search).explain()

    used = set(
        re.findall(r"Index (?:Only )?Scan (?:on|using) customers_customer_(\w+?)_[0-9a-f]{8}", plan)
    )
    assert used == columns, plan
    assert "Seq Scan" not in plan
