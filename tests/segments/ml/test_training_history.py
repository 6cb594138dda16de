"""Propensity models on a young installation: windows longer than the history before the
training rows are left out, and scoring and drift read exactly the model's own features."""

import datetime as dt

import numpy as np
import pytest
from django.core.management import call_command

from customers.models import Customer
from segments.ml.features import customer_features, feature_names, model_feature_names
from segments.ml.training import model_drift_check, model_features, model_load, model_train
from segments.models import CustomerScore, ModelVersion
from segments.services.scores import scores_refresh
from tests.segments.factories import NOW, CustomerFactory, EventFactory
from tests.segments.ml.population import NAMES, generate

pytestmark = pytest.mark.django_db

# With 30 days of history: the 90-day windows, and the all-time count (a copy of the 30-day one).
LEFT_OUT_AT_30_DAYS = {name for name in feature_names(NAMES) if "_90d" in name} | {"events_total"}


@pytest.fixture
def young():
    # 90 days of history: the training rows (as of now - 60 days) see only 30 of them.
    return generate(now=NOW, days=90)


def test_windows_longer_than_the_history_are_left_out():
    # given 30 days of history (and 29 and a half: a first day that is not a whole one)
    for days in (30, 29.5):
        # when the model's features are chosen
        kept = model_feature_names(event_names=NAMES, history_days=days)
        # then the 90-day windows and the all-time count are out, the rest stays in order
        assert kept == [name for name in feature_names(NAMES) if name not in LEFT_OUT_AT_30_DAYS]
        assert {"recency_days", "tenure_days", "orders_365d", "monetary_365d"} <= set(kept)
        assert "count_30d:Page Viewed" in kept


def test_a_week_of_history_keeps_only_the_week():
    kept = model_feature_names(event_names=["Page Viewed"], history_days=8)

    assert kept == [
        "recency_days", "tenure_days", "orders_365d", "monetary_365d", "events_7d",
        "count_7d:Page Viewed",
    ]  # fmt: skip


def test_more_history_than_every_window_keeps_every_feature():
    for days in (90.5, 180, 400):
        assert model_feature_names(event_names=NAMES, history_days=days) == feature_names(NAMES)


def test_a_model_trained_on_a_short_history_does_not_use_longer_windows(young):
    # when a purchase model trains on 90 days of history
    model = model_train(kind="purchase", now=NOW)
    every = feature_names(model.parameters["event_names"])

    # then it uses no window longer than the 30 days before its training rows
    left_out = LEFT_OUT_AT_30_DAYS
    assert 29 < model.parameters["history_days"] <= 30
    assert model.parameters["lifetime_days"] == 30
    assert set(model.parameters["features_left_out"]) == left_out
    assert model.features == [name for name in every if name not in left_out]
    assert set(model.feature_importances) == set(model.features)
    assert set(model.feature_summary) == set(model.features)
    assert model_load(model).n_features_in_ == len(model.features)
    assert model.metrics["roc_auc"] > 0.6


def test_scoring_and_drift_use_the_models_own_features(young):
    # given a model trained without the 90-day windows, and 90 days of history by now
    model = model_train(kind="churn", now=NOW)
    everything = customer_features(
        as_of=NOW,
        event_names=model.parameters["event_names"],
        lifetime_days=model.parameters["lifetime_days"],
    )
    assert len(everything.names) > len(model.features)

    # when every customer is scored and the drift checked
    scored = scores_refresh(kind="churn", now=NOW)
    drift = model_drift_check(model=model, now=NOW)

    # then the scores are the model's prediction on exactly its columns, lifetime bound too
    assert scored == Customer.objects.count() == 240
    expected = model_load(model).predict_proba(everything.columns(model.features).values)[:, 1]
    stored = dict(CustomerScore.objects.filter(kind="churn").values_list("customer_id", "score"))
    assert np.allclose([stored[int(pk)] for pk in everything.customer_ids], expected)
    # and drift compares the model's features only
    assert set(drift) == set(model.features)


def test_a_model_trained_on_a_long_history_keeps_every_window():
    generate(now=NOW, days=240, customers=120)

    model = model_train(kind="churn", now=NOW)

    assert model.parameters["history_days"] > 150
    assert model.parameters["features_left_out"] == []
    assert model.features == feature_names(model.parameters["event_names"])


def test_the_command_says_which_features_were_left_out(young, capsys):
    call_command("segments_train", "churn", "--as-of", NOW.isoformat())

    out = capsys.readouterr().out
    assert out.startswith("churn v1: ROC AUC ")
    assert "left out 5 features: the 30 days of history before the training rows" in out
    assert "events_90d" in out


def test_lifetime_counts_look_back_only_as_far_as_the_training_history():
    # given a customer with orders 10 and 80 days ago, and a model trained on 30 days
    anna = CustomerFactory(first_seen=NOW - dt.timedelta(days=100))
    EventFactory(customer=anna, timestamp=NOW - dt.timedelta(days=10), properties={"revenue": 5})
    EventFactory(customer=anna, timestamp=NOW - dt.timedelta(days=80), properties={"revenue": 7})
    model = ModelVersion.objects.create(
        kind="purchase",
        version=1,
        trained_at=NOW,
        artefact=b"",
        parameters={"event_names": [], "lifetime_days": 30},
        features=["monetary_365d", "orders_365d", "recency_days"],
    )

    # when its features are computed for scoring
    features = model_features(model=model, as_of=NOW, customer_ids=[anna.pk])

    # then only the order inside those 30 days counts, in the model's column order
    assert features.names == ["monetary_365d", "orders_365d", "recency_days"]
    assert features.values.tolist() == [[5.0, 1.0, pytest.approx(10)]]
    unbounded = customer_features(as_of=NOW, event_names=[], customer_ids=[anna.pk])
    row = dict(zip(unbounded.names, unbounded.values[0], strict=True))
    assert (row["orders_365d"], row["monetary_365d"], row["events_total"]) == (2, 12, 2)


@pytest.mark.django_db
def test_the_history_starts_at_the_earliest_customer_event_before_the_moment():
    from segments.ml.features import history_days

    # given events of three names, an internal event earlier than all of them, and an
    # event after the moment asked about
    customer = CustomerFactory()
    day = dt.timedelta(days=1)
    EventFactory(customer=customer, name="Segment Entered", timestamp=NOW - 400 * day)
    EventFactory(customer=customer, name="Page Viewed", timestamp=NOW - 40 * day)
    EventFactory(customer=customer, name="Order Completed", timestamp=NOW - 55 * day)
    EventFactory(customer=customer, name="Product Viewed", timestamp=NOW - 10 * day)
    EventFactory(customer=customer, name="Account Opened", timestamp=NOW + 5 * day)
    # then the history is counted from the earliest customer event before it
    assert history_days(as_of=NOW) == pytest.approx(55)
    assert history_days(as_of=NOW - 50 * day) == pytest.approx(5)
    assert history_days(as_of=NOW - 60 * day) == 0
