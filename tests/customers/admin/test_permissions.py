"""The admin's permissions are real: staff see and do only what their permissions allow."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from customers.models import ApiKey
from customers.services.api_keys import api_key_authenticate, api_key_create
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer_client(client):
    """A staff user who may look at customers and events, nothing more."""
    user = get_user_model().objects.create_user("marketer", password=None, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="customers", codename__in=["view_customer", "view_event"]
        )
    )
    client.force_login(user)
    return client


@pytest.fixture
def key_viewer_client(client):
    user = get_user_model().objects.create_user("auditor", password=None, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="customers", codename="view_apikey")
    )
    client.force_login(user)
    return client


def test_a_marketer_sees_customers_but_not_api_keys(marketer_client):
    # given
    customer = CustomerFactory()
    # when
    customers = marketer_client.get(reverse("admin:customers_customer_changelist"))
    profile = marketer_client.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    keys = marketer_client.get(reverse("admin:customers_apikey_changelist"))
    add_key = marketer_client.post(
        reverse("admin:customers_apikey_add"), {"name": "Sneaky", "scopes": ["admin"]}
    )
    # then
    assert customers.status_code == 200
    assert profile.status_code == 200
    assert keys.status_code == 403
    assert add_key.status_code == 403
    assert ApiKey.objects.count() == 0


def test_viewing_keys_does_not_allow_revoking_them(key_viewer_client):
    # given
    api_key, raw_key = api_key_create(name="Website", scopes=["ingest"])
    change_url = reverse("admin:customers_apikey_change", args=[api_key.pk])
    revoke_url = reverse("admin:customers_apikey_revoke", args=[api_key.pk])
    # when
    page = key_viewer_client.get(change_url)
    button = key_viewer_client.post(revoke_url)
    action = key_viewer_client.post(
        reverse("admin:customers_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    # then
    assert page.status_code == 200
    assert revoke_url not in page.content.decode()
    assert button.status_code == 403
    assert action.status_code == 200
    assert 'value="revoke"' not in action.content.decode()  # not offered at all
    assert api_key_authenticate(raw_key) == api_key
