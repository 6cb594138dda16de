"""Previews and test sends from the admin: a version rendered for a chosen customer."""

import datetime as dt
import logging
import uuid

from django.conf import settings

from campaigns.channels import Delivery, get_backend
from campaigns.models import TemplateVersion
from campaigns.rendering import RenderedMessage, build_context, render, sample_context
from campaigns.rendering.context import SAMPLE_LINKS
from campaigns.selectors import version_source
from customers.models import Customer

logger = logging.getLogger(__name__)


def template_preview(
    *, version: TemplateVersion, customer: Customer | None, locale: str, now: dt.datetime
) -> RenderedMessage:
    """Render for ``customer`` (or the sample customer); raises ``TemplateError``."""
    template = version.template
    if customer is None:
        context = sample_context(
            now=now, extra=template.sample_context, locale=locale or template.default_locale
        )
    else:
        sample = sample_context(now=now, extra=template.sample_context)
        context = build_context(
            customer=customer,
            now=now,
            event=sample["event"],
            segments=sample["segments"],
            scores=sample["scores"],
            recommendations=sample["recommendations"],
            # Real links carry signed tokens made at send time; a preview shows stand-ins.
            links=SAMPLE_LINKS,
            default_timezone=settings.JOURNEYLINE_DEFAULT_TIMEZONE,
        )
        if locale:
            context["locale"] = locale
    return render(version_source(version), context, locale=locale or None)


def template_test_send(
    *,
    version: TemplateVersion,
    customer: Customer | None,
    locale: str,
    address: str,
    platform: str,
    sent_by: str,
    now: dt.datetime,
) -> str:
    """Send a preview to ``address`` through the channel's backend; return the provider id.

    Raises ``TemplateError`` or ``SendError`` with the reason.
    """
    message = template_preview(version=version, customer=customer, locale=locale, now=now)
    if message.channel == "email":
        message.subject = f"[Test] {message.subject}"
    reference = f"test-{version.pk}-{uuid.uuid4().hex[:12]}"
    provider_id = get_backend(message.channel).send(
        Delivery(message=message, to=address, reference=reference, platform=platform)
    )
    logger.info(
        "test message sent",
        extra={"version_id": version.pk, "reference": reference, "sent_by": sent_by},
    )
    return provider_id
