"""/api/v1/api-keys/: list, create (the secret shown once), read, revoke. Needs ``admin``."""

import pytest

from customers.models import ApiKey
from tests.customers.api_helpers import call

KEYS = "/api/v1/api-keys/"


@pytest.mark.django_db
class TestApiKeys:
    def test_create_returns_the_secret_once_and_stores_only_its_hash(self, client, admin_key):
        response = call(client, "post", KEYS, admin_key, {"name": "CRM", "scopes": ["read"]})

        assert response.status_code == 201
        body = response.json()
        secret = body["key"]
        created = ApiKey.objects.get(pk=body["id"])
        assert (created.name, created.scopes, body["prefix"]) == ("CRM", ["read"], created.prefix)
        assert secret not in {created.secret_hash, created.prefix}
        assert created.created_by.startswith("API key ")
        # The new key works at once, with its own scopes only.
        assert call(client, "get", "/api/v1/customers/", secret).status_code == 200
        assert call(client, "get", KEYS, secret).status_code == 403
        # Nowhere else is the secret shown again.
        for path in (KEYS, f"{KEYS}{created.pk}/"):
            answer = call(client, "get", path, admin_key)
            assert secret not in answer.content.decode()
            assert "secret_hash" not in answer.content.decode()
            assert "key" not in (answer.json().get("results") or [answer.json()])[0]

    def test_lists_keys_newest_first(self, client, admin_key):
        call(client, "post", KEYS, admin_key, {"name": "second", "scopes": ["ingest"]})

        body = call(client, "get", KEYS, admin_key).json()

        assert body["count"] == 2
        assert [k["name"] for k in body["results"]] == ["second", "test admin"]
        assert body["results"][0]["is_active"] is True

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": "x", "scopes": ["root"]}, "scopes"),
            ({"name": "x", "scopes": []}, "scopes"),
            ({"name": "x"}, "scopes"),
            ({"name": "", "scopes": ["read"]}, "name"),
            ({"name": "x" * 101, "scopes": ["read"]}, "name"),
        ],
    )
    def test_bad_input_is_400_naming_the_field_and_creates_nothing(
        self, client, admin_key, body, field
    ):
        response = call(client, "post", KEYS, admin_key, body)

        assert response.status_code == 400
        assert field in response.json()
        assert ApiKey.objects.count() == 1  # the admin key of the test only

    def test_revoke_stops_the_key_and_is_idempotent(self, client, admin_key):
        created = call(client, "post", KEYS, admin_key, {"name": "tmp", "scopes": ["read"]})
        key_id, secret = created.json()["id"], created.json()["key"]

        first = call(client, "post", f"{KEYS}{key_id}/revoke/", admin_key)
        revoked_at = ApiKey.objects.get(pk=key_id).revoked_at
        again = call(client, "post", f"{KEYS}{key_id}/revoke/", admin_key)

        assert first.status_code == again.status_code == 200
        assert first.json()["is_active"] is False
        assert revoked_at is not None
        assert ApiKey.objects.get(pk=key_id).revoked_at == revoked_at
        assert call(client, "get", "/api/v1/customers/", secret).status_code == 401

    def test_unknown_key_id_is_404(self, client, admin_key):
        assert call(client, "get", f"{KEYS}999999/", admin_key).status_code == 404
        assert call(client, "post", f"{KEYS}999999/revoke/", admin_key).status_code == 404

    @pytest.mark.parametrize("fixture", ["read_key", "write_api_key"])
    def test_keys_without_admin_scope_are_refused(self, client, request, fixture):
        key = request.getfixturevalue(fixture)

        listing = call(client, "get", KEYS, key)
        creating = call(client, "post", KEYS, key, {"name": "x", "scopes": ["admin"]})

        assert listing.status_code == creating.status_code == 403
        assert ApiKey.objects.count() == 1
