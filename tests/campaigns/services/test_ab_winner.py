"""The automatic A/B winner: a test group, a window, a winner on the metric, the rest."""

import datetime as dt
import email
import email.policy
import threading

import pytest
from django.db import connection

from campaigns.models import (
    Campaign,
    CampaignStatusChange,
    CampaignVariant,
    Message,
    MessageStatus,
)
from campaigns.selectors_broadcasts import VariantResult, winner_choose
from campaigns.services.broadcasts import (
    WAITING_FOR_WINNER,
    CampaignError,
    campaign_pause,
    campaign_pick_winner,
    campaign_resume,
    campaign_start,
    campaigns_tick,
)
from campaigns.services.dispatch import messages_tick
from tests.campaigns.factories import TemplateContentFactory
from tests.campaigns.services.conftest import NOW, granted_customer, published_version

pytestmark = pytest.mark.django_db
HOUR = dt.timedelta(hours=1)


def ab_campaign(*, metric="clicked", holdout=10, test_percent=40, **fields):
    """Variants A and B: two published versions of one template, told apart by subject."""
    version_a = published_version(subject="Version A")
    version_b = TemplateContentFactory(
        version__template=version_a.template, subject="Version B"
    ).version
    version_b.published_at = version_a.published_at
    version_b.save(update_fields=["published_at"])
    campaign = Campaign.objects.create(
        name=fields.pop("name", "Spring sale"),
        template=version_a.template,
        topic_key="news",
        holdout_percent=holdout,
        pick_winner=True,
        test_percent=test_percent,
        test_window_hours=1,
        winner_metric=metric,
        **fields,
    )
    for key, version in (("A", version_a), ("B", version_b)):
        CampaignVariant.objects.create(
            campaign=campaign, key=key, template_version=version, weight=1
        )
    return campaign, version_a, version_b


def subjects(envelopes):
    return [
        email.message_from_bytes(envelope.content, policy=email.policy.default)["Subject"]
        for envelope in envelopes
    ]


def send_due(at, time_machine, capture):
    """The dispatch tick at ``at`` (the clock there too, so sent_at is ``at``): sends what is
    due, in this process, to the test's SMTP sink."""
    time_machine.move_to(at, tick=False)
    with capture(execute=True):
        messages_tick(now=at)


