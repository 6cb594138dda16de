"""Template versions: drafts are edited, published versions never change."""

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from campaigns.models import MessageTemplate, TemplateContent, TemplateVersion
from campaigns.rendering import RenderedMessage, TemplateError, render, sample_context
from campaigns.rendering.sources import ContentSource, VersionSource
from campaigns.selectors import content_source


class VersionPublishedError(Exception):
    """A published version was about to be changed."""


def template_version_check(
    *,
    template: MessageTemplate,
    contents: Iterable[ContentSource],
    now: dt.datetime,
) -> list[TemplateError]:
    """Render every locale against the sample context; return the errors found."""
    errors = []
    for content in contents:
        version = VersionSource(
            id=None,
            channel=template.channel,
            default_locale=template.default_locale,
            contents=(content,),
        )
        context = sample_context(now=now, extra=template.sample_context, locale=content.locale)
        try:
            message = render(version, context, locale=content.locale)
        except TemplateError as error:
            errors.append(error)
            continue
        errors.extend(_missing_parts(message))
    return errors


def _missing_parts(message: RenderedMessage) -> list[TemplateError]:
    """What a message of its channel cannot go without, checked on the sample render."""
    missing: list[tuple[str, str]] = []
    if message.channel == "email":
        if not message.subject.strip():
            missing.append(("subject", "an email needs a subject"))
        if not message.html.strip() and not message.text.strip():
            missing.append(("html", "an email needs an HTML or a plain-text body"))
    elif message.channel == "sms" and not message.body.strip():
        missing.append(("body", "an SMS needs a body"))
    elif message.channel == "push" and not (message.title.strip() or message.body.strip()):
        missing.append(("title", "a push notification needs a title or a body"))
    elif message.channel == "webhook" and not message.url.strip().startswith(
        ("https://", "http://")
    ):
        missing.append(("url", "a webhook needs an http(s) URL"))
    return [TemplateError(text, field=field, locale=message.locale) for field, text in missing]


def _next_number(template: MessageTemplate) -> int:
    # Lock the template so that two editors saving at once get different numbers.
    MessageTemplate.objects.select_for_update().filter(pk=template.pk).first()
    current = template.versions.aggregate(highest=Max("number"))["highest"] or 0
    return current + 1


@transaction.atomic
def template_version_create(
    *,
    template: MessageTemplate,
    contents: Iterable[Mapping[str, Any]],
    created_by: str,
    note: str = "",
    now: dt.datetime,
) -> TemplateVersion:
    """A new draft version with the given content per locale, checked before it is saved."""
    contents = [dict(content) for content in contents]
    if not contents:
        raise ValidationError("a version needs content in at least one locale")
    errors = template_version_check(
        template=template,
        contents=[ContentSource(locale=c["locale"], fields=c) for c in contents],
        now=now,
    )
    if errors:
        raise ValidationError([str(error) for error in errors])
    version = TemplateVersion.objects.create(
        template=template, number=_next_number(template), created_by=created_by, note=note
    )
    TemplateContent.objects.bulk_create(
        [TemplateContent(version=version, **content) for content in contents]
    )
    return version


def template_version_assign_number(*, version: TemplateVersion) -> None:
    """Give a draft about to be saved for the first time the next number of its template."""
    if version.pk is None:
        version.number = _next_number(version.template)


def template_version_ensure_draft(*, version: TemplateVersion) -> None:
    if (
        version.pk is not None
        and TemplateVersion.objects.filter(pk=version.pk, published_at__isnull=False).exists()
    ):
        raise VersionPublishedError(f"{version} is published and cannot be changed")


@transaction.atomic
def template_version_publish(
    *, version: TemplateVersion, published_by: str, now: dt.datetime
) -> bool:
    """Publish a draft; from now on it is the version sends use. False if already published."""
    errors = template_version_check(
        template=version.template,
        contents=[content_source(content) for content in version.contents.all()],
        now=now,
    )
    if errors:
        raise ValidationError([str(error) for error in errors])
    if not version.contents.exists():
        raise ValidationError("a version needs content in at least one locale")
    updated = TemplateVersion.objects.filter(pk=version.pk, published_at__isnull=True).update(
        published_at=now, published_by=published_by
    )
    if updated:
        version.published_at, version.published_by = now, published_by
    return bool(updated)


@transaction.atomic
def template_version_copy(*, version: TemplateVersion, created_by: str) -> TemplateVersion:
    """A new draft with the same content: how a published version gets edited."""
    template = version.template
    draft = TemplateVersion.objects.create(
        template=template,
        number=_next_number(template),
        created_by=created_by,
        note=f"Copy of v{version.number}",
    )
    copies = []
    for content in version.contents.all():
        content.pk = None
        content.version = draft
        copies.append(content)
    TemplateContent.objects.bulk_create(copies)
    return draft
