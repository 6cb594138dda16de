"""Double opt-in confirmations, sent through the outbox like any other message.

Consent records a pending grant and asks (``consent.hooks.confirmation_senders``) for a
message carrying the signed confirmation link. It goes out on the transactional topic,
so it needs no opt-in, yet suppression and erasure still stop it at the gate.
"""

import datetime as dt
import hashlib

from django.db import transaction
from django.utils import timezone

from campaigns.models import MessageTemplate
from campaigns.selectors import template_current_version
from campaigns.services.outbox import message_enqueue
from campaigns.services.templates import template_version_create, template_version_publish
from consent.channels import Channel

TRANSACTIONAL_TOPIC = "transactional"

_CONTENTS = {
    Channel.EMAIL: {
        "locale": "en",
        "subject": "Please confirm your subscription",
        "preheader": "One click and you are in",
        "html": "<p>Hello {{ customer.first_name|default('there') }},</p>\n"
        "<p>Please confirm that you want to receive "
        "<strong>{{ event.topic_name|default('our messages') }}</strong>.</p>\n"
        '<p><a href="{{ event.confirm_url|default('
        ') }}">Yes, subscribe me</a></p>\n'
        "<p>If you did not ask for this, ignore this message: nothing will be sent.</p>",
        "layout": "base",
    },
    Channel.SMS: {
        "locale": "en",
        "body": "Confirm {{ event.topic_name|default('our messages') }}: {{ event.confirm_url|default('') }} "
        "(ignore this message if you did not ask)",
    },
    Channel.PUSH: {
        "locale": "en",
        "title": "Confirm your subscription",
        "body": "Tap to confirm {{ event.topic_name|default('our messages') }}.",
        "deep_link": "{{ event.confirm_url|default('') }}",
        "data": {"kind": "double_opt_in"},
    },
}


def _template_name(channel: str) -> str:
    return f"Double opt-in confirmation ({channel})"


@transaction.atomic
def confirmation_version_ensure(*, channel: str, now: dt.datetime):
    """The published confirmation template of a channel, created on first use."""
    template, _ = MessageTemplate.objects.get_or_create(
        name=_template_name(channel),
        defaults={
            "channel": channel,
            "description": "Sent by Journeyline when a double opt-in grant is pending. "
            "Edit it freely: `event.confirm_url` and `event.topic_name` are provided.",
        },
    )
    version = template_current_version(template_id=template.pk)
    if version is None:
        version = template_version_create(
            template=template, contents=[_CONTENTS[channel]], created_by="system", now=now
        )
        template_version_publish(version=version, published_by="system", now=now)
    return version


def confirmation_send(*, customer_id: int, channel: str, topic_key: str, confirm_url: str) -> None:
    """The ``confirmation_senders`` hook: queue the confirmation message, once per link."""
    from consent.models import Topic

    if channel not in _CONTENTS:
        return
    now = timezone.now()
    version = confirmation_version_ensure(channel=channel, now=now)
    topic = Topic.objects.filter(key=topic_key).first()
    link_digest = hashlib.sha256(confirm_url.encode()).hexdigest()[:24]
    message_enqueue(
        customer_id=customer_id,
        channel=channel,
        template_version_id=version.pk,
        topic_key=TRANSACTIONAL_TOPIC,
        idempotency_key=f"double-opt-in:{customer_id}:{channel}:{topic_key}:{link_digest}",
        context={
            "event": {
                "confirm_url": confirm_url,
                "topic_key": topic_key,
                "topic_name": topic.name if topic else topic_key,
            }
        },
        actor="consent",
        now=now,
    )
