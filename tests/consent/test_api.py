import json

import pytest

from consent.models import ConsentEvent
from consent.services.ledger import consent_record
from tests.consent.factories import CustomerFactory, TopicFactory

pytestmark = pytest.mark.django_db


def call(client, method, path, key, body=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    if method == "get":
        return client.get(path, **headers)
    return getattr(client, method)(
        path, json.dumps(body), content_type="application/json", **headers
    )


@pytest.fixture
def customer():
    TopicFactory(key="news", name="Newsletter", channels=["email"], default="opt_out")
    TopicFactory(key="deals", name="Deals", channels=["email", "sms"])
    return CustomerFactory(external_id="u-42")


def test_get_shows_every_topic_per_channel_with_its_status(client, read_key, customer):
    consent_record(
        customer_id=customer.pk, channel="sms", topic_key="deals", action="grant", source="api"
    )

    response = call(client, "get", "/api/v1/customers/u-42/consent/", read_key)

    assert response.status_code == 200
    body = response.json()
    assert body["customer"] == "u-42"
    statuses = {
        (channel["channel"], topic["topic"]): topic["status"]
        for channel in body["channels"]
        for topic in channel["topics"]
    }
    assert statuses == {
        ("email", "deals"): "no_consent",
        ("email", "news"): "granted",
        ("sms", "deals"): "granted",
    }


def test_put_records_only_the_changes_with_the_evidence(client, write_api_key, customer):
    body = {
        "consents": [
            {"channel": "email", "topic": "news", "status": "granted"},  # already, by default
            {"channel": "email", "topic": "deals", "status": "granted"},
            {"channel": "sms", "topic": None, "status": "withdrawn"},
        ],
        "evidence": {"ip": "203.0.113.5", "wording_version": "signup-v2"},
    }

    response = call(client, "put", "/api/v1/customers/u-42/consent/", write_api_key, body)

    assert response.status_code == 200, response.json()
    rows = list(
        ConsentEvent.objects.order_by("pk").values_list(
            "channel", "topic__key", "action", "source", "evidence"
        )
    )
    evidence = {"ip": "203.0.113.5", "wording_version": "signup-v2"}
    assert rows == [
        ("email", "deals", "grant", "api", evidence),
        ("sms", None, "withdraw", "api", evidence),
    ]
    assert ConsentEvent.objects.first().actor.startswith("API key ")
    sms = next(c for c in response.json()["channels"] if c["channel"] == "sms")
    assert sms["all_topics_withdrawn"] is True


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"consents": []}, {"consents": {"non_field_errors": ["This list may not be empty."]}}),
        (
            {"consents": [{"channel": "fax", "topic": "news", "status": "granted"}]},
            {"consents": {"0": {"channel": ['"fax" is not a valid choice.']}}},
        ),
        (
            {
                "consents": [
                    {"channel": "email", "topic": "deals", "status": "granted"},
                    {"channel": "sms", "topic": "news", "status": "granted"},
                ]
            },
            {"consents": {"1": {"topic": ["topic 'news' is not sent on sms"]}}},
        ),
        (
            {
                "consents": [{"channel": "email", "topic": "deals", "status": "granted"}],
                "evidence": {"cookie": "x"},
            },
            {"evidence": ["unknown key cookie; use ip, user_agent, wording_version, page, note"]},
        ),
    ],
)
def test_put_refuses_bad_input_with_the_field_and_writes_nothing(
    client, write_api_key, customer, body, error
):
    response = call(client, "put", "/api/v1/customers/u-42/consent/", write_api_key, body)

    assert response.status_code == 400
    assert response.json() == error
    assert ConsentEvent.objects.count() == 0


def test_the_ledger_is_listed_newest_first_and_appended_to(client, write_api_key, customer):
    path = "/api/v1/customers/u-42/consent/events/"
    created = call(
        client,
        "post",
        path,
        write_api_key,
        {
            "channel": "email",
            "topic": "deals",
            "action": "grant",
            "source": "import",
            "occurred_at": "2025-06-01T10:00:00Z",
            "evidence": {"page": "https://shop.example.com/signup"},
        },
    )
    assert created.status_code == 201, created.json()
    call(
        client,
        "post",
        path,
        write_api_key,
        {"channel": "email", "topic": None, "action": "withdraw"},
    )

    listed = call(client, "get", path, write_api_key)

    assert listed.status_code == 200
    results = listed.json()["results"]
    assert [(r["topic"], r["action"], r["source"]) for r in results] == [
        (None, "withdraw", "api"),
        ("deals", "grant", "import"),
    ]
    assert results[1]["occurred_at"] == "2025-06-01T10:00:00Z"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "email", "topic": "deals", "action": "pending"}, "action"),
        (
            {"channel": "email", "topic": "deals", "action": "grant", "source": "double_opt_in"},
            "source",
        ),
        ({"channel": "email", "topic": "nope", "action": "grant"}, "topic"),
        (
            {
                "channel": "email",
                "topic": "deals",
                "action": "grant",
                "occurred_at": "2999-01-01T00:00:00Z",
            },
            "occurred_at",
        ),
        ({"topic": "deals", "action": "grant"}, "channel"),
    ],
)
def test_a_bad_ledger_row_is_refused_with_the_field(client, write_api_key, customer, body, field):
    response = call(client, "post", "/api/v1/customers/u-42/consent/events/", write_api_key, body)

    assert response.status_code == 400
    assert field in response.json()
    assert ConsentEvent.objects.count() == 0


def test_unknown_customers_scopes_and_missing_keys(client, read_key, write_api_key, customer):
    assert call(client, "get", "/api/v1/customers/nobody/consent/", read_key).status_code == 404
    put = call(
        client,
        "put",
        "/api/v1/customers/u-42/consent/",
        read_key,
        {"consents": [{"channel": "email", "topic": "deals", "status": "granted"}]},
    )
    assert put.status_code == 403
    assert client.get("/api/v1/customers/u-42/consent/").status_code == 401
    assert ConsentEvent.objects.count() == 0
