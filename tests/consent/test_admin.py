import datetime as dt
import json
import re

import pytest
from django.contrib.auth.models import Permission, User

from consent.models import ConsentEvent, PrivacyRequest, Suppression, Topic
from consent.services.ledger import consent_record
from consent.services.privacy import customer_erase
from customers.models import Customer
from tests.consent.factories import CustomerFactory, TopicFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def granted():
    TopicFactory(key="news", name="Newsletter", channels=["email"])
    customer = CustomerFactory(external_id="c-1", email="c1@example.com")
    consent_record(
        customer_id=customer.pk,
        channel="email",
        topic_key="news",
        action="grant",
        source="api",
        occurred_at=dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC),
    )
    return customer


def test_a_marketer_adds_a_topic_with_channel_checkboxes(admin_client):
    response = admin_client.post(
        "/admin/consent/topic/add/",
        {
            "key": "weekly",
            "name": "Weekly digest",
            "description": "Every Friday",
            "channels": ["email", "push"],
            "default": "opt_in",
            "double_opt_in": "on",
        },
    )

    assert response.status_code == 302
    topic = Topic.objects.get(key="weekly")
    assert (topic.channels, topic.double_opt_in) == (["email", "push"], True)


def test_a_double_opt_in_topic_cannot_be_opt_out(admin_client):
    response = admin_client.post(
        "/admin/consent/topic/add/",
        {
            "key": "x",
            "name": "X",
            "channels": ["email"],
            "default": "opt_out",
            "double_opt_in": "on",
        },
    )

    assert response.status_code == 200
    assert "must be opt-in by default" in response.content.decode()
    assert not Topic.objects.filter(key="x").exists()


def test_the_ledger_is_read_only_and_filterable(admin_client, granted):
    event = ConsentEvent.objects.get()

    listed = admin_client.get("/admin/consent/consentevent/", {"channel": "email", "source": "api"})
    shown = admin_client.get(f"/admin/consent/consentevent/{event.pk}/change/")
    added = admin_client.get("/admin/consent/consentevent/add/")
    changed = admin_client.post(
        f"/admin/consent/consentevent/{event.pk}/change/", {"action": "withdraw"}
    )
    deleted = admin_client.post(f"/admin/consent/consentevent/{event.pk}/delete/", {"post": "yes"})

    assert listed.status_code == 200
    assert "c-1" in listed.content.decode()
    assert shown.status_code == 200
    assert added.status_code == 403
    assert changed.status_code == 403
    assert deleted.status_code == 403
    assert ConsentEvent.objects.get().action == "grant"


def test_a_suppression_is_added_through_the_service_and_found_by_address(admin_client, granted):
    response = admin_client.post(
        "/admin/consent/suppression/add/",
        {
            "kind": "email",
            "address": " C1@Example.com ",
            "reason": "manual",
            "note": "asked by phone",
        },
    )
    bad = admin_client.post(
        "/admin/consent/suppression/add/",
        {"kind": "phone", "address": "call me", "reason": "manual"},
    )

    assert response.status_code == 302
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.created_by) == ("c1@example.com", "admin")
    assert bad.status_code == 200
    assert "E.164" in bad.content.decode()
    assert Suppression.objects.count() == 1


def test_erased_addresses_are_found_by_typing_the_address(admin_client, granted):
    customer_erase(customer_id=granted.pk, requested_by="dpo", channel="command")

    response = admin_client.get("/admin/consent/suppression/", {"q": "c1@example.com"})

    assert "(erased: kept as a hash)" in response.content.decode()


def test_the_customer_page_shows_the_consent_state(admin_client, granted):
    response = admin_client.get(f"/admin/customers/customer/{granted.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "consent (current state, from the ledger)" in page.lower()
    assert "Newsletter" in page
    history = re.search(r'href="(/admin/consent/consentevent/\?[^"]+)">every change on email', page)
    ledger = admin_client.get(history[1].replace("&amp;", "&"))
    assert ledger.status_code == 200
    assert "1 consent ledger row" in ledger.content.decode()


def test_why_would_a_message_be_allowed_or_refused(admin_client, granted):
    refused = admin_client.get(
        "/admin/consent/consentevent/check/", {"customer": "c-1", "channel": "sms", "topic": "news"}
    )
    unknown = admin_client.get(
        "/admin/consent/consentevent/check/",
        {"customer": "nobody", "channel": "email", "topic": "news"},
    )

    assert refused.status_code == 200
    assert "topic news is not sent on sms" in refused.content.decode()
    assert "No customer with this id." in unknown.content.decode()


def test_a_privacy_officer_exports_and_erases_from_the_admin(admin_client, granted):
    exported = admin_client.post("/admin/consent/privacyrequest/export/", {"customer": "c-1"})
    assert exported.status_code == 200
    assert exported["Content-Disposition"].startswith("attachment;")
    assert json.loads(exported.content)["customer"]["email"] == "c1@example.com"

    unconfirmed = admin_client.post(
        "/admin/consent/privacyrequest/erase/", {"customer": "c-1", "confirm": "yes"}
    )
    assert "Type ERASE" in unconfirmed.content.decode()
    assert Customer.objects.get(pk=granted.pk).email == "c1@example.com"

    erased = admin_client.post(
        "/admin/consent/privacyrequest/erase/", {"customer": "c-1", "confirm": "ERASE"}, follow=True
    )
    assert "Erased customer" in erased.content.decode()
    assert Customer.objects.get(pk=granted.pk).email == ""
    assert list(
        PrivacyRequest.objects.order_by("pk").values_list("kind", "requested_by", "channel")
    ) == [
        ("export", "admin", "admin"),
        ("erasure", "admin", "admin"),
    ]


def test_erasure_needs_its_own_permission(client, granted):
    marketer = User.objects.create_user("marketer", password="pw-123456", is_staff=True)
    marketer.user_permissions.add(
        Permission.objects.get(codename="view_privacyrequest"),
        Permission.objects.get(codename="export_customer"),
    )
    client.force_login(marketer)

    response = client.post(
        "/admin/consent/privacyrequest/erase/", {"customer": "c-1", "confirm": "ERASE"}
    )

    assert response.status_code == 403
    assert Customer.objects.get(pk=granted.pk).email == "c1@example.com"
    assert PrivacyRequest.objects.count() == 0
