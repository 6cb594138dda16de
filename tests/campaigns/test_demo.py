import datetime as dt

import pytest

from campaigns.demo import demo_templates_ensure, load
from campaigns.models import MessageTemplate, TemplateVersion
from campaigns.rendering import render, sample_context
from campaigns.selectors import template_current_version, version_source
from customers.demo.steps import DemoRun, demo_steps

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)


def test_demo_templates_cover_every_channel_and_render():
    assert demo_templates_ensure(now=NOW) == 4
    assert sorted(MessageTemplate.objects.values_list("channel", flat=True)) == [
        "email",
        "push",
        "sms",
        "webhook",
    ]
    for template in MessageTemplate.objects.all():
        version = template_current_version(template_id=template.pk)
        message = render(version_source(version), sample_context(now=NOW))
        assert message.channel == template.channel


def test_demo_step_is_registered_and_safe_to_run_again():
    assert "campaigns" in dict(demo_steps.items())
    run = DemoRun(url="http://127.0.0.1:8000", store=None, credentials=None)
    assert load(run) == load(run)
    assert MessageTemplate.objects.count() == 4
    assert TemplateVersion.objects.count() == 4


def test_the_demo_broadcast_is_an_ab_test_that_can_be_started():
    from campaigns.demo_broadcasts import demo_broadcast_ensure
    from campaigns.models import Campaign
    from campaigns.services.broadcasts import campaign_check
    from tests.consent.factories import TopicFactory

    # given the consent demo's topic
    TopicFactory(key="deals", channels=["email", "sms", "push"])
    # when the demo step runs twice
    run = DemoRun(url="http://127.0.0.1:8000", store=None, credentials=None)
    lines = dict(demo_steps.items())["broadcasts"](run)
    demo_broadcast_ensure(now=NOW)
    # then one draft campaign with two published variants and a holdout exists, ready to send
    campaign = Campaign.objects.get()
    assert "admin/campaigns/campaign/" in lines[0]
    assert sorted(campaign.variants.values_list("key", flat=True)) == ["A", "B"]
    assert campaign.holdout_percent == 10
    assert campaign_check(campaign) == []
