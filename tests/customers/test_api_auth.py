"""Every REST call needs a Bearer key with the right scope, and is throttled per key."""

import uuid

import pytest
from django.conf import settings
from django.test import override_settings

from customers.models import ApiKey, Customer
from customers.services.api_keys import api_key_create, api_key_revoke
from customers.throttling import ApiKeyRateThrottle
from tests.customers.api_helpers import call
from tests.customers.factories import CustomerFactory

LIST = "/api/v1/customers/"


@pytest.mark.django_db
class TestAuthentication:
    def test_no_key_is_401_with_a_challenge(self, client):
        response = call(client, "get", LIST)

        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Bearer"

    @pytest.mark.parametrize("header", ["Bearer", "Bearer jl_nope_nope", "Bearer garbage"])
    def test_unknown_key_is_401(self, client, header):
        response = client.get(LIST, HTTP_AUTHORIZATION=header)
        assert response.status_code == 401

    def test_revoked_key_is_401(self, client, read_key):
        api_key = ApiKey.objects.get()
        api_key_revoke(api_key=api_key)

        response = call(client, "get", LIST, read_key)

        assert response.status_code == 401
        assert response.json() == {"detail": "unknown or revoked API key"}

    def test_a_write_without_a_key_writes_nothing(self, client):
        response = call(client, "put", f"{LIST}u1/", None, {"locale": "fr"})

        assert response.status_code == 401
        assert Customer.objects.count() == 0


@pytest.mark.django_db
class TestScopes:
    def test_read_scope_cannot_write(self, client, read_key):
        response = call(client, "put", f"{LIST}u1/", read_key, {"locale": "fr"})

        assert response.status_code == 403
        assert Customer.objects.count() == 0

    def test_ingest_scope_cannot_read(self, client, write_key):
        assert call(client, "get", LIST, write_key).status_code == 403

    def test_write_scope_alone_cannot_read(self, client):
        _, key = api_key_create(name="writer", scopes=["write"])
        assert call(client, "get", LIST, key).status_code == 403
        assert call(client, "put", f"{LIST}u1/", key, {}).status_code == 201

    def test_admin_scope_may_do_everything(self, client, admin_key):
        CustomerFactory(external_id="u1")
        assert call(client, "get", f"{LIST}u1/", admin_key).status_code == 200
        assert call(client, "patch", f"{LIST}u1/", admin_key, {"locale": "fr"}).status_code == 200


@pytest.fixture
def own_throttle_counters():
    """Counters of this test only: the Redis cache is shared by everyone's test runs."""
    caches = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}
    with override_settings(CACHES=caches):
        yield


@pytest.mark.django_db
@pytest.mark.usefixtures("own_throttle_counters")
class TestThrottle:
    def test_a_key_over_its_rate_gets_429_and_another_key_does_not(
        self, client, read_key, monkeypatch
    ):
        monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
        # A frozen clock: the window cannot slide during the test.
        monkeypatch.setattr(ApiKeyRateThrottle, "timer", staticmethod(lambda: 1_000_000.0))
        _, other_key = api_key_create(name="other", scopes=["read"])

        answers = [call(client, "get", LIST, read_key).status_code for _ in range(4)]
        other = call(client, "get", LIST, other_key)

        assert answers == [200, 200, 200, 429]
        assert other.status_code == 200

    def test_429_says_when_to_retry(self, client, read_key, monkeypatch):
        monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "1/min"})
        monkeypatch.setattr(ApiKeyRateThrottle, "timer", staticmethod(lambda: 2_000_000.0))
        call(client, "get", LIST, read_key)

        response = call(client, "get", LIST, read_key)

        assert response.status_code == 429
        assert response["Retry-After"] == "60"
        assert "throttled" in response.json()["detail"].lower()
