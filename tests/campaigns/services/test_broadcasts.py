import datetime as dt

import pytest
from django_celery_beat.models import PeriodicTask

from campaigns.models import (
    Campaign,
    CampaignStatusChange,
    CampaignVariant,
    Message,
    MessageStatus,
)
from campaigns.selectors_broadcasts import (
    campaign_progress,
    campaign_results,
    two_proportion_confidence,
)
from campaigns.services.broadcast_snapshot import variant_bounds
from campaigns.services.broadcasts import (
    CampaignError,
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_send,
    campaign_start,
    campaigns_tick,
)
from campaigns.services.dispatch import messages_tick
from customers.models import Event
from segments.models import SegmentMembership
from tests.campaigns.factories import CustomerFactory
from tests.campaigns.services.conftest import NOW, granted_customer, published_version
from tests.segments.factories import SegmentFactory

pytestmark = pytest.mark.django_db


def a_campaign(*, holdout=0, variants=2, **fields):
    version = published_version(subject="Sale {{ customer.first_name }}")
    campaign = Campaign.objects.create(
        name=fields.pop("name", "Spring sale"),
        template=version.template,
        topic_key="news",
        holdout_percent=holdout,
        **fields,
    )
    for index in range(variants):
        CampaignVariant.objects.create(
            campaign=campaign, key="AB"[index], template_version=version, weight=1
        )
    return campaign


def test_sending_snapshots_the_audience_with_variants_and_a_holdout(
    backends, topic, django_capture_on_commit_callbacks
):
    # given 60 consenting customers, 5 who never agreed, and an A/B campaign with a 20% holdout
    customers = [granted_customer(topic) for _ in range(60)]
    CustomerFactory.create_batch(5)
    campaign = a_campaign(holdout=20)
    # when it is started (tasks run eagerly on commit)
    with django_capture_on_commit_callbacks(execute=True):
        status = campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW)
    # then every consenting customer has one row, the holdout got nothing, the rest was sent
    assert status == Campaign.Status.SENDING
    rows = Message.objects.filter(campaign_id=campaign.pk)
    assert rows.count() == 60
    assert set(rows.values_list("customer_id", flat=True)) == {c.pk for c in customers}
    by_variant = {v: rows.filter(variant=v).count() for v in ("A", "B", "holdout")}
    assert sum(by_variant.values()) == 60
    assert by_variant["A"] > 0 and by_variant["B"] > 0 and by_variant["holdout"] > 0
    held = rows.filter(variant="holdout")
    assert set(held.values_list("status", flat=True)) == {"skipped"}
    assert len(backends.envelopes) == by_variant["A"] + by_variant["B"]
    assert campaign_progress(campaign_id=campaign.pk) == {"sent": by_variant["A"] + by_variant["B"]}
    assert CampaignStatusChange.objects.filter(campaign=campaign).count() == 1


def test_variant_assignment_is_deterministic_per_customer(topic):
    # given a recurring campaign sent twice
    for _ in range(30):
        granted_customer(topic)
    campaign = a_campaign(holdout=10, schedule=Campaign.Schedule.RECURRING, cron="0 9 * * 1")
    assert campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW) == "scheduled"
    assert Message.objects.count() == 0  # the cron sends it, not the start
    campaign_send(campaign_id=campaign.pk, actor="schedule", now=NOW)
    campaign_send(campaign_id=campaign.pk, actor="schedule", now=NOW + dt.timedelta(days=7))
    # then each customer has two rows (one per run) with the same variant
    pairs = {}
    for customer_id, variant in Message.objects.values_list("customer_id", "variant"):
        pairs.setdefault(customer_id, set()).add(variant)
    assert len(pairs) == 30
    assert all(len(variants) == 1 for variants in pairs.values())
    assert Message.objects.count() == 60
    assert PeriodicTask.objects.filter(task="campaigns.campaign_send").count() == 1


def test_variant_bounds_split_what_the_holdout_leaves_by_weight():
    assert variant_bounds(holdout_percent=20, weights=[("A", 1), ("B", 3)]) == [
        ("A", 4000),
        ("B", 10000),
    ]


