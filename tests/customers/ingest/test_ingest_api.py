"""The Segment HTTP Tracking API as a source library would use it."""

import base64

import orjson
import pytest

from customers.models import ApiKey, Customer, Device, Event
from customers.services.api_keys import api_key_create, api_key_revoke
from tests.customers.ingest.helpers import post

pytestmark = pytest.mark.django_db


def track(message_id="m1", user_id="u1", event="Product Viewed", **fields):
    return {"userId": user_id, "event": event, "messageId": message_id, **fields}


@pytest.mark.parametrize(
    ("path", "body", "stored_type", "stored_name"),
    [
        ("/v1/track", track(properties={"sku": "A1"}), "track", "Product Viewed"),
        ("/v1/identify", {"userId": "u1", "traits": {"plan": "pro"}}, "identify", ""),
        (
            "/v1/page",
            {"anonymousId": "a1", "name": "Home", "properties": {"url": "/"}},
            "page",
            "Home",
        ),
        ("/v1/screen", {"userId": "u1", "name": "Cart"}, "screen", "Cart"),
        ("/v1/group", {"userId": "u1", "groupId": "acme", "traits": {"size": 5}}, "group", "acme"),
        ("/v1/alias", {"userId": "u1", "previousId": "a1"}, "alias", ""),
    ],
)
def test_each_call_is_stored(client, basic_auth, path, body, stored_type, stored_name):
    response = post(client, path, body, basic_auth)

    assert response.status_code == 200
    assert response.json() == {"success": True}
    event = Event.objects.get()
    assert (event.type, event.name) == (stored_type, stored_name)
    assert event.api_key.has_scope("ingest")


def test_track_stores_properties_context_and_the_customer(client, basic_auth):
    post(
        client, "/v1/track", track(properties={"sku": "A1"}, context={"ip": "1.2.3.4"}), basic_auth
    )

    event = Event.objects.select_related("customer").get()
    assert event.properties == {"sku": "A1"}
    assert event.context == {"ip": "1.2.3.4"}
    assert event.message_id == "m1"
    assert event.customer.external_id == "u1"
    assert event.handed_over_at is None


def test_bearer_and_body_write_key_are_accepted(client, write_key):
    assert post(client, "/v1/track", track("m1"), f"Bearer {write_key}").status_code == 200
    assert post(client, "/v1/track", track("m2", writeKey=write_key), None).status_code == 200
    assert Event.objects.count() == 2


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "Basic " + base64.b64encode(b"jl_nothere_secret:").decode(),
        "Basic not-base64!",
        "Bearer ",
        "Token abc",
    ],
)
def test_unknown_or_missing_key_is_refused_and_nothing_stored(client, db, auth):
    response = post(client, "/v1/track", track(), auth)

    assert response.status_code == 401
    assert response.json()["success"] is False
    assert response["WWW-Authenticate"].startswith("Basic")
    assert Event.objects.count() == 0
    assert Customer.objects.count() == 0


def test_revoked_key_is_refused(client, db):
    api_key, raw = api_key_create(name="old", scopes=["ingest"])
    auth = "Basic " + base64.b64encode(f"{raw}:".encode()).decode()
    assert post(client, "/v1/track", track("m1"), auth).status_code == 200

    api_key_revoke(api_key=api_key)

    assert post(client, "/v1/track", track("m2"), auth).status_code == 401
    assert Event.objects.count() == 1


def test_a_key_without_the_ingest_scope_is_refused(client, read_key):
    response = post(client, "/v1/track", track(), f"Bearer {read_key}")
    assert response.status_code == 401
    assert Event.objects.count() == 0


def test_gzip_bodies_are_accepted(client, basic_auth):
    body = {"batch": [{"type": "track", **track(f"m{i}")} for i in range(3)]}
    response = post(client, "/v1/batch", body, basic_auth, gzipped=True)
    assert response.status_code == 200
    assert Event.objects.count() == 3