def engage(*, opened_variant, clicked_variant):
    """Every reader of one variant opened it; a quarter of the other's (one at least) clicked."""
    Message.objects.filter(variant=opened_variant).update(status=MessageStatus.OPENED)
    clicked = list(
        Message.objects.filter(variant=clicked_variant).order_by("pk").values_list("pk", flat=True)
    )
    Message.objects.filter(pk__in=clicked[: max(1, len(clicked) // 4)]).update(
        status=MessageStatus.CLICKED
    )


@pytest.mark.parametrize(("metric", "winner"), [("clicked", "B"), ("opened", "A")])
def test_after_the_window_the_winner_on_the_metric_goes_to_the_rest_once(
    backends, topic, django_capture_on_commit_callbacks, time_machine, metric, winner
):
    # given 50 consenting customers and an A/B test on 40% of those outside a 10% holdout
    time_machine.move_to(NOW, tick=False)
    for _ in range(50):
        granted_customer(topic)
    campaign, version_a, version_b = ab_campaign(metric=metric)
    with django_capture_on_commit_callbacks(execute=True):
        campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW)
    rows = Message.objects.filter(campaign_id=campaign.pk)
    tested = rows.filter(variant__in=["A", "B"])
    rest = rows.filter(variant="rest")
    counts = {v: rows.filter(variant=v).count() for v in ("A", "B", "holdout", "rest")}
    assert sum(counts.values()) == 50
    assert min(counts.values()) > 0
    # then only the test group was sent; the rest waits, with no due time
    assert len(backends.envelopes) == tested.count()
    assert set(tested.values_list("status", flat=True)) == {MessageStatus.SENT}
    assert set(rest.values_list("status", "failure_reason", "next_attempt_at")) == {
        (MessageStatus.DEFERRED, WAITING_FOR_WINNER, None)
    }
    # given A's readers opened more and B's clicked more
    engage(opened_variant="A", clicked_variant="B")
    # when the ticks run inside the window, nothing is picked and the rest stays put
    with django_capture_on_commit_callbacks(execute=True):
        assert campaigns_tick(now=NOW + HOUR / 2).winners == 0
        messages_tick(now=NOW + HOUR / 2)
    assert rest.filter(status=MessageStatus.DEFERRED).count() == counts["rest"]
    assert len(backends.envelopes) == tested.count()
    # when the tick runs once the window is over
    with django_capture_on_commit_callbacks(execute=True):
        assert campaigns_tick(now=NOW + HOUR).winners == 1
    # then the winner on the chosen metric is named and every one of the rest got it
    campaign.refresh_from_db()
    assert (campaign.winner, campaign.winner_picked_at) == (winner, NOW + HOUR)
    winning = version_a if winner == "A" else version_b
    assert set(rest.values_list("status", "template_version_id")) == {
        (MessageStatus.SENT, winning.pk)
    }
    rest_subjects = subjects(backends.envelopes[tested.count() :])
    assert rest_subjects == [f"Version {winner}"] * counts["rest"]
    audit = CampaignStatusChange.objects.get(campaign=campaign, data__winner=winner)
    assert audit.data["metric"] == metric and audit.data["rest"] == counts["rest"]
    assert set(audit.data["rates"]) == {"A", "B"}
    # and the holdout never got anything
    assert set(rows.filter(variant="holdout").values_list("status", flat=True)) == {"skipped"}
    # when the ticks run again, nothing more is picked or sent
    sent = len(backends.envelopes)
    with django_capture_on_commit_callbacks(execute=True):
        assert campaigns_tick(now=NOW + 2 * HOUR).winners == 0
        messages_tick(now=NOW + 2 * HOUR)
    assert campaign_pick_winner(campaign_id=campaign.pk, actor="ann", now=NOW + 3 * HOUR) is None
    assert len(backends.envelopes) == sent == 50 - counts["holdout"]
    assert (
        CampaignStatusChange.objects.filter(campaign=campaign, data__has_key="winner").count() == 1
    )


def test_a_paused_campaign_picks_no_winner_until_resumed_and_its_test_sent(
    backends, topic, django_capture_on_commit_callbacks, time_machine
):
    # given a started A/B test, paused before its test messages went out
    for _ in range(20):
        granted_customer(topic)
    campaign, *_ = ab_campaign()
    campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW)
    campaign_pause(campaign_id=campaign.pk, actor="ann")
    # when the window passes while paused, no winner is picked and the rest keeps waiting
    assert campaigns_tick(now=NOW + 2 * HOUR).winners == 0
    waiting = Message.objects.filter(variant="rest", failure_reason=WAITING_FOR_WINNER)
    assert waiting.count() == Message.objects.filter(variant="rest").count() > 0
    # when it is resumed, its test messages are due again: no winner while they are queued
    campaign_resume(campaign_id=campaign.pk, actor="ann", now=NOW + 2 * HOUR)
    assert campaigns_tick(now=NOW + 2 * HOUR).winners == 0
    # when the dispatch tick sends them, the window counts from then
    send_due(NOW + 2 * HOUR, time_machine, django_capture_on_commit_callbacks)
    tested = Message.objects.filter(variant__in=["A", "B"])
    assert set(tested.values_list("status", "sent_at")) == {(MessageStatus.SENT, NOW + 2 * HOUR)}
    assert campaigns_tick(now=NOW + 3 * HOUR - dt.timedelta(seconds=1)).winners == 0
    assert waiting.count() > 0
    assert campaigns_tick(now=NOW + 3 * HOUR).winners == 1
    assert waiting.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_ticks_at_once_pick_one_winner_and_send_the_rest_once(backends, topic, time_machine):
    # given an A/B test whose window has ended (everything committed, the test sent)
    time_machine.move_to(NOW, tick=False)
    for _ in range(30):
        granted_customer(topic)
    campaign, *_ = ab_campaign(test_percent=50)
    campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW)
    assert not Message.objects.filter(variant__in=["A", "B"], sent_at__isnull=True).exists()
    before = len(backends.envelopes)
    rest = Message.objects.filter(variant="rest").count()
    assert rest > 0
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def tick():
        try:
            barrier.wait()
            reports.append(campaigns_tick(now=NOW + HOUR))
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    # when two ticks run at the same instant, each on its own connection
    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then one winner was picked and each of the rest received exactly one email
    assert errors == []
    assert sorted(report.winners for report in reports) == [0, 1]
    assert len(backends.envelopes) - before == rest
    assert Message.objects.filter(variant="rest", status=MessageStatus.SENT).count() == rest
    assert CampaignStatusChange.objects.filter(data__has_key="winner").count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pick_winner": False}, "test_percent"),
        ({"test_percent": 0}, "test_percent"),
        ({"schedule": Campaign.Schedule.RECURRING, "cron": "0 9 * * 1"}, "test_percent"),
    ],
)
def test_a_test_share_that_cannot_work_is_refused_and_nothing_is_written(topic, change, field):
    granted_customer(topic)
    campaign, *_ = ab_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(**change)
    with pytest.raises(CampaignError) as refused:
        campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW)
    assert refused.value.field == field
    assert Message.objects.count() == 0
    assert Campaign.objects.get().status == Campaign.Status.DRAFT


