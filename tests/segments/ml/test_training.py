import datetime as dt

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from sklearn.inspection import permutation_importance

from customers.models import Customer, Event
from segments.ml.features import customer_features, frequent_event_names
from segments.ml.training import ModelTrainingError, model_load, model_train
from segments.models import CustomerCluster, CustomerScore, ModelVersion, SegmentMembership
from segments.services.definitions import segment_create
from segments.services.scores import scores_refresh
from tests.segments.factories import NOW, CustomerFactory, EventFactory
from tests.segments.ml.population import generate

pytestmark = pytest.mark.django_db


@pytest.fixture
def population():
    return generate(now=NOW)


def test_features_are_computed_in_sql_as_of_a_moment():
    anna = CustomerFactory(first_seen=NOW - dt.timedelta(days=50))
    EventFactory(customer=anna, timestamp=NOW - dt.timedelta(days=2), properties={"revenue": 30})
    EventFactory(customer=anna, timestamp=NOW - dt.timedelta(days=40), properties={"total": 12.5})
    EventFactory(customer=anna, name="Page Viewed", timestamp=NOW - dt.timedelta(days=10))
    EventFactory(customer=anna, name="Segment Entered", timestamp=NOW - dt.timedelta(days=1))

    features = customer_features(as_of=NOW, event_names=["Page Viewed"])
    row = dict(zip(features.names, features.values[0], strict=True))

    assert features.customer_ids.tolist() == [anna.pk]
    assert row["recency_days"] == pytest.approx(2)
    assert row["tenure_days"] == pytest.approx(50)
    assert (row["orders_365d"], row["monetary_365d"], row["events_total"]) == (2, 42.5, 3)
    assert (row["events_7d"], row["events_30d"], row["events_90d"]) == (1, 2, 3)
    assert (row["count_7d:Page Viewed"], row["count_30d:Page Viewed"]) == (0, 1)


def test_features_never_see_events_after_their_moment(population):
    as_of = NOW - dt.timedelta(days=30)
    names = frequent_event_names(as_of=as_of)
    before = customer_features(as_of=as_of, event_names=names)

    # Everything after as_of could be label data: adding more of it changes nothing.
    Event.objects.bulk_create(
        Event(
            customer_id=customer_id,
            type="track",
            name="Order Completed",
            timestamp=as_of + dt.timedelta(seconds=1),
            message_id=f"future-{customer_id}",
        )
        for customer_id in population[:50]
    )
    after = customer_features(as_of=as_of, event_names=names)

    assert np.array_equal(before.values, after.values)
    assert frequent_event_names(as_of=as_of) == names


def test_a_churn_model_trains_on_a_time_split_and_beats_chance(population):
    model = model_train(kind="churn", now=NOW)

    assert (model.kind, model.version, model.is_active) == ("churn", 1, True)
    assert model.metrics["roc_auc"] > 0.75
    assert model.metrics["pr_auc"] > model.metrics["base_rate"]
    assert 0 < model.metrics["brier"] < 0.25
    assert model.metrics["training_rows"] == 240
    assert len(model.metrics["calibration"]) >= 5
    assert model.parameters["train_as_of"] == (NOW - dt.timedelta(days=60)).isoformat()
    assert model.parameters["holdout_as_of"] == (NOW - dt.timedelta(days=30)).isoformat()
    assert set(model.feature_importances) == set(model.features)
    assert max(model.feature_importances, key=model.feature_importances.get) in {
        "recency_days", "events_30d", "events_90d", "events_7d", "count_30d:Page Viewed", "count_90d:Page Viewed",
    }  # fmt: skip
    assert model_load(model).predict_proba(np.zeros((1, len(model.features)))).shape == (1, 2)


def test_feature_importances_are_computed_once_per_training(population, monkeypatch):
    # given a spy on scikit-learn's permutation importance (a second pass, whose result was
    # thrown away, cost about 1.2 s of CPU per model on the demo store)
    from segments.ml import training

    calls = []

    def counted(*args, **kwargs):
        calls.append(kwargs["scoring"])
        return permutation_importance(*args, **kwargs)

    monkeypatch.setattr(training, "permutation_importance", counted)
    # when a model trains
    model = model_train(kind="purchase", now=NOW)
    # then the importances come from one pass over the holdout
    assert calls == ["roc_auc"]
    assert set(model.feature_importances) == set(model.features)


def test_a_new_version_takes_over(population):
    first = ModelVersion.objects.create(
        kind="purchase", version=1, trained_at=NOW, artefact=b"", is_active=True
    )
    second = model_train(kind="purchase", now=NOW)

    first.refresh_from_db()
    assert (first.version, first.is_active, second.version, second.is_active) == (1, False, 2, True)


def test_too_little_data_is_refused_and_nothing_is_stored():
    CustomerFactory.create_batch(3)

    with pytest.raises(ModelTrainingError, match="at least 5 of each are needed"):
        model_train(kind="churn", now=NOW)

    assert ModelVersion.objects.count() == 0


