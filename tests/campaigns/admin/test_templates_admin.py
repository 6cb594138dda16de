import datetime as dt
import urllib.parse

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail

from campaigns.channels import backends_reset
from campaigns.models import MessageTemplate, TemplateContent, TemplateVersion
from consent.channels import Channel
from tests.campaigns.factories import (
    CustomerFactory,
    MessageTemplateFactory,
    TemplateContentFactory,
    TemplateVersionFactory,
)
from tests.campaigns.servers import FakeProvider

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
ADD_VERSION = "/admin/campaigns/templateversion/add/"


@pytest.fixture(autouse=True)
def _fresh_backends():
    backends_reset()
    yield
    backends_reset()


def version_form(template, **content):
    data = {
        "template": str(template.pk),
        "note": "first",
        "contents-TOTAL_FORMS": "1",
        "contents-INITIAL_FORMS": "0",
        "contents-MIN_NUM_FORMS": "1",
        "contents-MAX_NUM_FORMS": "1000",
        "contents-0-locale": "en",
    }
    data.update({f"contents-0-{name}": value for name, value in content.items()})
    return data


def test_create_a_template_then_its_first_version(admin_client, admin_user):
    # given a new email template made in the admin
    response = admin_client.post(
        "/admin/campaigns/messagetemplate/add/",
        {
            "name": "Welcome",
            "channel": "email",
            "description": "",
            "default_locale": "en",
            "sample_context": "{}",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
            "versions-MIN_NUM_FORMS": "0",
            "versions-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302
    template = MessageTemplate.objects.get(name="Welcome")
    # when a version is written for it
    page = admin_client.get(f"{ADD_VERSION}?template={template.pk}")
    assert page.status_code == 200
    assert b"contents-0-subject" in page.content
    assert b"contents-0-title" not in page.content  # only the email fields are shown
    assert page.context["inline_admin_formsets"][0].formset.forms[0]["locale"].value() == "en"
    response = admin_client.post(
        ADD_VERSION,
        version_form(
            template,
            subject="Welcome {{ customer.first_name }}",
            preheader="",
            html="<p>Hello {{ customer.first_name }}</p>",
            text="",
            layout="base",
        ),
    )
    # then it is stored as draft v1 by that user
    assert response.status_code == 302
    version = TemplateVersion.objects.get(template=template)
    assert (version.number, version.created_by, version.published_at) == (
        1,
        admin_user.username,
        None,
    )
    assert (
        TemplateContent.objects.get(version=version).subject == "Welcome {{ customer.first_name }}"
    )


def test_an_unknown_variable_is_a_form_error_with_its_line(admin_client):
    template = MessageTemplateFactory()
    response = admin_client.post(
        ADD_VERSION,
        version_form(
            template,
            subject="Hi",
            html="<p>Hi</p>\n<p>{{ customer.traits.plan }}</p>",
            layout="base",
        ),
    )
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.forms[0].errors
    assert errors == {
        "html": [
            "Line 2: 'dict object' has no attribute 'plan' — use |default(…) if it is optional,"
            " or add it to the template's sample data."
        ]
    }
    assert TemplateVersion.objects.count() == 0
    assert TemplateContent.objects.count() == 0


def test_a_syntax_error_is_a_form_error_with_its_line(admin_client):
    template = MessageTemplateFactory()
    response = admin_client.post(
        ADD_VERSION,
        version_form(template, subject="Hi {{ customer.first_name ", html="<p>x</p>", layout=""),
    )
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.forms[0].errors
    assert list(errors) == ["subject"]
    assert errors["subject"][0].startswith("Line 1: ")
    assert TemplateVersion.objects.count() == 0


def test_a_sandbox_violation_is_a_form_error(admin_client):
    template = MessageTemplateFactory(channel=Channel.SMS)
    response = admin_client.post(
        ADD_VERSION, version_form(template, body="{{ ''.__class__.__mro__ }}")
    )
    errors = response.context["inline_admin_formsets"][0].formset.forms[0].errors
    assert errors["body"][0].startswith("Line 1: not allowed:")
    assert TemplateVersion.objects.count() == 0


def test_push_data_is_typed_as_lines(admin_client):
    template = MessageTemplateFactory(channel=Channel.PUSH)
    response = admin_client.post(
        ADD_VERSION,
        version_form(
            template,
            title="Hi",
            body="Cart",
            image_url="",
            deep_link="",
            data="cart: {{ customer.id }}\nkind: reminder",
        ),
    )
    assert response.status_code == 302
    assert TemplateContent.objects.get().data == {"cart": "{{ customer.id }}", "kind": "reminder"}


def test_a_published_version_cannot_be_edited(admin_client):
    content = TemplateContentFactory(subject="Frozen")
    version = content.version
    version.published_at = NOW
    version.save()
    url = f"/admin/campaigns/templateversion/{version.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    response = admin_client.post(url, {"note": "sneaky", "contents-0-subject": "Changed"})
    assert response.status_code == 403
    assert TemplateContent.objects.get().subject == "Frozen"


def test_publish_then_copy_into_a_new_draft(admin_client, admin_user):
    content = TemplateContentFactory()
    version = content.version
    response = admin_client.post(f"/admin/campaigns/templateversion/{version.pk}/publish/")
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.published_by == admin_user.username
    response = admin_client.post(f"/admin/campaigns/templateversion/{version.pk}/copy/")
    draft = TemplateVersion.objects.exclude(pk=version.pk).get()
    assert response["Location"] == f"/admin/campaigns/templateversion/{draft.pk}/change/"
    assert draft.number == version.number + 1
    assert draft.published_at is None
    assert draft.contents.count() == 1


def test_publish_needs_the_permission(client):
    user = User.objects.create_user("marketer", password=None, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_templateversion"]))
    client.force_login(user)
    version = TemplateContentFactory().version
    assert client.post(f"/admin/campaigns/templateversion/{version.pk}/publish/").status_code == 403
    version.refresh_from_db()
    assert version.published_at is None


# Preview ----------------------------------------------------------------------------


def preview_url(version, **params):
    query = "?" + urllib.parse.urlencode(params) if params else ""
    return f"/admin/campaigns/templateversion/{version.pk}/preview/{query}"


def test_email_preview_for_a_chosen_customer(admin_client):
    customer = CustomerFactory(email="zoe@example.com", traits={"first_name": "Zoë"})
    version = TemplateContentFactory().version
    page = admin_client.get(preview_url(version, customer="zoe@example.com"))
    assert page.status_code == 200
    assert page.context["rendered"].subject == "Hello Zoë"
    assert page.context["error"] is None
    html = page.content.decode()
    assert 'id="preview-html"' in html
    assert " sandbox " in html
    assert page["X-Frame-Options"] == "DENY"
    # the framed HTML may be framed by the admin itself, and runs no script
    frame = admin_client.get(page.context["html_url"])
    assert frame.status_code == 200
    assert frame["X-Frame-Options"] == "SAMEORIGIN"
    assert frame["Content-Security-Policy"].startswith("sandbox;")
    assert "<p>Hi Zoë</p>" in frame.content.decode()
    assert page.context["rendered"].text.startswith("Hi Zoë")
    assert customer.pk


def test_preview_without_a_customer_uses_the_sample(admin_client):
    version = TemplateContentFactory().version
    page = admin_client.get(preview_url(version))
    assert page.context["rendered"].subject == "Hello Ada"


def test_preview_for_an_unknown_customer_is_a_form_error(admin_client):
    version = TemplateContentFactory().version
    page = admin_client.get(preview_url(version, customer="nobody@example.com"))
    assert page.context["preview_form"].errors == {
        "customer": ["No customer with the id, user id or email “nobody@example.com”."]
    }
    assert page.context["rendered"] is None


def test_preview_shows_a_template_error_with_its_line(admin_client):
    CustomerFactory(external_id="u-1", traits={})
    version = TemplateContentFactory(
        subject="Hi", html="<p>\n{{ customer.first_name }}</p>"
    ).version
    page = admin_client.get(preview_url(version, customer="u-1"))
    assert page.context["error"].line == 2
    assert page.context["error"].field == "html"
    assert "This template cannot be rendered" in page.content.decode()


def test_sms_preview_counts_segments(admin_client):
    template = MessageTemplateFactory(channel=Channel.SMS)
    version = TemplateVersionFactory(template=template)
    TemplateContentFactory(
        version=version, body="Hi {{ customer.first_name }} 🎉 " + "x" * 70, html="", subject=""
    )
    page = admin_client.get(preview_url(version))
    info = page.context["sms"]
    assert (info.encoding, info.segments, info.per_segment) == ("UCS-2", 2, 67)
    assert "2 segments" in page.content.decode()


def test_push_preview_shows_payload_sizes(admin_client):
    template = MessageTemplateFactory(channel=Channel.PUSH)
    version = TemplateVersionFactory(template=template)
    TemplateContentFactory(version=version, title="Hi", body="x" * 5000, subject="", html="")
    page = admin_client.get(preview_url(version))
    rows = {row["provider"]: row for row in page.context["push_sizes"]}
    assert rows["FCM"]["limit"] == 4096
    assert rows["FCM"]["over"] is True
    assert "too large" in page.content.decode()


# Test send --------------------------------------------------------------------------


def test_test_send_email(admin_client):
    CustomerFactory(external_id="u-2", traits={"first_name": "Zoë"})
    version = TemplateContentFactory().version
    response = admin_client.post(
        preview_url(version, customer="u-2"),
        {"customer": "u-2", "locale": "", "address": "qa@example.com"},
    )
    assert response.status_code == 302
    [sent] = mail.outbox
    assert sent.to == ["qa@example.com"]
    assert sent.subject == "[Test] Hello Zoë"
    assert sent.extra_headers["Message-ID"].startswith(f"<test-{version.pk}-")


def test_test_send_sms_through_twilio(admin_client, settings):
    provider = FakeProvider().start()
    try:
        provider.respond(201, json_body={"sid": "SM-test"})
        settings.JOURNEYLINE_CHANNEL_BACKENDS = {
            "sms": {
                "BACKEND": "twilio",
                "OPTIONS": {
                    "account_sid": "AC1",
                    "auth_token": "t",
                    "from_number": "+15550000",
                    "base_url": provider.url,
                },
            }
        }
        template = MessageTemplateFactory(channel=Channel.SMS)
        version = TemplateVersionFactory(template=template)
        TemplateContentFactory(
            version=version, body="Code {{ customer.first_name }}", subject="", html=""
        )
        response = admin_client.post(
            preview_url(version), {"address": "+447700900123"}, follow=True
        )
        assert "Test message sent (provider id SM-test)." in response.content.decode()
        [request] = provider.requests
        assert b"Body=Code+Ada" in request.body
    finally:
        provider.stop()


def test_a_provider_refusal_is_shown(admin_client, settings):
    provider = FakeProvider().start()
    try:
        provider.respond(400, json_body={"code": 21211, "message": "Invalid"})
        settings.JOURNEYLINE_CHANNEL_BACKENDS = {
            "sms": {
                "BACKEND": "twilio",
                "OPTIONS": {
                    "account_sid": "AC1",
                    "auth_token": "t",
                    "from_number": "+1555000",
                    "base_url": provider.url,
                },
            }
        }
        template = MessageTemplateFactory(channel=Channel.SMS)
        version = TemplateVersionFactory(template=template)
        TemplateContentFactory(version=version, body="Code", subject="", html="")
        response = admin_client.post(preview_url(version), {"address": "+15550001234"}, follow=True)
        assert (
            "Not sent: Twilio error 21211: invalid &#x27;To&#x27; phone number"
            in response.content.decode()
        )
    finally:
        provider.stop()


def test_a_bad_address_is_a_form_error_and_sends_nothing(admin_client):
    version = TemplateContentFactory().version
    response = admin_client.post(preview_url(version), {"address": "not-an-email"})
    assert response.status_code == 200
    assert response.context["send_form"].errors == {"address": ["Enter a valid email address."]}
    assert mail.outbox == []


def test_test_send_needs_the_permission(client):
    user = User.objects.create_user("viewer", password=None, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename="view_templateversion"))
    client.force_login(user)
    version = TemplateContentFactory().version
    assert client.get(preview_url(version)).status_code == 200
    assert client.post(preview_url(version), {"address": "qa@example.com"}).status_code == 403
    assert mail.outbox == []