def test_a_segment_audience_is_its_current_members(backends, topic):
    # given a segment with two current members and one who left
    segment = SegmentFactory()
    inside = [granted_customer(topic) for _ in range(2)]
    left = granted_customer(topic)
    for customer in inside:
        SegmentMembership.objects.create(segment=segment, customer=customer, entered_at=NOW)
    SegmentMembership.objects.create(segment=segment, customer=left, entered_at=NOW, exited_at=NOW)
    campaign = a_campaign(segment=segment, variants=1)
    # when it is sent
    report = campaign_send(campaign_id=campaign.pk, actor="ann", now=NOW)
    # then only the current members get a message
    assert report.queued == 2
    assert set(Message.objects.values_list("customer_id", flat=True)) == {c.pk for c in inside}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"variants": 0}, "variants"),
        ({"holdout": 60}, "holdout_percent"),
        ({"schedule": Campaign.Schedule.AT}, "send_at"),
        ({"schedule": Campaign.Schedule.LOCAL_TIME}, "local_time"),
        ({"schedule": Campaign.Schedule.RECURRING, "cron": "daily"}, "cron"),
    ],
)
def test_a_campaign_that_cannot_be_sent_is_refused_and_nothing_is_written(topic, change, field):
    granted_customer(topic)
    campaign = a_campaign(**change)
    with pytest.raises(CampaignError) as raised:
        campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW)
    assert raised.value.field == field
    assert Message.objects.count() == 0
    assert Campaign.objects.get().status == Campaign.Status.DRAFT


def test_a_throttled_campaign_is_sent_by_the_tick_as_it_comes_due(topic):
    # given 30 recipients and a throttle of 10 a minute
    for _ in range(30):
        granted_customer(topic)
    campaign = a_campaign(variants=1, throttle_per_minute=10)
    campaign_send(campaign_id=campaign.pk, actor="ann", now=NOW)
    # when the tick runs 65 seconds later
    report = messages_tick(now=NOW + dt.timedelta(seconds=65))
    # then the first eleven are due (one every 6 seconds), the rest wait
    assert report.swept == 11
    waiting = Message.objects.filter(next_attempt_at__lt=NOW + dt.timedelta(seconds=180))
    assert waiting.count() == 19
    assert waiting.order_by("-next_attempt_at").first().next_attempt_at == NOW + dt.timedelta(
        seconds=29 * 6
    )


def test_local_time_sends_at_that_hour_in_each_customer_zone(topic):
    # given customers in London, Tokyo and an unknown zone, and 09:00 local
    london = granted_customer(topic, timezone="Europe/London")
    tokyo = granted_customer(topic, timezone="Asia/Tokyo")
    unknown = granted_customer(topic, timezone="Mars/Olympus")
    campaign = a_campaign(
        variants=1, schedule=Campaign.Schedule.LOCAL_TIME, local_time=dt.time(9, 0)
    )
    # when it is sent at noon UTC (09:00 has passed in both)
    campaign_send(campaign_id=campaign.pk, actor="ann", now=NOW)
    # then each message is due at the next 09:00 in the customer's zone (UTC by default)
    due = dict(Message.objects.values_list("customer_id", "next_attempt_at"))
    assert due[london.pk] == dt.datetime(2026, 3, 11, 9, 0, tzinfo=dt.UTC)
    assert due[tokyo.pk] == dt.datetime(2026, 3, 11, 0, 0, tzinfo=dt.UTC)
    assert due[unknown.pk] == dt.datetime(2026, 3, 11, 9, 0, tzinfo=dt.UTC)


def test_pause_resume_and_cancel(topic, backends):
    # given a throttled campaign with everything still queued
    for _ in range(6):
        granted_customer(topic)
    campaign = a_campaign(variants=1, throttle_per_minute=60)
    campaign_send(campaign_id=campaign.pk, actor="ann", now=NOW)
    # when it is paused, the tick finds nothing to send
    assert campaign_pause(campaign_id=campaign.pk, actor="ann") == 6
    assert messages_tick(now=NOW + dt.timedelta(hours=1)).swept == 0
    assert Message.objects.filter(status=MessageStatus.DEFERRED).count() == 6
    # when it is resumed, the messages are due again
    assert campaign_resume(campaign_id=campaign.pk, actor="ann", now=NOW) == 6
    assert Message.objects.filter(status=MessageStatus.QUEUED).count() == 6
    # when it is cancelled, nothing is left to send and it cannot be resumed
    assert campaign_cancel(campaign_id=campaign.pk, actor="ann") == 6
    assert Message.objects.filter(status=MessageStatus.SKIPPED).count() == 6
    with pytest.raises(CampaignError):
        campaign_resume(campaign_id=campaign.pk, actor="ann")
    statuses = list(
        CampaignStatusChange.objects.filter(campaign=campaign).values_list("to_status", flat=True)
    )
    assert statuses == ["sending", "paused", "sending", "cancelled"]
    assert backends.envelopes == []


