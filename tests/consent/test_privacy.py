import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from consent.hooks import privacy_erasers, privacy_exporters
from consent.models import ConsentEvent, PrivacyRequest, Suppression
from consent.services.gate import consent_decide
from consent.services.ledger import consent_record
from consent.services.privacy import customer_erase, customer_export, events_purge
from consent.services.sends import consent_record_send
from consent.services.suppression import suppression_add
from consent.tasks import events_purge_task
from customers.models import Customer, Event, Identity
from customers.services.merge import customer_merge
from tests.consent.factories import CustomerFactory, DeviceFactory, TopicFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
EMAIL, PHONE, NAME = "jane.doe@example.org", "+31687654321", "Jane Doe-Privacy"
TOKEN, IP, USER_AGENT = "apns-token-jane-0001", "198.51.100.77", "JaneBrowser/9"


def _event(customer, n, timestamp=NOW):
    return Event.objects.create(
        customer=customer,
        type="track",
        name="Order Completed",
        properties={"email": EMAIL, "shipping_name": NAME},
        context={"ip": IP},
        timestamp=timestamp,
        message_id=f"msg-{customer.pk}-{n}",
    )


@pytest.fixture
def jane():
    TopicFactory(key="news", channels=["email", "sms"])
    customer = CustomerFactory(
        external_id="jane-ext-77",
        email=EMAIL,
        phone=PHONE,
        traits={"name": NAME, "city": "Utrecht"},
    )
    Identity.objects.create(kind="user_id", value="jane-ext-77", customer=customer)
    Identity.objects.create(kind="anonymous_id", value="anon-jane-1", customer=customer)
    DeviceFactory(customer=customer, token=TOKEN)
    _event(customer, 1)
    _event(customer, 2)
    consent_record(
        customer_id=customer.pk,
        channel="email",
        topic_key="news",
        action="grant",
        source="preference_centre",
        evidence={"ip": IP, "user_agent": USER_AGENT, "wording_version": "v7", "page": "x"},
    )
    consent_record_send(customer_id=customer.pk, channel="email", topic_key="news", sent_at=NOW)
    return customer


@pytest.fixture
def messages_app():
    """Another app's part, in place of what campaigns registers, restored afterwards."""
    exporters, erasers = dict(privacy_exporters.items()), dict(privacy_erasers.items())
    privacy_exporters.register("messages", lambda *, customer_id: [{"subject": "Hi"}])
    privacy_erasers.register("messages", lambda *, customer_id: 1)
    yield
    for name, hook in exporters.items():
        privacy_exporters.register(name, hook)
    for name, hook in erasers.items():
        privacy_erasers.register(name, hook)


def test_the_export_holds_everything_and_is_recorded(jane, messages_app):
    suppression_add(kind="phone", address=PHONE, reason="complaint")

    document = customer_export(customer_id=jane.pk, requested_by="dpo@shop", channel="api")

    assert document["customer"]["email"] == EMAIL
    assert document["customer"]["traits"] == {"name": NAME, "city": "Utrecht"}
    assert {i["value"] for i in document["identities"]} == {"jane-ext-77", "anon-jane-1"}
    assert [d["token"] for d in document["devices"]] == [TOKEN]
    assert [e["message_id"] for e in document["events"]] == [
        f"msg-{jane.pk}-1",
        f"msg-{jane.pk}-2",
    ]
    assert [row["action"] for row in document["consent"]["ledger"]] == ["grant"]
    assert document["consent"]["ledger"][0]["evidence"]["ip"] == IP
    assert document["consent"]["state"] == [
        {
            "channel": "email",
            "topic": "news",
            "action": "grant",
            "since": document["consent"]["ledger"][0]["occurred_at"],
        }
    ]
    assert document["consent"]["suppressions"][0]["address"] == PHONE
    assert len(document["consent"]["messages_sent"]) == 1
    assert document["messages"] == [{"subject": "Hi"}]
    json.dumps(document)  # one JSON document
    audit = PrivacyRequest.objects.get()
    assert (audit.kind, audit.customer_id, audit.requested_by, audit.channel) == (
        "export",
        jane.pk,
        "dpo@shop",
        "api",
    )
    assert audit.summary["events"] == 2


