import datetime as dt
import uuid

import pytest
from django.test import override_settings

from campaigns.channels import backends_reset
from consent.channels import Channel
from consent.models import Action, Source
from consent.services.ledger import consent_record
from tests.campaigns.factories import CustomerFactory, TemplateContentFactory
from tests.campaigns.servers import FakeProvider, SmtpSink
from tests.consent.factories import TopicFactory

# A Tuesday at noon in London: outside every default quiet window.
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def smtp_sink():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def provider():
    server = FakeProvider().start()
    yield server
    server.stop()


@pytest.fixture
def backends(smtp_sink, provider):
    """Email to the local SMTP sink, SMS to a local stand-in for Twilio."""
    config = {
        "email": {
            "BACKEND": "email",
            "OPTIONS": {
                "backend": "django.core.mail.backends.smtp.EmailBackend",
                "host": "127.0.0.1",
                "port": smtp_sink.port,
                "from_email": "Shop <shop@journeyline.test>",
            },
        },
        "sms": {
            "BACKEND": "twilio",
            "OPTIONS": {
                "account_sid": "AC123",
                "auth_token": "secret",
                "from_number": "+15555550000",
                "base_url": provider.url,
            },
        },
        "webhook": {"BACKEND": "console", "OPTIONS": {}},
        "push": {"BACKEND": "console", "OPTIONS": {}},
    }
    # Rate-limit buckets live in the shared Redis: a prefix of this test's own.
    with override_settings(
        JOURNEYLINE_CHANNEL_BACKENDS=config,
        DISPATCH_RATE_LIMITS={},
        DISPATCH_RATE_LIMIT_PREFIX=f"test-rate-{uuid.uuid4().hex}",
        CONSENT_QUIET_HOURS={},
        JOURNEYLINE_PUBLIC_URL="https://jl.test",
    ):
        backends_reset()
        yield smtp_sink
    backends_reset()


@pytest.fixture
def topic(db):
    return TopicFactory(key="news", channels=["email", "sms", "push"])


def granted_customer(topic, **fields):
    customer = CustomerFactory(**fields)
    for channel in ("email", "sms"):
        consent_record(
            customer_id=customer.pk,
            channel=channel,
            topic_key=topic.key,
            action=Action.GRANT,
            source=Source.API,
            now=NOW - dt.timedelta(days=1),
            occurred_at=NOW - dt.timedelta(days=1),
        )
    return customer


def published_version(channel=Channel.EMAIL, **content):
    if channel == Channel.SMS:
        content = {
            "subject": "",
            "html": "",
            "layout": "",
            "body": "Hi {{ customer.first_name }}",
            **content,
        }
    item = TemplateContentFactory(version__template__channel=channel, **content)
    version = item.version
    version.published_at = NOW - dt.timedelta(days=2)
    version.save(update_fields=["published_at"])
    return version
