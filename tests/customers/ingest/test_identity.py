"""identify links ids to one profile; alias merges two profiles into one."""

import threading

import pytest
from django.db import connection
from django.test import Client

from customers.models import Customer, CustomerMerge, Device, Event, Identity
from customers.signals import customer_merged
from tests.customers.ingest.helpers import post


def ids_of(customer: Customer) -> set[tuple[str, str]]:
    return set(customer.identities.values_list("kind", "value"))


@pytest.mark.django_db
class TestIdentify:
    def test_anonymous_browsing_then_identify_keeps_one_profile(self, client, basic_auth):
        post(client, "/v1/page", {"anonymousId": "anon-1", "name": "Home"}, basic_auth)
        anonymous = Customer.objects.get()
        assert anonymous.external_id is None

        post(client, "/v1/identify", {"anonymousId": "anon-1", "userId": "u1"}, basic_auth)

        customer = Customer.objects.get()
        assert customer.pk == anonymous.pk
        assert customer.external_id == "u1"
        assert ids_of(customer) == {("anonymous_id", "anon-1"), ("user_id", "u1")}
        assert Event.objects.filter(customer=customer).count() == 2

    def test_identify_of_a_known_user_folds_the_anonymous_profile_in(self, client, basic_auth):
        post(client, "/v1/identify", {"userId": "u1", "traits": {"plan": "pro"}}, basic_auth)
        post(client, "/v1/track", {"anonymousId": "anon-2", "event": "Product Viewed"}, basic_auth)
        assert Customer.objects.count() == 2

        post(client, "/v1/identify", {"anonymousId": "anon-2", "userId": "u1"}, basic_auth)

        customer = Customer.objects.get()
        assert customer.external_id == "u1"
        assert customer.events.count() == 3
        assert ("anonymous_id", "anon-2") in ids_of(customer)

    def test_an_anonymous_id_already_used_by_another_user_moves_on_without_history(
        self, client, basic_auth
    ):
        post(
            client, "/v1/identify", {"anonymousId": "shared-device", "userId": "alice"}, basic_auth
        )
        post(client, "/v1/identify", {"anonymousId": "shared-device", "userId": "bob"}, basic_auth)

        alice, bob = (
            Customer.objects.get(external_id="alice"),
            Customer.objects.get(external_id="bob"),
        )
        assert alice.events.count() == 1
        assert bob.events.count() == 1
        assert Identity.objects.get(value="shared-device").customer == bob

    def test_new_users_in_one_batch_each_get_a_profile(self, client, basic_auth):
        batch = [
            {"type": "identify", "userId": f"u{i}", "anonymousId": f"a{i}"} for i in range(5)
        ] + [{"type": "track", "anonymousId": "a3", "event": "Product Viewed"}]
        post(client, "/v1/batch", {"batch": batch}, basic_auth)

        assert Customer.objects.count() == 5
        assert Event.objects.get(name="Product Viewed").customer.external_id == "u3"


@pytest.mark.django_db
class TestAlias:
    def test_alias_merges_events_identities_devices_and_traits_newest_wins(
        self, client, basic_auth
    ):
        post(client, "/v1/identify", {
            "userId": "old-id", "timestamp": "2026-01-01T00:00:00Z",
            "traits": {"plan": "free", "city": "Oslo", "email": "old@example.com"},
            "context": {"device": {"token": "tok-1", "type": "ios"}},
        }, basic_auth)  # fmt: skip
        post(client, "/v1/identify", {
            "userId": "new-id", "timestamp": "2026-02-01T00:00:00Z",
            "traits": {"plan": "pro"},
        }, basic_auth)  # fmt: skip
        old = Customer.objects.get(external_id="old-id")
        received = []

        def on_merge(sender, source_id, target_id, **kwargs):
            received.append((source_id, target_id))

        customer_merged.connect(on_merge)
        try:
            post(client, "/v1/alias", {"previousId": "old-id", "userId": "new-id"}, basic_auth)
        finally:
            customer_merged.disconnect(on_merge)

        survivor = Customer.objects.get()
        assert survivor.external_id == "new-id"
        assert survivor.traits == {"plan": "pro", "city": "Oslo", "email": "old@example.com"}
        assert survivor.email == "old@example.com"
        assert survivor.events.count() == 3
        assert Device.objects.get().customer == survivor
        assert ids_of(survivor) == {("user_id", "old-id"), ("user_id", "new-id")}
        assert received == [(old.pk, survivor.pk)]
        merge = CustomerMerge.objects.get()
        assert (merge.merged_customer_id, merge.merged_external_id, merge.events_moved) == (
            old.pk, "old-id", 1,
        )  # fmt: skip

    def test_events_under_the_old_id_land_on_the_survivor_after_a_merge(self, client, basic_auth):
        post(client, "/v1/identify", {"userId": "old-id"}, basic_auth)
        post(client, "/v1/identify", {"userId": "new-id"}, basic_auth)
        post(client, "/v1/alias", {"previousId": "old-id", "userId": "new-id"}, basic_auth)

        post(client, "/v1/track", {"userId": "old-id", "event": "Order Completed"}, basic_auth)

        assert Customer.objects.count() == 1
        assert Event.objects.get(name="Order Completed").customer.external_id == "new-id"

    def test_alias_of_an_anonymous_profile_to_a_new_user_names_it(self, client, basic_auth):
        post(client, "/v1/track", {"anonymousId": "anon", "event": "Product Viewed"}, basic_auth)
        post(client, "/v1/alias", {"previousId": "anon", "userId": "u1"}, basic_auth)

        customer = Customer.objects.get()
        assert customer.external_id == "u1"
        assert customer.events.count() == 2

    def test_alias_of_an_unknown_previous_id_links_it(self, client, basic_auth):
        post(client, "/v1/alias", {"previousId": "never-seen", "userId": "u1"}, basic_auth)
        post(client, "/v1/track", {"anonymousId": "never-seen", "event": "E"}, basic_auth)

        assert Customer.objects.get().events.count() == 2

    def test_merging_twice_is_harmless(self, client, basic_auth):
        post(client, "/v1/identify", {"userId": "a"}, basic_auth)
        post(client, "/v1/identify", {"userId": "b"}, basic_auth)
        for message_id in ("x1", "x2"):
            body = {"previousId": "a", "userId": "b", "messageId": message_id}
            assert post(client, "/v1/alias", body, basic_auth).status_code == 200
        assert Customer.objects.count() == 1
        assert CustomerMerge.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_identifies_of_one_new_user_make_one_customer(basic_auth):
    barrier = threading.Barrier(6)
    statuses = []

    def identify(index: int) -> None:
        try:
            barrier.wait()
            response = post(
                Client(), "/v1/identify",
                {"userId": "racer", "anonymousId": f"anon-{index}", "traits": {"n": index}},
                basic_auth,
            )  # fmt: skip
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=identify, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 6
    customer = Customer.objects.get()
    assert customer.external_id == "racer"
    assert customer.events.count() == 6
    assert Identity.objects.filter(kind="anonymous_id").count() == 6
