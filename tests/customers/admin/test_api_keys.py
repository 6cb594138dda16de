"""The API keys admin: created through the service, the secret shown once, revoked."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from customers.models import ApiKey
from customers.services.api_keys import api_key_authenticate, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:customers_apikey_changelist")
ADD = reverse("admin:customers_apikey_add")


def shown_secret(html: str) -> str | None:
    match = re.search(r'value="(jl_[^"]+)"', html)
    return match.group(1) if match else None


def test_add_form_offers_name_and_scope_checkboxes(admin_client):
    # when
    response = admin_client.get(ADD)
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="name"' in html
    for scope in ("ingest", "read", "write", "admin"):
        assert f'type="checkbox" name="scopes" value="{scope}"' in html
    assert "secret_hash" not in html


def created_url(api_key: ApiKey) -> str:
    return reverse("admin:customers_apikey_created", args=[api_key.pk])


def test_creating_a_key_redirects_to_the_secret_shown_once(admin_client, admin_user):
    # when
    posted = admin_client.post(ADD, {"name": "Website", "scopes": ["ingest", "read"]})
    # then the POST is answered with a redirect (a refresh cannot post it again)
    api_key = ApiKey.objects.get()
    assert posted.status_code == 302
    assert posted["Location"] == created_url(api_key)
    assert shown_secret(posted.content.decode()) is None
    # and the page it leads to holds a working secret
    response = admin_client.get(posted["Location"])
    assert response.status_code == 200
    raw_key = shown_secret(response.content.decode())
    assert raw_key is not None
    assert api_key.name == "Website"
    assert api_key.scopes == ["ingest", "read"]
    assert api_key.created_by == admin_user.username
    assert api_key_authenticate(raw_key) == api_key
    assert "no-store" in response["Cache-Control"]
    assert LogEntry.objects.filter(object_id=str(api_key.pk)).count() == 1
    # and the session keeps nothing of it
    assert raw_key not in str(dict(admin_client.session))
    # and no later page shows it, nor its hash
    for url in (CHANGELIST, reverse("admin:customers_apikey_change", args=[api_key.pk])):
        html = admin_client.get(url).content.decode()
        assert raw_key not in html
        assert api_key.secret_hash not in html
        assert api_key.prefix in html


def test_refreshing_the_created_page_creates_nothing_and_hides_the_secret(admin_client):
    # given a key created and its secret seen
    posted = admin_client.post(ADD, {"name": "Website", "scopes": ["ingest"]})
    first = admin_client.get(posted["Location"])
    raw_key = shown_secret(first.content.decode())
    assert raw_key is not None
    # when the page is refreshed
    refreshed = admin_client.get(posted["Location"], follow=True)
    # then no key is added, and the secret is not shown again: the key's page says why
    api_key = ApiKey.objects.get()
    assert ApiKey.objects.count() == 1
    assert refreshed.redirect_chain == [
        (reverse("admin:customers_apikey_change", args=[api_key.pk]), 302)
    ]
    html = refreshed.content.decode()
    assert raw_key not in html
    assert shown_secret(html) is None
    assert [str(message) for message in refreshed.context["messages"]] == [
        "A key's secret is shown only once, right after it is created, and cannot be "
        "shown again. If it was lost, revoke this key and create a new one."
    ]
    assert LogEntry.objects.count() == 1


def test_two_keys_created_before_either_page_is_seen_each_show_their_own(admin_client):
    # given two tabs that each posted the form
    first = admin_client.post(ADD, {"name": "One", "scopes": ["ingest"]})
    second = admin_client.post(ADD, {"name": "Two", "scopes": ["read"]})
    # when each page is opened
    second_secret = shown_secret(admin_client.get(second["Location"]).content.decode())
    first_secret = shown_secret(admin_client.get(first["Location"]).content.decode())
    # then each holds the secret of its own key
    assert api_key_authenticate(first_secret).name == "One"
    assert api_key_authenticate(second_secret).name == "Two"
    assert ApiKey.objects.count() == 2


def test_the_created_page_needs_the_add_permission(client):
    # given a staff user who may only view keys
    api_key, raw_key = api_key_create(name="Website", scopes=["ingest"])
    viewer = get_user_model().objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_apikey"))
    client.force_login(viewer)
    # when
    response = client.get(created_url(api_key))
    # then
    assert response.status_code == 403
    assert raw_key not in response.content.decode()


def test_a_key_needs_a_scope(admin_client):
    # when
    response = admin_client.post(ADD, {"name": "Nothing", "scopes": []})
    # then
    assert response.status_code == 200
    assert "scopes" in response.context["adminform"].form.errors
    assert ApiKey.objects.count() == 0


def test_changelist_shows_prefix_scopes_and_state(admin_client):
    # given
    api_key, _ = api_key_create(name="Backend", scopes=["read", "write"])
    # when
    response = admin_client.get(CHANGELIST)
    # then
    html = response.content.decode()
    assert api_key.prefix in html
    assert "read, write" in html
    assert 'value="revoke"' in html
    assert api_key.secret_hash not in html


def test_revoke_action_revokes_and_reports(admin_client):
    # given one active key, one already revoked
    active, active_raw = api_key_create(name="Active", scopes=["ingest"])
    revoked, _ = api_key_create(name="Old", scopes=["ingest"])
    first_revoked_at = api_key_revoke(api_key=revoked).revoked_at
    # when
    response = admin_client.post(
        CHANGELIST,
        {"action": "revoke", "_selected_action": [active.pk, revoked.pk]},
        follow=True,
    )
    # then
    messages = [str(message) for message in response.context["messages"]]
    assert messages == [
        f"Revoked 1 API key(s): {active}.",
        f"1 already revoked, left as they were: {revoked}.",
    ]
    active.refresh_from_db()
    revoked.refresh_from_db()
    assert active.revoked_at is not None
    assert revoked.revoked_at == first_revoked_at
    assert api_key_authenticate(active_raw) is None
    assert LogEntry.objects.filter(object_id=str(active.pk), change_message="Revoked.").count() == 1


def test_keys_cannot_be_deleted(admin_client):
    # given
    api_key, _ = api_key_create(name="Keep", scopes=["read"])
    # when
    response = admin_client.post(
        reverse("admin:customers_apikey_delete", args=[api_key.pk]), {"post": "yes"}
    )
    # then
    assert response.status_code == 403
    assert ApiKey.objects.count() == 1


def test_revoke_button_on_the_key_page(admin_client):
    # given
    api_key, raw_key = api_key_create(name="Phone app", scopes=["ingest"])
    change_url = reverse("admin:customers_apikey_change", args=[api_key.pk])
    revoke_url = reverse("admin:customers_apikey_revoke", args=[api_key.pk])
    assert revoke_url in admin_client.get(change_url).content.decode()
    # when
    response = admin_client.post(revoke_url, follow=True)
    # then
    assert response.redirect_chain == [(change_url, 302)]
    assert [str(m) for m in response.context["messages"]] == [f"Revoked 1 API key(s): {api_key}."]
    assert revoke_url not in response.content.decode()
    assert api_key_authenticate(raw_key) is None


def test_revoke_button_needs_a_post(admin_client):
    # given
    api_key, raw_key = api_key_create(name="Phone app", scopes=["ingest"])
    # when
    response = admin_client.get(reverse("admin:customers_apikey_revoke", args=[api_key.pk]))
    # then
    assert response.status_code == 405
    assert api_key_authenticate(raw_key) == api_key
