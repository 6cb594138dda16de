"""A pending double opt-in sends its confirmation through the outbox, as transactional."""

import pytest

from campaigns.models import Message, MessageTemplate
from consent.services.ledger import consent_record
from tests.consent.factories import CustomerFactory, TopicFactory

pytestmark = pytest.mark.django_db


def test_a_pending_grant_queues_one_transactional_confirmation_with_the_link(
    django_capture_on_commit_callbacks,
):
    customer = CustomerFactory()
    TopicFactory(key="deals", name="Deals", double_opt_in=True, channels=["email"])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        entry = consent_record(
            customer_id=customer.pk,
            channel="email",
            topic_key="deals",
            action="grant",
            source="api",
        )
    # Run the confirmation hook (after commit), but not the dispatch it queues in turn.
    callbacks[0]()

    assert entry.action == "pending"
    message = Message.objects.get()
    assert (message.customer_id, message.channel, message.topic_key) == (
        customer.pk,
        "email",
        "transactional",
    )
    assert message.context["event"]["topic_name"] == "Deals"
    assert "/consent/" in message.context["event"]["confirm_url"]
    assert message.template_version.template.name == "Double opt-in confirmation (email)"
    assert message.template_version.published_at is not None

    callbacks[0]()  # the same link asked for again: still one message
    assert Message.objects.count() == 1
    assert MessageTemplate.objects.count() == 1
