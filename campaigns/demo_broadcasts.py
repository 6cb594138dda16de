"""The demo's broadcast: a spring sale with an A/B test of two subject lines on a fifth of
the audience and a holdout; four hours after the start the better subject on clicks goes
to the rest.

Left as a draft for an approver to start from the admin: the demo's email backend is
whatever the operator configured, and a demo should not mail anyone by itself.
"""

import datetime as dt

from django.db import transaction

from campaigns.models import Campaign, CampaignVariant, MessageTemplate
from campaigns.services.templates import template_version_create, template_version_publish
from consent.channels import Channel
from consent.services.topics import topic_get
from customers.demo.steps import DemoRun

NAME = "Demo: spring sale A/B test"
HTML = """<h1>{{ customer.first_name|default('Hello') }}, the spring sale is on</h1>
<p>Everything is 20% off until Sunday.</p>
<p><a href="https://shop.example.com/sale">Shop the sale</a></p>"""
SUBJECTS = {
    "A": "Spring sale: 20% off everything",
    "B": "{{ customer.first_name|default('Hi') }}, 20% off just for you this week",
}


@transaction.atomic
def demo_broadcast_ensure(*, now: dt.datetime) -> Campaign | None:
    """The demo campaign (created once); None when the demo topic is missing."""
    existing = Campaign.objects.filter(name=NAME).first()
    if existing is not None:
        return existing
    if topic_get(key="deals") is None:
        return None
    template, _ = MessageTemplate.objects.get_or_create(
        name="Demo: spring sale",
        defaults={"channel": Channel.EMAIL, "description": "The A/B-tested broadcast."},
    )
    campaign = Campaign.objects.create(
        name=NAME,
        template=template,
        topic_key="deals",
        holdout_percent=10,
        conversion_event="Order Completed",
        conversion_window_hours=72,
        pick_winner=True,
        test_window_hours=4,
        test_percent=20,
        winner_metric=Campaign.Metric.CLICKED,
        throttle_per_minute=600,
    )
    for key, subject in SUBJECTS.items():
        version = template_version_create(
            template=template,
            contents=[{"locale": "en", "subject": subject, "html": HTML, "layout": "base"}],
            created_by="demo",
            note=f"Variant {key}",
            now=now,
        )
        template_version_publish(version=version, published_by="demo", now=now)
        CampaignVariant.objects.create(
            campaign=campaign, key=key, template_version=version, weight=1
        )
    return campaign


def load(run: DemoRun) -> list[str]:
    campaign = demo_broadcast_ensure(now=dt.datetime.now(tz=dt.UTC))
    if campaign is None:
        return []
    return [
        f"Broadcast with an A/B test (draft, start it as an approver): "
        f"{run.url}/admin/campaigns/campaign/{campaign.pk}/change/"
    ]