def test_a_scheduled_campaign_starts_when_due_and_finishes_when_all_is_sent(topic):
    # given a campaign scheduled for one o'clock
    granted_customer(topic)
    campaign = a_campaign(
        variants=1, schedule=Campaign.Schedule.AT, send_at=NOW + dt.timedelta(hours=1)
    )
    assert campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW) == "scheduled"
    # when the tick runs before and at that time
    assert campaigns_tick(now=NOW).started == 0
    assert campaigns_tick(now=NOW + dt.timedelta(hours=1)).started == 1
    assert Message.objects.count() == 1
    # when its message is sent, the next tick marks it sent
    Message.objects.update(status=MessageStatus.SENT)
    assert campaigns_tick(now=NOW + dt.timedelta(hours=2)).finished == 1
    assert Campaign.objects.get().status == Campaign.Status.SENT


def test_results_per_variant_with_uplift_over_the_holdout_and_a_winner(topic):
    # given a sent A/B campaign with a holdout and a conversion event
    customers = [granted_customer(topic) for _ in range(200)]
    campaign = a_campaign(
        holdout=25, conversion_event="Order Completed", pick_winner=True, test_window_hours=1
    )
    campaign_send(campaign_id=campaign.pk, actor="ann", now=NOW)
    Message.objects.filter(variant__in=["A", "B"]).update(
        status=MessageStatus.DELIVERED, sent_at=NOW
    )
    clicked_a = list(Message.objects.filter(variant="A").order_by("pk")[:20])
    Message.objects.filter(pk__in=[m.pk for m in clicked_a]).update(status=MessageStatus.CLICKED)
    # every A recipient who clicked converted; nobody in the holdout did
    created = Message.objects.filter(pk__in=[m.pk for m in clicked_a]).values_list(
        "customer_id", "created_at"
    )
    Event.objects.bulk_create(
        Event(
            customer_id=customer_id,
            type="track",
            name="Order Completed",
            timestamp=created_at + dt.timedelta(hours=1),
            message_id=f"conv-{customer_id}",
        )
        for customer_id, created_at in created
    )
    # when the results are read
    results = {r.variant: r for r in campaign_results(campaign=campaign)}
    # then each variant's counts are exact and A beats the holdout with high confidence
    a, b, holdout = results["A"], results["B"], results["holdout"]
    assert a.recipients + b.recipients + holdout.recipients == len(customers)
    assert (a.clicked, a.converted, b.converted, holdout.converted) == (20, 20, 0, 0)
    assert a.opened == 20 and a.delivered == a.recipients
    assert a.uplift == pytest.approx(20 / a.recipients)
    assert a.confidence > 0.99
    assert holdout.sent == 0 and holdout.uplift is None
    # and after the test window the tick names A the winner on clicks
    assert campaigns_tick(now=NOW + dt.timedelta(hours=1)).winners == 1
    assert Campaign.objects.get().winner == "A"


def test_two_proportion_confidence():
    assert two_proportion_confidence(successes_a=0, total_a=0, successes_b=1, total_b=2) is None
    assert two_proportion_confidence(
        successes_a=50, total_a=100, successes_b=50, total_b=100
    ) == pytest.approx(0.0)
    assert two_proportion_confidence(
        successes_a=60, total_a=100, successes_b=40, total_b=100
    ) == pytest.approx(0.9953, abs=1e-3)


def test_each_customer_s_variant_is_the_one_its_bucket_falls_in(topic):
    import hashlib

    # given 200 customers and a campaign of three variants weighted 1, 2 and 3, a 10%
    # holdout, and an automatic winner tested on half of the audience
    customers = [granted_customer(topic) for _ in range(200)]
    campaign = a_campaign(holdout=10, variants=0, pick_winner=True, test_percent=50)
    version = campaign.template.versions.get()
    for key, weight in (("A", 1), ("B", 2), ("C", 3)):
        CampaignVariant.objects.create(
            campaign=campaign, key=key, template_version=version, weight=weight
        )
    # when it is sent
    campaign_send(campaign_id=campaign.pk, actor="ann", now=NOW)
    # then each row's variant is the first whose upper bound is above the customer's bucket
    bounds = variant_bounds(
        holdout_percent=10, weights=[("A", 1), ("B", 2), ("C", 3)], test_percent=50
    )
    expected = {}
    for customer in customers:
        seed = f"campaign:{campaign.pk}:{customer.pk}".encode()
        digest = hashlib.md5(seed, usedforsecurity=False).hexdigest()  # as the SQL does
        bucket = int(digest[:8], 16) % 10_000
        if bucket < 1_000:
            expected[customer.pk] = "holdout"
        elif bucket >= bounds[-1][1]:
            expected[customer.pk] = "rest"
        else:
            expected[customer.pk] = next(key for key, bound in bounds if bound > bucket)
    got = dict(
        Message.objects.filter(campaign_id=campaign.pk).values_list("customer_id", "variant")
    )
    assert got == expected
    assert set(got.values()) == {"holdout", "rest", "A", "B", "C"}
