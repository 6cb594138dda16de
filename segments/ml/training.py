"""Training propensity models on a time-based split, and scoring customers with them.

Two windows of ``horizon`` days end at ``now``. Training rows are features as of
``now - 2 * horizon`` with labels from the next horizon; holdout rows are features as of
``now - horizon`` with labels from the last horizon. Features only see events up to their
``as_of`` and labels only events after it, so nothing of the holdout's future reaches the
model.

When the history before the training rows is shorter than a feature's window, that feature
is left out (``model_feature_names``); a version records the features it uses in
``ModelVersion.features``, and scoring and the drift check read exactly those columns.
"""

import datetime as dt
import io
import logging
import time
from collections.abc import Iterator

import joblib
import numpy as np
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from segments.ml.features import (
    FeatureMatrix,
    customer_features,
    feature_names,
    frequent_event_names,
    history_days,
    labels,
    lifetime_days,
    model_feature_names,
)
from segments.models import PROPENSITY_KINDS, CustomerScore, ModelVersion

logger = logging.getLogger(__name__)

SCORE_CHUNK = 20_000
MIN_ROWS_PER_CLASS = 5
# Training values kept per feature to test today's distribution against.
DRIFT_SAMPLE = 500
# Customers whose features are compared with training on each drift check.
DRIFT_CUSTOMERS = 5_000
# Below this p-value a feature is reported as drifted.
DRIFT_P_VALUE = 0.01
# One thread per process: workers scale out by processes, and BLAS/OpenMP threads
# competing for busy cores slow everything down.
THREADS = 1


class ModelTrainingError(ValueError):
    pass


def _pipeline(random_state: int) -> Pipeline:
    # Plain gradient boosting, not the histogram variant: the latter's OpenMP prediction
    # loop cost ~0.6 ms per tree per call on busy cores, which made calibration and
    # permutation importance take tens of seconds on a few hundred customers.
    booster = GradientBoostingClassifier(
        n_estimators=100, learning_rate=0.08, max_depth=3, subsample=0.8, random_state=random_state
    )
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("model", CalibratedClassifierCV(booster, method="sigmoid", cv=3)),
        ]
    )


