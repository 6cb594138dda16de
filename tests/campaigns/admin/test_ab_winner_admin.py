import datetime as dt

import pytest
from django.test import Client

from campaigns.models import Campaign, Message, MessageStatus
from campaigns.services.broadcasts import campaign_pause, campaign_send, campaigns_tick
from tests.campaigns.services.conftest import (  # noqa: F401 - fixtures
    NOW,
    backends,
    granted_customer,
    provider,
    published_version,
    smtp_sink,
)
from tests.campaigns.services.test_ab_winner import HOUR, ab_campaign, send_due
from tests.consent.factories import TopicFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/campaigns/campaign/"


@pytest.fixture
def topic(db):
    return TopicFactory(key="news", channels=["email", "sms", "push"])


def page_of(user, campaign):
    client = Client()
    client.force_login(user)
    response = client.get(f"{CHANGELIST}{campaign.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_campaign_page_shows_the_test_the_winner_its_metric_and_the_rest(
    admin_user, topic, time_machine
):
    # given an A/B test on clicks, sent, where B's readers clicked and A's did not
    time_machine.move_to(NOW + HOUR / 2, tick=False)
    for _ in range(20):
        granted_customer(topic)
    campaign, *_ = ab_campaign(metric="clicked", holdout=0, test_percent=50)
    campaign_send(campaign_id=campaign.pk, actor="ann", now=NOW)
    Message.objects.filter(variant__in=["A", "B"]).update(status=MessageStatus.SENT, sent_at=NOW)
    Message.objects.filter(variant="B").update(status=MessageStatus.CLICKED)
    rest = Message.objects.filter(variant="rest").count()
    # when a marketer opens it during the test window
    html = page_of(admin_user, campaign)
    # then it says what is tested until when, and that the rest waits
    assert "Testing on click rate: until 2026-03-10 13:00 UTC, 1 h after the start" in html
    assert f"{rest} in the rest wait for it" in html
    assert "rest (waiting for the winner)" in html
    # when the window has passed and the tick picked the winner
    assert campaigns_tick(now=NOW + HOUR).winners == 1
    html = page_of(admin_user, campaign)
    # then the page names the winner, the click rate per variant and the rest being sent
    assert "Winner B on click rate, picked 2026-03-10 13:00 UTC." in html
    assert f"The rest get B: 0 of {rest} sent." in html
    assert "<th>Click rate</th>" in html
    assert "<td>B (winner)</td>" in html and "<td>100.0%</td>" in html
    assert "<td>A</td>" in html and "<td>0.0%</td>" in html
    assert "rest (gets B)" in html
    # and the audit trail says why
    assert "winner on click rate: B (best rate)" in html


@pytest.mark.usefixtures("backends")
def test_the_campaign_page_says_why_the_winner_is_not_picked_yet(
    admin_user, topic, django_capture_on_commit_callbacks, time_machine
):
    # given an A/B test on clicks whose test messages have not gone out yet
    for _ in range(20):
        granted_customer(topic)
    campaign, *_ = ab_campaign(metric="clicked", holdout=0, test_percent=50)
    campaign_send(campaign_id=campaign.pk, actor="ann", now=NOW)
    unsent = Message.objects.filter(variant__in=["A", "B"]).count()
    rest = Message.objects.filter(variant="rest").count()
    # when a marketer opens it after the window counted from the start
    time_machine.move_to(NOW + HOUR, tick=False)
    assert campaigns_tick(now=NOW + HOUR).winners == 0
    html = page_of(admin_user, campaign)
    # then it says the winner waits for the unsent test messages, and until when at most
    assert (
        f"Testing on click rate: {unsent} test messages not sent yet (queued, deferred or "
        "sending); the winner is picked 1 h after the last one is sent, at the latest "
        f"2026-03-12 13:00 UTC; {rest} in the rest wait for it."
    ) in html
    # when they are sent a quarter of an hour later
    send_due(
        NOW + HOUR + dt.timedelta(minutes=15), time_machine, django_capture_on_commit_callbacks
    )
    # then the page says the window now ends an hour after that
    assert (
        "Testing on click rate: until 2026-03-10 14:15 UTC, 1 h after the last test message "
        "was sent;"
    ) in page_of(admin_user, campaign)
    # when that hour has passed but the tick has not run yet
    time_machine.move_to(NOW + 2 * HOUR + dt.timedelta(minutes=15), tick=False)
    assert (
        "Testing on click rate: the test ended 2026-03-10 14:15 UTC; the winner is picked at "
        "the next campaigns tick;"
    ) in page_of(admin_user, campaign)
    # when it is paused, the page says so instead
    campaign_pause(campaign_id=campaign.pk, actor="ann")
    assert "Testing on click rate: paused, so no winner is picked until it is resumed;" in page_of(
        admin_user, campaign
    )


def test_the_form_refuses_a_test_share_without_an_automatic_winner(admin_user, topic):
    version = published_version()
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        f"{CHANGELIST}add/",
        {
            "name": "Half a test",
            "template": version.template_id,
            "topic_key": "news",
            "schedule": "now",
            "holdout_percent": 0,
            "conversion_window_hours": 72,
            "test_window_hours": 4,
            "test_percent": 30,
            "winner_metric": "clicked",
            "variants-TOTAL_FORMS": 1,
            "variants-INITIAL_FORMS": 0,
            "variants-MIN_NUM_FORMS": 1,
            "variants-MAX_NUM_FORMS": 1000,
            "variants-0-key": "A",
            "variants-0-template_version": version.pk,
            "variants-0-weight": 1,
            "status_changes-TOTAL_FORMS": 0,
            "status_changes-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert "Below 100 only with an automatic winner to send the rest." in response.content.decode()
    assert Campaign.objects.count() == 0