def _columns_containing(term: str) -> list[str]:
    """Every text, varchar and json column of every table that contains ``term``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'ARRAY')"
        )
        columns = cursor.fetchall()
        found = []
        for table, column in columns:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s',  # noqa: S608
                [f"%{term}%"],
            )
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    return found


def test_erasure_leaves_no_personal_data_in_any_table_and_keeps_the_ledger(jane, messages_app):
    other = CustomerFactory(
        external_id="merged-away", email=EMAIL, phone="", last_seen=NOW - dt.timedelta(days=365)
    )
    Identity.objects.create(kind="user_id", value="merged-away", customer=other)
    customer_merge(source_id=other.pk, target_id=jane.pk)
    customer_export(customer_id=jane.pk, requested_by="dpo", channel="admin")

    erasure = customer_erase(customer_id=jane.pk, requested_by="dpo@shop", channel="admin")

    for term in [EMAIL, PHONE, NAME, "Utrecht", TOKEN, IP, USER_AGENT, "jane-ext-77", "anon-jane"]:
        assert _columns_containing(term) == [], term
    assert ConsentEvent.objects.filter(customer=jane).count() == 1
    assert ConsentEvent.objects.get(customer=jane).evidence == {"wording_version": "v7"}
    assert Event.objects.filter(customer_id=jane.pk).count() == 0
    assert Suppression.objects.filter(reason="erased", address="").count() == 3
    assert erasure.summary == {
        "already_erased": False,
        "had_external_id": True,
        "addresses_suppressed": 3,
        "identities_deleted": 3,
        "devices_deleted": 1,
        "events_deleted": 2,
        "ledger_rows_stripped": 1,
        "messages_erased": 1,
        "journeys_erased": 0,
    }
    assert consent_decide(customer_id=jane.pk, channel="email", topic_key="news").reason == (
        "erased"
    )
    # A re-import of the same person under a new profile is not messaged.
    again = CustomerFactory(email=EMAIL.upper(), phone=PHONE)
    consent_record(
        customer_id=again.pk, channel="email", topic_key="news", action="grant", source="import"
    )
    decision = consent_decide(customer_id=again.pk, channel="email", topic_key="news", now=NOW)
    assert decision.reason == "suppressed"


def test_erasure_is_idempotent_and_every_run_is_audited(jane):
    customer_erase(customer_id=jane.pk, requested_by="dpo", channel="command")
    profile = Customer.objects.values().get(pk=jane.pk)

    second = customer_erase(customer_id=jane.pk, requested_by="dpo", channel="command")

    assert Customer.objects.values().get(pk=jane.pk) | {"updated_at": None} == profile | {
        "updated_at": None
    }
    assert second.summary["already_erased"] is True
    assert second.summary["events_deleted"] == 0
    assert PrivacyRequest.objects.filter(kind="erasure", customer_id=jane.pk).count() == 2


def test_the_commands_export_and_erase_and_refuse_bad_input(jane, tmp_path):
    output = tmp_path / "jane.json"
    call_command(
        "consent_export", "jane-ext-77", "--by", "dpo", "--output", str(output), stdout=StringIO()
    )
    assert json.loads(output.read_text())["customer"]["email"] == EMAIL

    with pytest.raises(CommandError, match="add --yes"):
        call_command("consent_erase", "jane-ext-77", "--by", "dpo", stdout=StringIO())
    with pytest.raises(CommandError, match="no customer 'nobody'"):
        call_command("consent_erase", "nobody", "--by", "dpo", "--yes", stdout=StringIO())
    assert Customer.objects.get(pk=jane.pk).email == EMAIL

    out = StringIO()
    call_command("consent_erase", "jane-ext-77", "--by", "dpo", "--yes", stdout=out)
    assert out.getvalue().startswith(f"erased customer #{jane.pk}: already_erased False")
    assert Customer.objects.get(pk=jane.pk).email == ""
    call_command("consent_erase", f"#{jane.pk}", "--by", "dpo", "--yes", stdout=StringIO())
    assert list(PrivacyRequest.objects.order_by("pk").values_list("kind", "channel")) == [
        ("export", "command"),
        ("erasure", "command"),
        ("erasure", "command"),
    ]


def test_the_export_api_needs_the_admin_scope(client, admin_key, read_key, jane):
    refused = client.get(
        "/api/v1/customers/jane-ext-77/export/", HTTP_AUTHORIZATION=f"Bearer {read_key}"
    )
    response = client.get(
        "/api/v1/customers/jane-ext-77/export/", HTTP_AUTHORIZATION=f"Bearer {admin_key}"
    )

    assert refused.status_code == 403
    assert response.status_code == 200
    assert response.json()["customer"]["external_id"] == "jane-ext-77"
    assert PrivacyRequest.objects.filter(kind="export", channel="api").count() == 1


def test_retention_purges_only_events_older_than_the_configured_age(settings):
    customer = CustomerFactory()
    old = [_event(customer, n, NOW - dt.timedelta(days=40)) for n in range(3)]
    recent = _event(customer, 9, NOW - dt.timedelta(days=10))

    assert events_purge(now=NOW, older_than_days=30) == 3
    assert list(Event.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not Event.objects.filter(pk__in=[e.pk for e in old]).exists()
    settings.CONSENT_EVENT_RETENTION_DAYS = 0
    assert events_purge_task.delay().get() == 0
    assert Event.objects.count() == 1


def test_the_purge_task_is_on_the_beat_schedule(settings):
    assert settings.CELERY_BEAT_SCHEDULE["consent.events_purge"]["task"] == "consent.events_purge"
