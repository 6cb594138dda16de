"""Model-based segments: members follow the scores, with stays and events."""

import datetime as dt

import pytest

from customers.models import Event
from segments.ml.training import model_train
from segments.models import CustomerScore, Segment, SegmentMembership
from segments.services.definitions import SegmentInvalid, segment_create
from segments.services.memberships import segments_recompute_time_dependent
from segments.services.scores import scores_refresh
from tests.customers.api_helpers import call
from tests.segments.factories import NOW
from tests.segments.ml.population import generate

pytestmark = pytest.mark.django_db

LATER = NOW + dt.timedelta(days=20)


def members(segment: Segment) -> set[int]:
    return set(
        SegmentMembership.objects.filter(segment=segment, exited_at=None).values_list(
            "customer_id", flat=True
        )
    )


def above(threshold: float) -> set[int]:
    return set(
        CustomerScore.objects.filter(kind="churn", score__gt=threshold).values_list(
            "customer_id", flat=True
        )
    )


def test_membership_follows_each_new_scoring_with_entered_and_exited_events():
    # Given a churn model and a model-based segment on its score
    generate(now=NOW)
    model_train(kind="churn", now=NOW)
    segment = segment_create(
        key="churners", name="Churners", kind=Segment.Kind.MODEL,
        rules={"score": {"model": "churn", "op": "above", "value": 0.5}},
    )  # fmt: skip

    # When customers are scored
    scores_refresh(kind="churn", now=NOW)

    # Then the members are exactly the customers scored above the threshold
    first = members(segment)
    assert first == above(0.5)
    assert 0 < len(first) < 240
    entered = Event.objects.filter(name="Segment Entered", properties__segment_key="churners")
    assert entered.count() == len(first)

    # When they are scored again twenty days on, with no new activity
    scores_refresh(kind="churn", now=LATER)

    # Then the membership moved to the new scores, and each move is one event
    second = members(segment)
    assert second == above(0.5)
    assert second != first
    exited = Event.objects.filter(name="Segment Exited", properties__segment_key="churners")
    assert exited.count() == len(first - second)
    assert entered.count() == len(first) + len(second - first)
    assert Segment.objects.get(pk=segment.pk).member_count == len(second)


def test_a_model_segment_is_not_recomputed_by_the_clock_once_computed():
    segment = segment_create(
        key="buyers", name="Buyers", kind=Segment.Kind.MODEL,
        rules={"score": {"model": "purchase", "op": "top_percent", "value": 5}},
    )  # fmt: skip
    assert segments_recompute_time_dependent(now=NOW) == 1  # never computed yet

    assert segments_recompute_time_dependent(now=NOW) == 0
    assert Segment.objects.get(pk=segment.pk).computed_version == 1


@pytest.mark.parametrize(
    ("rules", "faults"),
    [
        (
            {"trait": {"key": "plan", "op": "exists"}},
            {"$": "a model-based segment is one score or cluster condition"},
        ),
        (
            {"score": {"model": "churn", "op": "above", "value": 2}},
            {"$.score.value": "must be a number from 0 to 1"},
        ),
        ({"cluster": {"in": [0]}}, {"$.cluster": "there is no active clustering: train one first"}),
    ],
)
def test_a_model_segment_must_be_one_valid_model_condition(rules, faults):
    with pytest.raises(SegmentInvalid) as refused:
        segment_create(key="m", name="M", kind=Segment.Kind.MODEL, rules=rules)

    assert refused.value.errors == {"rules": faults}
    assert Segment.objects.count() == 0


def test_the_api_creates_a_model_segment_and_refuses_a_rule_it_cannot_hold(
    client, write_api_key, django_capture_on_commit_callbacks
):
    churners = {"key": "churners", "name": "Churners", "kind": "model"}
    with django_capture_on_commit_callbacks(execute=True):
        created = call(
            client, "post", "/api/v1/segments/", write_api_key,
            {**churners, "rules": {"score": {"model": "churn", "op": "above", "value": 0.8}}},
        )  # fmt: skip
    refused = call(
        client, "post", "/api/v1/segments/", write_api_key,
        {**churners, "key": "planners", "rules": {"trait": {"key": "plan", "op": "exists"}}},
    )  # fmt: skip

    assert created.status_code == 201
    assert Segment.objects.get(key="churners").computed_version == 1
    assert refused.status_code == 400
    assert refused.json() == {
        "rules": {"$": "a model-based segment is one score or cluster condition"}
    }
    assert Segment.objects.count() == 1