def test_a_body_that_is_not_gzip_says_so(client, basic_auth):
    response = post(client, "/v1/track", b"not gzip", basic_auth, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Content-Encoding"


def test_malformed_json_is_a_400_naming_the_body(client, basic_auth):
    response = post(client, "/v1/track", b'{"userId": "u1",', basic_auth)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body"
    assert "not valid JSON" in response.json()["error"]


def test_wrong_content_type_is_refused(client, basic_auth):
    response = post(
        client,
        "/v1/track",
        b"userId=u1",
        basic_auth,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Content-Type"
    assert Event.objects.count() == 0


def test_text_plain_is_accepted_as_analytics_js_beacons_send_it(client, basic_auth):
    response = post(client, "/v1/track", track(), basic_auth, content_type="text/plain")
    assert response.status_code == 200


def test_a_message_over_32_kb_is_refused(client, basic_auth):
    response = post(client, "/v1/track", track(properties={"blob": "x" * 33_000}), basic_auth)
    assert response.status_code == 400
    assert "32 KB" in response.json()["error"]
    assert Event.objects.count() == 0


def test_a_batch_over_500_kb_is_refused_even_gzipped(client, basic_auth):
    body = {
        "batch": [
            {"type": "track", **track(f"m{i}", properties={"blob": "x" * 20_000})}
            for i in range(30)
        ]
    }
    response = post(client, "/v1/batch", body, basic_auth, gzipped=True)
    assert response.status_code == 400
    assert "500 KB" in response.json()["error"]
    assert Event.objects.count() == 0


def test_one_message_over_32_kb_in_a_batch_is_named_by_index(client, basic_auth):
    body = {
        "batch": [
            {"type": "track", **track("m0")},
            {"type": "track", **track("m1", properties={"blob": "x" * 33_000})},
        ]
    }
    response = post(client, "/v1/batch", body, basic_auth)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": 1, "field": "", "reason": "is larger than 32 KB"}
    ]
    assert Event.objects.count() == 0


def test_a_repeated_message_id_is_accepted_and_stored_once(client, basic_auth):
    first = post(client, "/v1/track", track("same"), basic_auth)
    second = post(client, "/v1/track", track("same", properties={"changed": True}), basic_auth)

    assert (first.status_code, second.status_code) == (200, 200)
    assert Event.objects.get().properties == {}


def test_a_repeated_message_id_within_one_batch_is_stored_once(client, basic_auth):
    body = {"batch": [{"type": "track", **track("same")}, {"type": "track", **track("same")}]}
    assert post(client, "/v1/batch", body, basic_auth).status_code == 200
    assert Event.objects.count() == 1


def test_a_batch_with_one_invalid_message_stores_none_and_says_which(client, basic_auth):
    body = {
        "batch": [
            {"type": "identify", "userId": "new-user", "traits": {"email": "a@example.com"}},
            {"type": "track", "userId": "u1"},
            {"type": "track", **track("m2")},
        ]
    }
    response = post(client, "/v1/batch", body, basic_auth)

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "index": 1,
            "field": "event",
            "reason": "is required for track and must be a non-empty string",
        }
    ]
    assert response.json()["error"].startswith("message 1: event")
    assert Event.objects.count() == 0
    assert Customer.objects.count() == 0


def test_other_methods_and_preflight(client):
    assert client.get("/v1/track").status_code == 405
    preflight = client.options("/v1/batch")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"


def test_identify_updates_the_profile_newest_wins(client, basic_auth):
    body = {
        "batch": [
            {
                "type": "identify",
                "userId": "u1",
                "timestamp": "2026-01-02T00:00:00Z",
                "traits": {"plan": "pro", "email": "new@example.com"},
                "context": {"timezone": "Europe/Paris", "locale": "fr-FR"},
            },
            {
                "type": "identify",
                "userId": "u1",
                "timestamp": "2026-01-01T00:00:00Z",
                "traits": {"plan": "free", "city": "Lyon", "email": "old@example.com"},
            },
        ]
    }
    post(client, "/v1/batch", body, basic_auth)

    customer = Customer.objects.get()
    assert customer.traits == {"plan": "pro", "city": "Lyon", "email": "new@example.com"}
    assert customer.email == "new@example.com"
    assert (customer.timezone, customer.locale) == ("Europe/Paris", "fr-FR")
    assert customer.first_seen.isoformat().startswith("2026-01-01")
    assert customer.last_seen.isoformat().startswith("2026-01-02")


