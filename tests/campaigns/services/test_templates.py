import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import TemplateContent, TemplateVersion
from campaigns.rendering import build_context, render
from campaigns.selectors import template_current_version, version_source
from campaigns.services.templates import (
    VersionPublishedError,
    template_version_copy,
    template_version_create,
    template_version_ensure_draft,
    template_version_publish,
)
from tests.campaigns.factories import (
    CustomerFactory,
    MessageTemplateFactory,
    TemplateContentFactory,
)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)


def test_create_numbers_versions_and_stores_every_locale():
    template = MessageTemplateFactory()
    first = template_version_create(
        template=template,
        contents=[
            {"locale": "en", "subject": "Hi {{ customer.first_name }}", "html": "<p>Hi</p>"},
            {"locale": "fr", "subject": "Salut {{ customer.first_name }}", "html": "<p>Salut</p>"},
        ],
        created_by="marketer",
        now=NOW,
    )
    second = template_version_create(
        template=template,
        contents=[{"locale": "en", "subject": "v2", "html": "<p>2</p>"}],
        created_by="m",
        now=NOW,
    )
    assert (first.number, second.number) == (1, 2)
    assert TemplateContent.objects.filter(version=first).count() == 2
    assert first.published_at is None


def test_create_refuses_a_broken_template_and_writes_nothing():
    template = MessageTemplateFactory()
    with pytest.raises(ValidationError) as error:
        template_version_create(
            template=template,
            contents=[
                {"locale": "en", "subject": "ok", "html": "<p>\n{{ customer.traits.plan }}</p>"}
            ],
            created_by="m",
            now=NOW,
        )
    assert error.value.messages == ["html [en], line 2: 'dict object' has no attribute 'plan'"]
    assert TemplateVersion.objects.count() == 0
    assert TemplateContent.objects.count() == 0


def test_sample_context_of_the_template_declares_extra_variables():
    template = MessageTemplateFactory(sample_context={"customer": {"traits": {"plan": "pro"}}})
    version = template_version_create(
        template=template,
        contents=[{"locale": "en", "subject": "{{ customer.plan }}", "html": "<p>x</p>"}],
        created_by="m",
        now=NOW,
    )
    assert version.number == 1


def test_publish_once_then_the_version_is_current_and_frozen():
    content = TemplateContentFactory()
    version = content.version
    assert template_current_version(template_id=version.template_id) is None
    assert template_version_publish(version=version, published_by="boss", now=NOW) is True
    assert template_version_publish(version=version, published_by="boss", now=NOW) is False
    current = template_current_version(template_id=version.template_id)
    assert current == version
    assert current.published_by == "boss"
    with pytest.raises(VersionPublishedError):
        template_version_ensure_draft(version=version)


def test_editing_a_published_version_makes_a_new_draft():
    content = TemplateContentFactory(subject="Old {{ customer.first_name }}")
    published = content.version
    template_version_publish(version=published, published_by="boss", now=NOW)
    draft = template_version_copy(version=published, created_by="marketer")
    assert draft.number == published.number + 1
    assert draft.published_at is None
    assert list(draft.contents.values_list("locale", "subject")) == [
        ("en", "Old {{ customer.first_name }}")
    ]
    # the published version's content is untouched
    assert list(published.contents.values_list("pk", flat=True)) == [content.pk]


def test_a_stored_version_renders_for_a_stored_customer():
    content = TemplateContentFactory()
    customer = CustomerFactory(traits={"first_name": "Zoë"})
    version = version_source(content.version)
    message = render(version, build_context(customer=customer, now=NOW))
    assert message.subject == "Hello Zoë"
    assert "<p>Hi Zoë</p>" in message.html


@pytest.mark.parametrize(
    ("channel", "content", "expected"),
    [
        ("email", {"subject": "", "html": "<p>x</p>"}, "subject [en]: an email needs a subject"),
        (
            "email",
            {"subject": "Hi", "html": "", "text": ""},
            "html [en]: an email needs an HTML or a plain-text body",
        ),
        ("sms", {"body": "  "}, "body [en]: an SMS needs a body"),
        (
            "push",
            {"title": "", "body": ""},
            "title [en]: a push notification needs a title or a body",
        ),
        ("webhook", {"url": "ftp://x", "body": "{}"}, "url [en]: a webhook needs an http(s) URL"),
    ],
)
def test_a_version_missing_what_its_channel_needs_is_refused(channel, content, expected):
    template = MessageTemplateFactory(channel=channel)
    with pytest.raises(ValidationError) as error:
        template_version_create(
            template=template, contents=[{"locale": "en", **content}], created_by="m", now=NOW
        )
    assert error.value.messages == [expected]
    assert TemplateVersion.objects.count() == 0
