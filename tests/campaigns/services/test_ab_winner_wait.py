"""The A/B winner waits for its test: no pick while test messages are unsent, the window
counted from the last one sent, and a cap so that it never waits forever."""

import datetime as dt

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from campaigns.models import Campaign, CampaignStatusChange, Message, MessageStatus
from campaigns.selectors_broadcasts import winner_wait
from campaigns.services.broadcasts import WAITING_FOR_WINNER, campaign_start, campaigns_tick
from tests.campaigns.services.conftest import NOW, granted_customer
from tests.campaigns.services.test_ab_winner import HOUR, ab_campaign, engage, send_due, subjects

pytestmark = pytest.mark.django_db
MINUTE = dt.timedelta(minutes=1)
# Tomorrow and the day after, 09:00 in London (GMT in March), as UTC.
TOMORROW_9 = dt.datetime(2026, 3, 11, 9, tzinfo=dt.UTC)
DAY_AFTER_9 = dt.datetime(2026, 3, 12, 9, tzinfo=dt.UTC)


def test_a_local_time_test_still_going_out_when_the_window_ends_delays_the_pick(
    backends, topic, django_capture_on_commit_callbacks, time_machine
):
    # given readers in London and New York, and an A/B test on half of them sent at 09:00
    # local time, started at noon UTC: New York's test is due at 13:00 UTC today (09:00
    # EDT), London's tomorrow at 09:00
    time_machine.move_to(NOW, tick=False)
    for zone in ["Europe/London"] * 16 + ["America/New_York"] * 16:
        granted_customer(topic, timezone=zone)
    campaign, _, version_b = ab_campaign(
        holdout=0,
        test_percent=50,
        schedule=Campaign.Schedule.LOCAL_TIME,
        local_time=dt.time(9),
    )
    campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW)
    messages = Message.objects.filter(campaign_id=campaign.pk)
    tested = messages.filter(variant__in=["A", "B"])
    london_test = tested.filter(customer__timezone="Europe/London")
    rest = messages.filter(variant="rest")
    assert london_test.count() > 0 and tested.count() > london_test.count()
    assert rest.count() == 32 - tested.count() > 0
    # when New York's test messages go out and the window counted from the start ends
    send_due(NOW + HOUR, time_machine, django_capture_on_commit_callbacks)
    assert tested.filter(status=MessageStatus.SENT).count() == tested.count() - london_test.count()
    assert set(london_test.values_list("status", flat=True)) == {MessageStatus.QUEUED}
    # then the tick picks nothing: London's test messages are still queued
    assert campaigns_tick(now=NOW + HOUR).winners == 0
    assert campaigns_tick(now=TOMORROW_9 - MINUTE).winners == 0
    assert rest.filter(failure_reason=WAITING_FOR_WINNER).count() == rest.count()
    # when London's go out the next morning, and their readers of B click
    send_due(TOMORROW_9, time_machine, django_capture_on_commit_callbacks)
    assert tested.filter(status=MessageStatus.SENT, sent_at__isnull=False).count() == (
        tested.count()
    )
    engage(opened_variant="A", clicked_variant="B")
    # then the window counts from the last test message sent: nothing before 10:00
    assert campaigns_tick(now=TOMORROW_9 + HOUR - MINUTE).winners == 0
    assert Campaign.objects.get().winner == ""
    # and the tick at 10:00 picks B on clicks, over the whole test
    assert campaigns_tick(now=TOMORROW_9 + HOUR).winners == 1
    campaign.refresh_from_db()
    assert (campaign.winner, campaign.winner_picked_at) == ("B", TOMORROW_9 + HOUR)
    audit = CampaignStatusChange.objects.get(campaign=campaign, data__has_key="winner")
    assert audit.data["unsent"] == 0 and audit.data["at_cap"] is False
    assert audit.data["last_sent_at"] == TOMORROW_9.isoformat()
    # when the rest's local nine o'clock comes, every one of them gets B, once
    sent_before = len(backends.envelopes)
    send_due(DAY_AFTER_9, time_machine, django_capture_on_commit_callbacks)
    assert set(rest.values_list("status", "template_version_id")) == {
        (MessageStatus.SENT, version_b.pk)
    }
    assert subjects(backends.envelopes[sent_before:]) == ["Version B"] * rest.count()
    assert len(backends.envelopes) == 32


@override_settings(CAMPAIGN_WINNER_MAX_WAIT_HOURS=2)
def test_test_messages_that_never_go_out_delay_the_pick_only_up_to_the_cap(topic):
    # given an A/B test whose test messages stay queued (nothing dispatches them)
    for _ in range(20):
        granted_customer(topic)
    campaign, *_ = ab_campaign()
    campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW)
    unsent = Message.objects.filter(variant__in=["A", "B"], status=MessageStatus.QUEUED).count()
    assert unsent > 0
    # when the ticks run after the window but before the cap (1 h window + 2 h), no pick
    assert campaigns_tick(now=NOW + HOUR).winners == 0
    assert campaigns_tick(now=NOW + 3 * HOUR - MINUTE).winners == 0
    assert not CampaignStatusChange.objects.filter(data__has_key="winner").exists()
    # when the cap is reached, the winner is picked on what was sent, and the audit says so
    assert campaigns_tick(now=NOW + 3 * HOUR).winners == 1
    audit = CampaignStatusChange.objects.get(campaign=campaign, data__has_key="winner")
    assert audit.data["at_cap"] is True and audit.data["unsent"] == unsent
    assert f"picked at the 2 h cap with {unsent} test messages not sent" in audit.reason
    assert not Message.objects.filter(failure_reason=WAITING_FOR_WINNER).exists()


# Hypothesis takes naive bounds; the values it draws are in UTC.
moments = st.datetimes(
    min_value=dt.datetime(2026, 1, 1),  # noqa: DTZ001
    max_value=dt.datetime(2026, 12, 31),  # noqa: DTZ001
    timezones=st.just(dt.UTC),
)


@given(
    started_at=moments,
    hours=st.integers(0, 72),
    unsent=st.integers(0, 5),
    sent_after=st.one_of(st.none(), st.timedeltas(dt.timedelta(0), dt.timedelta(days=5))),
    max_wait=st.integers(0, 96),
)
def test_the_pick_is_never_before_the_window_nor_after_the_cap(
    started_at, hours, unsent, sent_after, max_wait
):
    last_sent_at = None if sent_after is None else started_at + sent_after
    wait = winner_wait(
        started_at=started_at,
        test_window_hours=hours,
        unsent=unsent,
        last_sent_at=last_sent_at,
        max_wait_hours=max_wait,
    )
    window = dt.timedelta(hours=hours)
    cap = started_at + window + dt.timedelta(hours=max_wait)
    assert started_at + window <= wait.pick_at <= cap == wait.cap_at
    if unsent:
        # something still to send: only the cap ends the wait
        assert (wait.window_ends_at, wait.pick_at, wait.at_cap) == (None, cap, True)
    else:
        # all out: a full window after the last send, unless that passes the cap
        ends = (last_sent_at or started_at) + window
        assert wait.window_ends_at == ends
        assert wait.pick_at == min(ends, cap)
        assert wait.at_cap == (ends > cap)
    assert not wait.due(wait.pick_at - dt.timedelta(microseconds=1))
    assert wait.due(wait.pick_at)
