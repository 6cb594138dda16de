"""Consent and RFM conditions, through both the SQL compiler and the single-customer evaluator."""

import datetime as dt

import pytest

from consent.models import Topic
from consent.services.ledger import consent_record
from segments.ml.rfm import rfm_refresh
from segments.models import CustomerRFM
from segments.rules import RuleError, rule_dependencies, validate_rule
from segments.rules.rfm import RFM_SEGMENT_NAMES, RFM_SEGMENTS, rfm_segment
from tests.consent.factories import TopicFactory
from tests.segments.factories import NOW, CustomerFactory, EventFactory
from tests.segments.rules.test_operators import matches

pytestmark = pytest.mark.django_db


def consent(state: str, *, topic: str = "news", channel: str = "email") -> dict:
    return {"consent": {"channel": channel, "topic": topic, "state": state}}


def record(customer, action: str, *, topic: str | None = "news", channel: str = "email", at):
    consent_record(
        customer_id=customer.pk, channel=channel, topic_key=topic, action=action,
        source="api", occurred_at=at, now=NOW,
    )  # fmt: skip


# -- consent -----------------------------------------------------------------------------------


def test_consent_state_follows_the_ledger():
    # Given an opt-in topic and customers with every kind of history on it
    TopicFactory(key="news", channels=["email", "sms"])
    TopicFactory(key="confirm", channels=["email"], double_opt_in=True)
    granted, withdrawn, _never = (CustomerFactory(external_id=name) for name in ("g", "w", "n"))
    pending = CustomerFactory(external_id="p")
    record(granted, "grant", at=NOW - dt.timedelta(days=3))
    record(withdrawn, "grant", at=NOW - dt.timedelta(days=3))
    record(withdrawn, "withdraw", at=NOW - dt.timedelta(days=2))
    record(pending, "grant", topic="confirm", at=NOW - dt.timedelta(days=1))

    # Then each state selects exactly its customers, in SQL and in Python
    assert matches(consent("allowed")) == {"g"}
    assert matches(consent("withdrawn")) == {"w"}
    assert matches(consent("no_consent")) == {"n", "p"}
    assert matches(consent("pending_confirmation", topic="confirm")) == {"p"}
    assert matches({"not": consent("allowed")}) == {"w", "n", "p"}
    # Consent is per channel: nobody granted news by SMS
    assert matches(consent("allowed", channel="sms")) == set()


def test_a_channel_wide_withdrawal_silences_the_topic_until_it_is_granted_again():
    TopicFactory(key="news", channels=["email"])
    silenced, regranted = CustomerFactory(external_id="s"), CustomerFactory(external_id="r")
    for customer in (silenced, regranted):
        record(customer, "grant", at=NOW - dt.timedelta(days=5))
        record(customer, "withdraw", topic=None, at=NOW - dt.timedelta(days=4))
    record(regranted, "grant", at=NOW - dt.timedelta(days=3))

    assert matches(consent("withdrawn")) == {"s"}
    assert matches(consent("allowed")) == {"r"}


def test_opt_out_topics_are_allowed_until_withdrawn():
    TopicFactory(key="news", channels=["email"], default=Topic.Default.OPT_OUT)
    CustomerFactory(external_id="quiet")
    record(CustomerFactory(external_id="left"), "withdraw", at=NOW - dt.timedelta(days=1))

    assert matches(consent("allowed")) == {"quiet"}
    assert matches(consent("withdrawn")) == {"left"}


def test_unknown_topic_or_channel_holds_no_state():
    TopicFactory(key="news", channels=["email"])
    CustomerFactory(external_id="a")

    assert matches(consent("no_consent", topic="missing")) == set()
    assert matches(consent("no_consent", channel="push")) == set()
    assert matches({"not": consent("no_consent", topic="missing")}) == {"a"}


def test_consent_conditions_are_recomputed_on_the_schedule():
    dependencies = rule_dependencies(consent("allowed"))

    assert dependencies.consent_topics == {"news"}
    assert dependencies.time_dependent is True


# -- RFM ---------------------------------------------------------------------------------------


def test_the_named_grid_covers_every_score_pair_once():
    cells = [
        (recency, frequency)
        for _, recencies, frequencies in RFM_SEGMENTS
        for recency in recencies
        for frequency in frequencies
    ]

    assert sorted(cells) == [(r, f) for r in range(1, 6) for f in range(1, 6)]
    assert rfm_segment(recency=5, frequency=5) == "champions"
    assert rfm_segment(recency=1, frequency=1) == "hibernating"