def test_scoring_stores_each_customers_score_and_moves_score_segments(population):
    model = model_train(kind="churn", now=NOW)
    at_risk = segment_create(
        key="at-risk",
        name="At risk",
        rules={"score": {"model": "churn", "op": "above", "value": 0.5}},
    )

    scored = scores_refresh(kind="churn", now=NOW)

    assert scored == Customer.objects.count() == 240
    assert CustomerScore.objects.filter(kind="churn", model_version=model).count() == 240
    high = CustomerScore.objects.filter(kind="churn", score__gt=0.5).count()
    assert 0 < high < 240
    assert SegmentMembership.objects.filter(segment=at_risk, exited_at=None).count() == high


def test_the_commands_train_and_score(population, capsys):
    call_command("segments_train", "churn", "--as-of", NOW.isoformat())
    call_command("segments_score", "churn", "--as-of", NOW.isoformat())

    out = capsys.readouterr().out
    assert out.startswith("churn v1: ROC AUC ")
    assert "scored 240 customers with the active churn model" in out


def test_the_commands_fail_with_one_line(capsys):
    with pytest.raises(CommandError, match="no active purchase model: train one first"):
        call_command("segments_score", "purchase")
    with pytest.raises(CommandError, match="at least 5 of each are needed"):
        call_command("segments_train", "churn")
    with pytest.raises(CommandError, match="needs a time zone offset"):
        call_command("segments_train", "churn", "--as-of", "2026-03-10T12:00:00")
    assert Event.objects.count() == 0


def test_the_scheduled_tasks_train_what_has_data_and_score_active_models(population):
    from segments.tasks import models_score_task, models_train_task

    # The schedule runs at wall-clock time, long after the generated history: no recent
    # activity means one class only, so propensity training is skipped rather than failing;
    # the orders carry no products, so recommendations are skipped too; clusters train.
    assert models_train_task.delay().get() == 1
    assert list(ModelVersion.objects.values_list("kind", flat=True)) == ["clusters"]
    ModelVersion.objects.create(kind="churn", version=1, trained_at=NOW, artefact=b"")
    # An inactive churn version scores nobody; the active clusters take in all 240 customers.
    assert models_score_task.delay().get() == 240
    assert CustomerScore.objects.count() == 0
    assert CustomerCluster.objects.count() == 240


def test_the_admin_shows_metrics_importances_and_calibration_and_activates(
    admin_client, population
):
    first = model_train(kind="churn", now=NOW)
    second = model_train(kind="churn", now=NOW, random_state=3)

    page = admin_client.get(f"/admin/segments/modelversion/{first.pk}/change/")
    listing = admin_client.get("/admin/segments/modelversion/")
    activated = admin_client.post(
        "/admin/segments/modelversion/",
        {"action": "activate", "_selected_action": [first.pk]},
        follow=True,
    )

    assert page.status_code == 200
    assert len(page.context["importance_bars"]) == len(first.features)
    assert len(page.context["calibration"]["points"]) == len(first.metrics["calibration"])
    assert "<rect" in page.content.decode() and "<circle" in page.content.decode()
    assert str(first.metrics["roc_auc"]) in listing.content.decode()
    assert [str(message) for message in activated.context["messages"]] == ["Active now: churn v1."]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_active, second.is_active) == (True, False)


def test_drift_compares_todays_features_with_training(population, admin_client):
    from segments.ml.training import model_drift_check

    model = model_train(kind="churn", now=NOW)
    train_as_of = NOW - dt.timedelta(days=60)

    same_moment = model_drift_check(model=model, now=train_as_of)
    assert set(same_moment) == set(model.features)
    assert not any(result["drifted"] for result in same_moment.values())

    # Sixty days on, every customer is sixty days older: tenure has clearly moved.
    later = model_drift_check(model=model, now=NOW)
    assert later["tenure_days"]["drifted"] is True
    assert later["tenure_days"]["statistic"] > 0.5
    model.refresh_from_db()
    assert (model.drift, model.drift_checked_at) == (later, NOW)
    page = admin_client.get(f"/admin/segments/modelversion/{model.pk}/change/").content.decode()
    assert "consider retraining" in page


def test_top_percent_of_a_score_after_scoring(population):
    model_train(kind="churn", now=NOW)
    top = segment_create(
        key="top-churn",
        name="Top 10% churn risk",
        rules={"score": {"model": "churn", "op": "top_percent", "value": 10}},
    )

    scores_refresh(kind="churn", now=NOW)

    threshold = sorted(CustomerScore.objects.values_list("score", flat=True))[-24]
    chosen = SegmentMembership.objects.filter(segment=top, exited_at=None)
    # 10% of 240 is 24, more only when scores tie at the edge.
    assert chosen.count() >= 24
    assert set(chosen.values_list("customer_id", flat=True)) == set(
        CustomerScore.objects.filter(score__gte=threshold).values_list("customer_id", flat=True)
    )
