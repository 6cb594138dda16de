"""One Channel enum for consent, campaigns and journeys."""

import pytest

from campaigns import models as campaign_models
from consent.channels import CONSENT_CHANNELS, Channel
from consent.models import Action, ConsentEvent, Source
from consent.services.ledger import ConsentError, consent_record
from journeys.engine.graph import CHANNELS
from tests.campaigns.factories import CustomerFactory
from tests.consent.factories import TopicFactory


def test_every_app_uses_the_one_enum_with_the_values_already_stored():
    # the values stored in campaigns and consent rows before the enums were merged
    assert Channel.values == ["email", "sms", "push", "webhook"]
    assert campaign_models.Channel is Channel
    assert campaign_models.Message._meta.get_field("channel").choices == Channel.choices
    assert tuple(Channel.values) == CHANNELS
    assert CONSENT_CHANNELS == ("email", "sms", "push")


@pytest.mark.django_db
def test_consent_for_a_webhook_is_refused_and_nothing_is_written():
    # webhooks go to the operator's systems: there is no consent to give for them
    customer = CustomerFactory()
    TopicFactory(key="news", channels=["email"])
    with pytest.raises(ConsentError) as refused:
        consent_record(
            customer_id=customer.pk,
            channel="webhook",
            topic_key="news",
            action=Action.GRANT,
            source=Source.API,
        )
    assert refused.value.field == "channel"
    assert ConsentEvent.objects.count() == 0