def model_train(
    *,
    kind: str,
    now: dt.datetime | None = None,
    horizon_days: int = 30,
    random_state: int = 0,
    activate: bool = True,
) -> ModelVersion:
    """Train a new version of a propensity model, record its holdout metrics, and (by
    default) make it the active one."""
    if kind not in PROPENSITY_KINDS:
        raise ModelTrainingError(
            f"unknown propensity model kind {kind}; choose from {', '.join(PROPENSITY_KINDS)}"
        )
    now = now or timezone.now()
    started = time.perf_counter()
    horizon = dt.timedelta(days=horizon_days)
    holdout_as_of = now - horizon
    train_as_of = holdout_as_of - horizon
    event_names = frequent_event_names(as_of=train_as_of)
    history = history_days(as_of=train_as_of)
    names = model_feature_names(event_names=event_names, history_days=history)
    lifetime = lifetime_days(history)
    train = customer_features(
        as_of=train_as_of, event_names=event_names, lifetime_days=lifetime
    ).columns(names)
    train_labels = labels(
        kind=kind, customer_ids=train.customer_ids, start=train_as_of, horizon_days=horizon_days
    )
    holdout = customer_features(
        as_of=holdout_as_of, event_names=event_names, lifetime_days=lifetime
    ).columns(names)
    holdout_labels = labels(
        kind=kind, customer_ids=holdout.customer_ids, start=holdout_as_of, horizon_days=horizon_days
    )
    for name, target in (("training", train_labels), ("holdout", holdout_labels)):
        positives = int(target.sum())
        if positives < MIN_ROWS_PER_CLASS or len(target) - positives < MIN_ROWS_PER_CLASS:
            raise ModelTrainingError(
                f"the {name} window has {positives} positive and {len(target) - positives} "
                f"negative customers; at least {MIN_ROWS_PER_CLASS} of each are needed"
            )

    pipeline = _pipeline(random_state)
    with threadpool_limits(THREADS):
        pipeline.fit(train.values, train_labels)
        predicted = pipeline.predict_proba(holdout.values)[:, 1]
        importance = permutation_importance(
            pipeline, holdout.values, holdout_labels, scoring="roc_auc", n_repeats=3,
            random_state=random_state,
        )  # fmt: skip
    observed, mean_predicted = calibration_curve(
        holdout_labels, predicted, n_bins=10, strategy="quantile"
    )
    metrics = {
        "roc_auc": round(float(roc_auc_score(holdout_labels, predicted)), 4),
        "pr_auc": round(float(average_precision_score(holdout_labels, predicted)), 4),
        "brier": round(float(brier_score_loss(holdout_labels, predicted)), 4),
        "base_rate": round(float(holdout_labels.mean()), 4),
        "training_rows": len(train_labels),
        "holdout_rows": len(holdout_labels),
        "calibration": [
            [round(float(p), 4), round(float(o), 4)]
            for p, o in zip(mean_predicted, observed, strict=True)
        ],
    }
    importances = {
        name: round(float(value), 4)
        for name, value in sorted(
            zip(train.names, importance.importances_mean, strict=True), key=lambda pair: -pair[1]
        )
    }
    rows = np.random.default_rng(random_state).permutation(len(train.values))[:DRIFT_SAMPLE]
    summary = {
        name: {
            "quantiles": [
                round(float(q), 4)
                for q in np.quantile(train.values[:, column], [0, 0.25, 0.5, 0.75, 1])
            ],
            "sample": [round(float(value), 4) for value in train.values[rows, column]],
        }
        for column, name in enumerate(train.names)
    }
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)

    with transaction.atomic():
        # Versions are numbered per kind; the lock keeps two trainings from taking one number.
        ModelVersion.objects.select_for_update().filter(kind=kind).exists()
        version = (
            ModelVersion.objects.filter(kind=kind).aggregate(top=Max("version"))["top"] or 0
        ) + 1
        model = ModelVersion.objects.create(
            kind=kind,
            version=version,
            parameters={
                "horizon_days": horizon_days,
                "train_as_of": train_as_of.isoformat(),
                "holdout_as_of": holdout_as_of.isoformat(),
                "event_names": event_names,
                "history_days": round(history, 1),
                "lifetime_days": lifetime,
                "features_left_out": [
                    name for name in feature_names(event_names) if name not in names
                ],
                "estimator": "StandardScaler + GradientBoosting, sigmoid-calibrated (3-fold)",
                "random_state": random_state,
            },
            features=train.names,
            metrics=metrics,
            feature_importances=importances,
            feature_summary=summary,
            trained_at=now,
            training_seconds=round(time.perf_counter() - started, 3),
            artefact=buffer.getvalue(),
        )
        if activate:
            model_activate(model=model)
    logger.info(
        "model trained", extra={"kind": kind, "version": version, "roc_auc": metrics["roc_auc"]}
    )
    return model


def model_version_store(*, kind: str, activate: bool, **fields) -> ModelVersion:
    """Store a new version of ``kind`` with the next number; call inside a transaction."""
    # Versions are numbered per kind; the lock keeps two trainings from taking one number.
    ModelVersion.objects.select_for_update().filter(kind=kind).exists()
    version = (ModelVersion.objects.filter(kind=kind).aggregate(top=Max("version"))["top"] or 0) + 1
    model = ModelVersion.objects.create(kind=kind, version=version, **fields)
    if activate:
        model_activate(model=model)
    return model


@transaction.atomic
def model_activate(*, model: ModelVersion) -> ModelVersion:
    """Make this version the one that scores customers of its kind."""
    ModelVersion.objects.filter(kind=model.kind, is_active=True).exclude(pk=model.pk).update(
        is_active=False
    )
    ModelVersion.objects.filter(pk=model.pk).update(is_active=True)
    model.is_active = True
    return model


def model_features(
    *, model: ModelVersion, as_of: dt.datetime, customer_ids: list[int]
) -> FeatureMatrix:
    """The features of ``customer_ids`` as of ``as_of`` that ``model`` was trained on, in
    its column order and with its lifetime bound (every feature, unbounded, for a version
    that recorded neither)."""
    features = customer_features(
        as_of=as_of,
        event_names=model.parameters["event_names"],
        customer_ids=customer_ids,
        lifetime_days=model.parameters.get("lifetime_days"),
    )
    return features.columns(model.features) if model.features else features