def test_a_repeated_identify_does_not_apply_its_traits_again(client, basic_auth):
    post(
        client,
        "/v1/identify",
        {"userId": "u1", "messageId": "i1", "traits": {"plan": "free"}},
        basic_auth,
    )
    post(
        client,
        "/v1/identify",
        {"userId": "u1", "messageId": "i2", "traits": {"plan": "pro"}},
        basic_auth,
    )
    post(
        client,
        "/v1/identify",
        {"userId": "u1", "messageId": "i1", "traits": {"plan": "free"}},
        basic_auth,
    )
    assert Customer.objects.get().traits == {"plan": "pro"}


def test_push_tokens_in_context_register_a_device(client, basic_auth):
    context = {"device": {"token": "fcm-token-1", "type": "android"}}
    post(client, "/v1/track", track(context=context), basic_auth)
    device = Device.objects.get()
    assert (device.token, device.platform, device.customer.external_id) == (
        "fcm-token-1",
        "android",
        "u1",
    )


def test_answers_are_json_with_cors(client, basic_auth):
    response = post(client, "/v1/track", track(), basic_auth)
    assert response["Content-Type"] == "application/json"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert orjson.loads(response.content) == {"success": True}


def test_keys_are_stored_as_hashes(db):
    _, raw = api_key_create(name="k", scopes=["ingest"])
    stored = ApiKey.objects.get()
    assert raw not in (stored.secret_hash, stored.prefix)
    assert raw.split("_")[1] == stored.prefix


def test_a_nul_character_is_refused_rather_than_failing_in_the_database(client, basic_auth):
    response = post(
        client,
        "/v1/track",
        b'{"userId":"u1","event":"E","properties":{"x":"a\\u0000b"}}',
        basic_auth,
    )
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]
    assert Event.objects.count() == 0


def test_analytics_js_short_paths_with_the_write_key_in_a_text_plain_body(client, write_key):
    body = {"userId": "u1", "event": "Product Viewed", "writeKey": write_key}
    response = post(client, "/v1/t", body, None, content_type="text/plain")
    batch = {
        "batch": [{"type": "page", "anonymousId": "a1", "name": "Home"}],
        "writeKey": write_key,
    }
    batched = post(client, "/v1/b", batch, None, content_type="text/plain")
    assert (response.status_code, batched.status_code) == (200, 200)
    assert sorted(Event.objects.values_list("type", flat=True)) == ["page", "track"]


def test_activity_of_a_known_customer_takes_two_queries_and_moves_last_seen(
    client, basic_auth, django_assert_num_queries
):
    post(
        client,
        "/v1/identify",
        {"userId": "u1", "anonymousId": "a1", "timestamp": "2026-01-01T00:00:00Z"},
        basic_auth,
    )
    body = {
        "batch": [
            {
                "type": "track",
                "userId": "u1",
                "anonymousId": "a1",
                "event": "E",
                "timestamp": "2026-03-01T00:00:00Z",
            },
            {
                "type": "page",
                "anonymousId": "a1",
                "name": "Home",
                "timestamp": "2026-02-01T00:00:00Z",
            },
        ]
    }

    with django_assert_num_queries(2):  # who they are; then events and seen times at once
        post(client, "/v1/batch", body, basic_auth)

    customer = Customer.objects.get()
    assert customer.last_seen.isoformat().startswith("2026-03-01")
    assert customer.first_seen.isoformat().startswith("2026-01-01")
    assert customer.events.count() == 3