def test_a_test_share_needs_two_variants(topic):
    granted_customer(topic)
    campaign, *_ = ab_campaign()
    campaign.variants.filter(key="B").delete()
    with pytest.raises(CampaignError, match="at least two variants"):
        campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW)
    assert Message.objects.count() == 0


def result(variant, *, sent, opened=0, clicked=0, converted=0, recipients=None):
    return VariantResult(
        variant=variant,
        recipients=sent if recipients is None else recipients,
        sent=sent,
        delivered=sent,
        opened=opened,
        clicked=clicked,
        converted=converted,
    )


def test_the_winner_rule_best_rate_then_more_sent_then_the_first_variant():
    # the best rate on the metric wins, whatever the other metrics say
    results = [
        result("A", sent=100, opened=60, clicked=5),
        result("B", sent=100, opened=20, clicked=9),
    ]
    assert winner_choose(results=results, metric="clicked") == ("B", "best rate")
    assert winner_choose(results=results, metric="opened") == ("A", "best rate")
    # a tie on the rate goes to the larger sample
    tie = [result("A", sent=50, clicked=5), result("B", sent=100, clicked=10)]
    assert winner_choose(results=tie, metric="clicked") == (
        "B",
        "tie on the rate: more messages sent",
    )
    # a tie on both goes to the first variant by key, in whatever order they come
    even = [result("B", sent=10, clicked=1), result("A", sent=10, clicked=1)]
    assert winner_choose(results=even, metric="clicked")[0] == "A"
    # no opens at all is a tie at zero
    assert (
        winner_choose(results=[result("B", sent=10), result("A", sent=9)], metric="opened")[0]
        == "B"
    )
    # conversions are counted on recipients, not sends
    converted = [
        result("A", sent=10, recipients=10, converted=2),
        result("B", sent=5, recipients=20, converted=3),
    ]
    assert winner_choose(results=converted, metric="converted")[0] == "A"


def test_the_winner_rule_with_no_data_names_the_first_variant_and_ignores_holdout_and_rest():
    results = [
        result("holdout", sent=0, recipients=10, converted=5),
        result("rest", sent=50, clicked=50),
        result("B", sent=0, recipients=5),
        result("A", sent=0, recipients=5),
    ]
    assert winner_choose(results=results, metric="clicked") == (
        "A",
        "no data: nothing was sent, the first variant wins",
    )
    assert winner_choose(results=results[:2], metric="clicked") == ("", "no variants")
    # a variant nobody was drawn for (a tiny test group) is one with no data
    assert winner_choose(results=results[:2], metric="clicked", keys=["B", "A"])[0] == "A"


@pytest.mark.parametrize(
    ("fields", "test_sent_at", "expected_due"),
    [
        # 60 a minute: the test is out within the minute, the rest one a second from the pick
        (
            {"throttle_per_minute": 60},
            NOW + dt.timedelta(minutes=1),
            lambda picked, position: picked + dt.timedelta(seconds=position),
        ),
        # 09:00 in London: the test goes out the next morning (GMT in March), the pick an
        # hour later, so the rest gets it at nine the morning after
        (
            {"schedule": Campaign.Schedule.LOCAL_TIME, "local_time": dt.time(9)},
            dt.datetime(2026, 3, 11, 9, tzinfo=dt.UTC),
            lambda picked, position: dt.datetime(2026, 3, 12, 9, tzinfo=dt.UTC),
        ),
    ],
)
def test_the_rest_of_a_throttled_or_local_time_campaign_is_due_as_its_schedule_says(
    backends,
    topic,
    django_capture_on_commit_callbacks,
    time_machine,
    fields,
    test_sent_at,
    expected_due,
):
    # given an A/B test that spreads its sends or sends at a local time, its test sent
    for _ in range(20):
        granted_customer(topic)
    campaign, *_ = ab_campaign(**fields)
    campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW)
    send_due(test_sent_at, time_machine, django_capture_on_commit_callbacks)
    assert not Message.objects.filter(variant__in=["A", "B"], sent_at__isnull=True).exists()
    # when the winner is picked after the window
    picked = test_sent_at + HOUR
    report = campaign_pick_winner(campaign_id=campaign.pk, actor="tick", now=picked)
    # then the rest is queued, due as the schedule says, not all at once
    rest = Message.objects.filter(variant="rest").order_by("pk")
    assert report.rest == rest.count() > 0
    assert [m.next_attempt_at for m in rest] == [
        expected_due(picked, i) for i in range(rest.count())
    ]
    assert set(rest.values_list("status", flat=True)) == {MessageStatus.QUEUED}