def model_load(model: ModelVersion) -> Pipeline:
    # The artefact is written by model_train in this installation's own database.
    return joblib.load(io.BytesIO(bytes(model.artefact)))


def customer_id_ranges(*, chunk_size: int) -> Iterator[list[int]]:
    """Every customer id, in consecutive ranges of ``chunk_size`` ids (gaps included): the
    unit in which customers are scored, so memory stays the same however many there are."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM customers_customer")
        low, high = cursor.fetchone()
    if low is None:
        return
    for start in range(low, high + 1, chunk_size):
        yield list(range(start, min(start + chunk_size, high + 1)))


def customers_score(
    *, kind: str, now: dt.datetime | None = None, chunk_size: int = SCORE_CHUNK
) -> int:
    """Score every customer with the active model of ``kind``; return how many were scored.

    Each chunk is one feature query, one prediction and one upsert.
    """
    model = ModelVersion.objects.filter(kind=kind, is_active=True).first()
    if model is None:
        raise ModelTrainingError(f"no active {kind} model: train one first")
    now = now or timezone.now()
    pipeline = model_load(model)
    scored = 0
    for ids in customer_id_ranges(chunk_size=chunk_size):
        features = model_features(model=model, as_of=now, customer_ids=ids)
        if not len(features.customer_ids):
            continue
        with threadpool_limits(THREADS):
            scores = pipeline.predict_proba(features.values)[:, 1]
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO segments_customerscore
                    (customer_id, kind, model_version_id, score, percentile, scored_at)
                SELECT s.customer_id, %s, %s, s.score, 0, %s
                FROM unnest(%s::bigint[], %s::float8[]) AS s(customer_id, score)
                ON CONFLICT (kind, customer_id) DO UPDATE SET
                    model_version_id = EXCLUDED.model_version_id,
                    score = EXCLUDED.score,
                    scored_at = EXCLUDED.scored_at
                """,
                [kind, model.pk, now, features.customer_ids.tolist(), scores.tolist()],
            )
        scored += len(features.customer_ids)
    with connection.cursor() as cursor:
        # Percentiles over everyone scored of this kind, for "top N percent" rules.
        cursor.execute(
            """
            UPDATE segments_customerscore s SET percentile = ranked.percentile
            FROM (
                SELECT id, cume_dist() OVER (ORDER BY score) AS percentile
                FROM segments_customerscore WHERE kind = %s
            ) AS ranked
            WHERE s.id = ranked.id
            """,
            [kind],
        )
    logger.info(
        "customers scored", extra={"kind": kind, "version": model.version, "customers": scored}
    )
    return scored


def model_drift_check(*, model: ModelVersion, now: dt.datetime | None = None) -> dict:
    """Compare today's feature distributions with training (two-sample Kolmogorov-Smirnov
    on a random sample of customers), store the result with the model and return it."""
    from scipy.stats import ks_2samp

    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM customers_customer WHERE first_seen <= %s ORDER BY random() LIMIT %s",
            [now, DRIFT_CUSTOMERS],
        )
        sample_ids = [row[0] for row in cursor.fetchall()]
    today = model_features(model=model, as_of=now, customer_ids=sample_ids)
    drift = {}
    for column, name in enumerate(today.names):
        training = (model.feature_summary.get(name) or {}).get("sample") or []
        if not training or not len(today.values):
            continue
        result = ks_2samp(training, today.values[:, column])
        drift[name] = {
            "statistic": round(float(result.statistic), 4),
            "p_value": round(float(result.pvalue), 6),
            "drifted": bool(result.pvalue < DRIFT_P_VALUE),
        }
    ModelVersion.objects.filter(pk=model.pk).update(drift=drift, drift_checked_at=now)
    model.drift, model.drift_checked_at = drift, now
    return drift


def customer_scores(*, customer_id: int) -> dict[str, float]:
    """A customer's latest scores by kind, for templates and previews."""
    return dict(CustomerScore.objects.filter(customer_id=customer_id).values_list("kind", "score"))