def shop() -> None:
    """Five buyers, from the most recent, frequent and big spender to the least, and one
    customer who never ordered."""
    for rank in range(5):
        buyer = CustomerFactory(external_id=f"buyer-{rank}")
        for order in range(5 - rank):
            EventFactory(
                customer=buyer,
                properties={"revenue": 100 * (5 - rank)},
                timestamp=NOW - dt.timedelta(days=1 + 30 * rank + order),
            )
    CustomerFactory(external_id="browser")
    EventFactory(customer=CustomerFactory(external_id="viewer"), name="Product Viewed")


def test_rfm_refresh_scores_buyers_in_quintiles_with_named_segments():
    # Given a shop
    shop()

    # When the scores are refreshed
    scored = rfm_refresh(now=NOW)

    # Then only buyers are scored, best 5 to worst 1, named on the grid
    assert scored == 5
    rows = {
        row.customer.external_id: (
            row.recency_score, row.frequency_score, row.monetary_score, row.segment,
        )
        for row in CustomerRFM.objects.select_related("customer")
    }  # fmt: skip
    assert rows == {
        "buyer-0": (5, 5, 5, "champions"),
        "buyer-1": (4, 4, 4, "loyal"),
        "buyer-2": (3, 3, 3, "need_attention"),
        "buyer-3": (2, 2, 2, "hibernating"),
        "buyer-4": (1, 1, 1, "hibernating"),
    }
    assert CustomerRFM.objects.get(customer__external_id="buyer-0").frequency == 5
    assert CustomerRFM.objects.get(customer__external_id="buyer-0").monetary == 2500


def test_equal_values_share_the_lower_score_and_a_refresh_replaces_every_row():
    for name in ("a", "b"):
        EventFactory(
            customer=CustomerFactory(external_id=name), timestamp=NOW - dt.timedelta(days=2)
        )
    rfm_refresh(now=NOW)
    assert set(CustomerRFM.objects.values_list("frequency_score", flat=True)) == {1}

    assert rfm_refresh(now=NOW) == 2
    assert CustomerRFM.objects.count() == 2


def test_rfm_conditions_select_by_segment_and_by_score():
    shop()
    rfm_refresh(now=NOW)

    assert matches({"rfm": {"segment": "champions"}}) == {"buyer-0"}
    assert matches({"rfm": {"segment": ["loyal", "need_attention"]}}) == {"buyer-1", "buyer-2"}
    assert matches({"rfm": {"recency": {"gte": 4}}}) == {"buyer-0", "buyer-1"}
    assert matches({"rfm": {"monetary": {"lte": 2}, "frequency": {"equals": 1}}}) == {"buyer-4"}
    # A customer without an order has no RFM scores: only not selects them
    assert matches({"not": {"rfm": {"recency": {"gte": 1}}}}) == {"browser", "viewer"}


def test_rfm_conditions_are_recomputed_on_the_schedule():
    dependencies = rule_dependencies({"rfm": {"segment": "champions"}})

    assert dependencies.uses_rfm is True
    assert dependencies.time_dependent is True


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "faults"),
    [
        (
            {"consent": {"channel": "fax", "topic": "", "state": "granted"}},
            {
                "$.consent.channel": "must be one of email, sms, push",
                "$.consent.topic": "must be a topic key (1 to 64 characters)",
                "$.consent.state": "must be one of allowed, no_consent, withdrawn, "
                "pending_confirmation",
            },
        ),
        (
            {"all": [{"consent": {"channel": "email"}}]},
            {
                "$.all[0].consent.topic": "is required",
                "$.all[0].consent.state": "is required",
            },
        ),
        ({"rfm": {}}, {"$.rfm": "must give segment or a score (recency, frequency, monetary)"}),
        (
            {"not": {"rfm": {"segment": "vips"}}},
            {
                "$.not.rfm.segment": f"must be one of {', '.join(RFM_SEGMENT_NAMES)}, "
                "or a non-empty list of them"
            },
        ),
        (
            {"rfm": {"recency": {"gte": 6}}},
            {"$.rfm.recency.gte": "must be a whole score from 1 to 5"},
        ),
        (
            {"rfm": {"frequency": {"gte": 4, "lte": 2}}},
            {"$.rfm.frequency": "gte must not be greater than lte"},
        ),
        ({"rfm": {"monetary": 3}}, {"$.rfm.monetary": "must be an object with gte, lte, equals"}),
        (
            {"rfm": {"score": 3}},
            {
                "$.rfm.score": "is not a known field (expected segment, recency, frequency, monetary)",
            },
        ),
    ],
)
def test_invalid_consent_and_rfm_conditions_are_refused_with_their_path(rule, faults):
    with pytest.raises(RuleError) as refused:
        validate_rule(rule)

    assert refused.value.as_dict() == faults
