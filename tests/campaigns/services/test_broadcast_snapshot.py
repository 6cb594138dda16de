"""A run sent now is written a chunk of the audience at a time, each dispatched once
committed; a sender that stops midway is taken over by the tick, and a pause or a cancel
in between holds."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatusChange, Message, MessageStatus
from campaigns.services import broadcasts
from campaigns.services.broadcasts import (
    CampaignError,
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_send,
    campaigns_tick,
)
from tests.campaigns.services.conftest import NOW, granted_customer
from tests.campaigns.services.test_broadcasts import a_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def chunks_of_four(settings):
    settings.CAMPAIGN_SNAPSHOT_CHUNK = 4


def send_stopping_after_the_first_chunk(campaign, **send):
    """Send as a process would that stopped once its first chunk was committed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(broadcasts, "campaign_snapshot_continue", lambda **kwargs: None)
        return campaign_send(campaign_id=campaign.pk, **{"actor": "ann", "now": NOW, **send})


def _later():
    return timezone.now() + broadcasts.SNAPSHOT_STALLED + dt.timedelta(seconds=1)


def test_an_audience_in_chunks_is_all_written_and_sent_once(
    topic, backends, chunks_of_four, django_capture_on_commit_callbacks
):
    # given 11 consenting customers, chunks of 4, and an A/B campaign with a holdout
    customers = [granted_customer(topic) for _ in range(11)]
    campaign = a_campaign(holdout=20)
    # when it is sent
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = campaign_send(campaign_id=campaign.pk, actor="ann", now=NOW)
    # then each customer has one row, the three chunks were dispatched as they were written
    rows = Message.objects.filter(campaign_id=campaign.pk)
    assert sorted(rows.values_list("customer_id", flat=True)) == sorted(c.pk for c in customers)
    held = rows.filter(variant="holdout").count()
    assert (report.queued, report.holdout) == (11 - held, held)
    assert len(callbacks) == 3
    assert sorted(e.rcpt_tos[0] for e in backends.envelopes) == sorted(
        c.email for c in customers if not rows.filter(customer=c, variant="holdout").exists()
    )
    # and the campaign says so: started in chunks, then the whole audience written
    campaign.refresh_from_db()
    assert campaign.snapshot_after is None
    audit = list(CampaignStatusChange.objects.filter(campaign=campaign).order_by("id"))
    assert [(a.from_status, a.to_status) for a in audit] == [
        ("draft", "sending"),
        ("sending", "sending"),
    ]
    assert "4 customers at a time" in audit[0].reason
    assert audit[1].data == {"run": 1, "queued": 11 - held, "holdout": held, "rest": 0}
    assert campaigns_tick(now=NOW).finished == 1


def test_the_tick_takes_over_an_audience_whose_sender_stopped(topic, backends, chunks_of_four):
    # given a campaign whose sender stopped after its first chunk of 4 (of 10 customers)
    customers = [granted_customer(topic) for _ in range(10)]
    campaign = a_campaign(variants=1)
    report = send_stopping_after_the_first_chunk(campaign)
    assert report.queued == 4
    Message.objects.filter(campaign_id=campaign.pk).update(status=MessageStatus.SENT)
    # when the tick runs before it counts as stalled, then nothing is written, and the
    # campaign is not finished although every message written so far is sent
    assert campaigns_tick(now=NOW).snapshots_resumed == 0
    campaign.refresh_from_db()
    assert (campaign.status, campaign.snapshot_after) == ("sending", customers[3].pk)
    # when it runs once the snapshot has stalled, it writes the rest, each customer once
    assert campaigns_tick(now=_later()).snapshots_resumed == 1
    rows = Message.objects.filter(campaign_id=campaign.pk)
    assert sorted(rows.values_list("customer_id", flat=True)) == sorted(c.pk for c in customers)
    campaign.refresh_from_db()
    assert campaign.snapshot_after is None
    assert CampaignStatusChange.objects.filter(
        campaign=campaign, actor="campaigns tick", data__queued=10
    ).exists()


def test_a_campaign_paused_while_its_audience_is_written_writes_the_rest_paused(
    topic, backends, chunks_of_four
):
    # given a campaign paused after its first chunk of 4 (of 9 customers)
    for _ in range(9):
        granted_customer(topic)
    campaign = a_campaign(variants=1)
    send_stopping_after_the_first_chunk(campaign)
    assert campaign_pause(campaign_id=campaign.pk, actor="ann") == 4
    # when the tick writes the rest of the audience
    campaigns_tick(now=_later())
    # then the rest waits, paused, and nothing was sent
    rows = Message.objects.filter(campaign_id=campaign.pk)
    assert rows.count() == 9
    assert set(rows.values_list("status", "failure_reason")) == {("deferred", "campaign paused")}
    assert backends.envelopes == []
    # when it is resumed, all nine are due again
    assert campaign_resume(campaign_id=campaign.pk, actor="ann", now=NOW) == 9


def test_a_campaign_cancelled_while_its_audience_is_written_writes_no_more(topic, chunks_of_four):
    # given a campaign cancelled after its first chunk of 4 (of 9 customers)
    for _ in range(9):
        granted_customer(topic)
    campaign = a_campaign(variants=1)
    send_stopping_after_the_first_chunk(campaign)
    assert campaign_cancel(campaign_id=campaign.pk, actor="ann") == 4
    # when the tick comes to take the snapshot over
    campaigns_tick(now=_later())
    # then no more messages are written and the snapshot is over
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 4
    campaign.refresh_from_db()
    assert (campaign.status, campaign.snapshot_after) == ("cancelled", None)


def test_a_recurring_run_waits_for_the_last_run_s_audience_to_be_written(topic, chunks_of_four):
    # given a recurring campaign whose first run's audience is still being written
    for _ in range(6):
        granted_customer(topic)
    campaign = a_campaign(variants=1, schedule=Campaign.Schedule.RECURRING, cron="0 9 * * 1")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    send_stopping_after_the_first_chunk(campaign, actor="schedule")
    # when the next run comes, it is refused and nothing is written for it
    with pytest.raises(CampaignError, match="still being written"):
        campaign_send(campaign_id=campaign.pk, actor="schedule", now=NOW)
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 4


def test_the_campaign_list_says_the_audience_is_still_being_written(
    topic, chunks_of_four, admin_client
):
    # given a campaign whose first chunk of 4 (of 6) is written and the rest is not yet
    for _ in range(6):
        granted_customer(topic)
    campaign = a_campaign(variants=1)
    send_stopping_after_the_first_chunk(campaign)
    # when a marketer opens the list of campaigns, then its progress says so
    page = admin_client.get("/admin/campaigns/campaign/")
    assert page.status_code == 200
    assert "0 of 4 done so far; the audience is still being written" in page.content.decode()
    # and once the tick has written the rest, it no longer does
    campaigns_tick(now=_later())
    page = admin_client.get("/admin/campaigns/campaign/")
    assert "still being written" not in page.content.decode()
    assert "of 6 done" in page.content.decode()
