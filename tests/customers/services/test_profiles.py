"""Profile writes one at a time: PUT replaces, update changes and merges traits."""

import threading

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from customers.models import Customer, Identity
from customers.services.profiles import customer_put, customer_update, merge_traits
from tests.customers.factories import CustomerFactory

keys = st.text(min_size=1, max_size=5)
values = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.booleans())


@given(
    current=st.dictionaries(keys, values.filter(lambda v: v is not None)),
    changes=st.dictionaries(keys, values),
)
def test_merge_traits_new_values_win_and_null_removes(current, changes):
    merged = merge_traits(current=current, changes=changes)

    for key, value in changes.items():
        if value is None:
            assert key not in merged
        else:
            assert merged[key] == value
    for key, value in current.items():
        if key not in changes:
            assert merged[key] == value
    assert set(merged) <= set(current) | set(changes)


@pytest.mark.django_db
class TestCustomerPut:
    def test_creates_once_then_replaces(self):
        customer, created = customer_put(external_id="u1", locale="en", traits={"a": 1})
        again, created_again = customer_put(external_id="u1", email="ada@example.com")

        assert (created, created_again) == (True, False)
        assert again.pk == customer.pk
        customer.refresh_from_db()
        assert (customer.email, customer.locale, customer.traits) == ("ada@example.com", "", {})
        assert Identity.objects.filter(customer=customer).count() == 1


@pytest.mark.django_db
class TestCustomerUpdate:
    def test_unknown_fields_are_refused_and_nothing_is_written(self):
        customer = CustomerFactory(locale="en")

        with pytest.raises(ValueError, match="not profile fields: external_id"):
            customer_update(customer=customer, changes={"locale": "fr", "external_id": "x"})

        customer.refresh_from_db()
        assert customer.locale == "en"

    def test_no_changes_touches_no_row(self, django_assert_max_num_queries):
        customer = CustomerFactory()

        with django_assert_max_num_queries(2) as queries:  # a savepoint at most
            customer_update(customer=customer, changes={})

        assert not [q for q in queries.captured_queries if "customers_customer" in q["sql"]]


@pytest.mark.django_db(transaction=True)
def test_concurrent_puts_of_one_new_user_make_one_customer():
    barrier = threading.Barrier(4)
    outcomes = []

    def put(index: int) -> None:
        try:
            barrier.wait()
            outcomes.append(customer_put(external_id="racer", locale=f"l{index}")[1])
        finally:
            connection.close()

    threads = [threading.Thread(target=put, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == [False, False, False, True]
    assert Customer.objects.count() == 1
    assert Identity.objects.filter(value="racer").count() == 1
