"""Consent and RFM segments stay true through the schedule that recomputes time-dependent
segments."""

import datetime as dt

import pytest
from django.core.management import call_command

from consent.models import ConsentState
from consent.services.ledger import consent_record
from customers.models import Customer, Event
from segments.models import CustomerRFM, Segment, SegmentMembership
from segments.services.definitions import SegmentInvalid, segment_create
from segments.services.memberships import segment_recompute, segments_recompute_time_dependent
from tests.consent.factories import TopicFactory
from tests.segments.factories import NOW, CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db


def member_ids(segment: Segment) -> set[str]:
    return set(
        SegmentMembership.objects.filter(segment=segment, exited_at=None).values_list(
            "customer__external_id", flat=True
        )
    )


def test_a_consent_change_is_picked_up_by_the_schedule():
    # Given a segment of newsletter subscribers with one member
    TopicFactory(key="newsletter", channels=["email"])
    anna, bram = CustomerFactory(external_id="anna"), CustomerFactory(external_id="bram")
    consent_record(
        customer_id=anna.pk, channel="email", topic_key="newsletter", action="grant",
        source="api", now=NOW - dt.timedelta(days=1),
    )  # fmt: skip
    segment = segment_create(
        key="subscribers", name="Subscribers",
        rules={"consent": {"channel": "email", "topic": "newsletter", "state": "allowed"}},
    )  # fmt: skip
    segment_recompute(segment=segment, now=NOW)
    assert member_ids(segment) == {"anna"}
    assert Segment.objects.get(pk=segment.pk).is_time_dependent

    # When Anna withdraws, Bram subscribes, and the schedule runs
    for customer, action in ((anna, "withdraw"), (bram, "grant")):
        consent_record(
            customer_id=customer.pk, channel="email", topic_key="newsletter", action=action,
            source="preference_centre", now=NOW,
        )  # fmt: skip
    segments_recompute_time_dependent(now=NOW + dt.timedelta(minutes=15))

    # Then the segment follows
    assert member_ids(segment) == {"bram"}


def test_a_consent_change_moves_the_customer_as_soon_as_it_is_committed(
    django_capture_on_commit_callbacks,
):
    # Given segments of newsletter subscribers and of anyone who left the offers topic
    TopicFactory(key="newsletter", channels=["email"])
    TopicFactory(key="offers", channels=["email"])
    anna = CustomerFactory(external_id="anna")
    subscribers = segment_create(
        key="subscribers", name="Subscribers",
        rules={"consent": {"channel": "email", "topic": "newsletter", "state": "allowed"}},
    )  # fmt: skip
    left_offers = segment_create(
        key="left-offers", name="Left offers",
        rules={"consent": {"channel": "email", "topic": "offers", "state": "withdrawn"}},
    )  # fmt: skip

    # When Anna subscribes to the newsletter (no schedule runs)
    with django_capture_on_commit_callbacks(execute=True):
        consent_record(
            customer_id=anna.pk, channel="email", topic_key="newsletter", action="grant",
            source="preference_centre", now=NOW,
        )  # fmt: skip

    # Then she is in at once, with her entry event
    assert member_ids(subscribers) == {"anna"}
    assert member_ids(left_offers) == set()

    # When she unsubscribes from everything by email
    with django_capture_on_commit_callbacks(execute=True):
        consent_record(
            customer_id=anna.pk, channel="email", topic_key=None, action="withdraw",
            source="one_click_unsubscribe", now=NOW + dt.timedelta(minutes=1),
        )  # fmt: skip

    # Then every consent segment follows
    assert member_ids(subscribers) == set()
    assert member_ids(left_offers) == {"anna"}
    assert Event.objects.filter(name="Segment Exited", customer=anna).count() == 1


def test_a_consent_change_is_recorded_even_when_the_segment_index_cannot_be_built(caplog):
    # Given a dynamic segment whose stored rules are broken (written around the services)
    TopicFactory(key="newsletter", channels=["email"])
    Segment.objects.create(key="broken", name="Broken", rules={})
    anna = CustomerFactory()

    # When Anna unsubscribes
    consent_record(
        customer_id=anna.pk, channel="email", topic_key="newsletter", action="withdraw",
        source="one_click_unsubscribe", now=NOW,
    )  # fmt: skip

    # Then her withdrawal is recorded, and the failure is logged
    assert ConsentState.objects.get(customer_id=anna.pk).action == "withdraw"
    assert "consent segments not looked up" in caplog.text


@pytest.mark.parametrize(
    ("body", "faults"),
    [
        (
            {"channel": "email", "topic": "nope", "state": "allowed"},
            {"$.consent.topic": "there is no consent topic with the key nope"},
        ),
        (
            {"channel": "push", "topic": "newsletter", "state": "allowed"},
            {"$.consent.channel": "topic newsletter is not sent on push (only email)"},
        ),
    ],
)
def test_a_consent_condition_must_name_a_topic_sent_on_the_channel(body, faults):
    TopicFactory(key="newsletter", channels=["email"])

    with pytest.raises(SegmentInvalid) as refused:
        segment_create(key="s", name="S", rules={"consent": body})

    assert refused.value.errors == {"rules": faults}
    assert Segment.objects.count() == 0


def test_the_schedule_refreshes_rfm_before_recomputing_and_recency_fades():
    # Given two buyers, one recent and one from two months ago, and a segment of recent buyers
    for name, days_ago in (("recent", 1), ("older", 60)):
        EventFactory(
            customer=CustomerFactory(external_id=name),
            timestamp=NOW - dt.timedelta(days=days_ago),
        )
    segment = segment_create(
        key="recent-buyers", name="Recent buyers", rules={"rfm": {"recency": {"gte": 5}}}
    )

    # When the schedule runs
    segments_recompute_time_dependent(now=NOW)

    # Then the scores were refreshed and the most recent buyer is in
    assert CustomerRFM.objects.count() == 2
    assert member_ids(segment) == {"recent"}

    # When the other buyer orders again later and the schedule runs again
    EventFactory(
        customer=Customer.objects.get(external_id="older"),
        timestamp=NOW + dt.timedelta(days=2),
    )
    segments_recompute_time_dependent(now=NOW + dt.timedelta(days=3))

    # Then the segment follows the refreshed scores
    assert member_ids(segment) == {"older"}


def test_the_schedule_leaves_rfm_alone_when_no_segment_uses_it():
    EventFactory(customer=CustomerFactory())
    segment_create(
        key="windowed", name="Windowed", rules={"event": {"name": "Visit", "within_days": 3}}
    )

    segments_recompute_time_dependent(now=NOW)

    assert CustomerRFM.objects.count() == 0


def test_the_rfm_command_refreshes_the_scores(capsys):
    EventFactory(customer=CustomerFactory())

    call_command("segments_rfm", "--as-of", NOW.isoformat())

    assert capsys.readouterr().out == "RFM scores refreshed for 1 customers with an order\n"
    assert CustomerRFM.objects.count() == 1
