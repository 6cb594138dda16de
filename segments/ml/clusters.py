"""Customer clusters: K-Means on standardised features, k chosen by silhouette.

Each cluster is described in words by its most distinctive features: the z-score of the
cluster's mean against everyone (features are standardised, so that is the mean of the
scaled values in the cluster).
"""

import datetime as dt
import io
import logging
import time

import joblib
import numpy as np
from django.db import connection, transaction
from django.utils import timezone
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from segments.ml.features import customer_features, frequent_event_names
from segments.ml.training import (
    SCORE_CHUNK,
    THREADS,
    ModelTrainingError,
    customer_id_ranges,
    model_version_store,
)
from segments.models import CustomerCluster, ModelVersion

logger = logging.getLogger(__name__)

K_RANGE = (2, 8)
# Silhouette is quadratic in rows: above this many customers it is computed on a sample.
SILHOUETTE_SAMPLE = 3_000
# Features named in a cluster's description, and the |z| below which one is not distinctive.
DESCRIBED_FEATURES = 3
MIN_DISTINCTIVE_Z = 0.25


def cluster_describe(*, names: list[str], centre_z: np.ndarray) -> tuple[str, dict[str, float]]:
    """Words for a cluster from its mean z-scores: the few features furthest from average."""
    order = np.argsort(-np.abs(centre_z))[:DESCRIBED_FEATURES]
    distinctive = {
        names[index]: round(float(centre_z[index]), 2)
        for index in order
        if abs(centre_z[index]) >= MIN_DISTINCTIVE_Z
    }
    if not distinctive:
        return "average on every feature", distinctive
    words = [
        f"{'high' if z > 0 else 'low'} {name} ({z:+.1f} sd)" for name, z in distinctive.items()
    ]
    return ", ".join(words), distinctive


def clusters_train(
    *,
    now: dt.datetime | None = None,
    k_range: tuple[int, int] = K_RANGE,
    random_state: int = 0,
    activate: bool = True,
) -> ModelVersion:
    """Cluster every customer seen by ``now``, store the model version with each cluster's
    description, and (if activated) every customer's cluster."""
    now = now or timezone.now()
    started = time.perf_counter()
    event_names = frequent_event_names(as_of=now)
    features = customer_features(as_of=now, event_names=event_names)
    low, high = k_range
    rows = len(features.customer_ids)
    high = min(high, rows - 1)
    if low < 2 or high < low:
        raise ModelTrainingError(
            f"clustering needs at least {max(low, 2) + 1} customers and k from 2; "
            f"there are {rows} customers"
        )
    scaler = StandardScaler()
    scaled = scaler.fit_transform(features.values)
    silhouettes: dict[int, float] = {}
    fitted: dict[int, KMeans] = {}
    with threadpool_limits(THREADS):
        for k in range(low, high + 1):
            kmeans = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit(scaled)
            if len(set(kmeans.labels_)) < 2:
                continue
            silhouettes[k] = float(
                silhouette_score(
                    scaled,
                    kmeans.labels_,
                    sample_size=min(rows, SILHOUETTE_SAMPLE),
                    random_state=random_state,
                )
            )
            fitted[k] = kmeans
    if not silhouettes:
        raise ModelTrainingError("every customer has the same features: nothing to cluster")
    best = max(silhouettes, key=lambda k: (round(silhouettes[k], 6), -k))
    kmeans = fitted[best]
    assignments = kmeans.labels_
    clusters = []
    for cluster in range(best):
        members = assignments == cluster
        description, distinctive = cluster_describe(
            names=features.names, centre_z=scaled[members].mean(axis=0)
        )
        clusters.append(
            {
                "cluster": cluster,
                "size": int(members.sum()),
                "description": description,
                "distinctive": distinctive,
            }
        )
    metrics = {
        "k": best,
        "silhouette": round(silhouettes[best], 4),
        "silhouette_by_k": {str(k): round(value, 4) for k, value in silhouettes.items()},
        "rows": rows,
        "clusters": clusters,
    }
    buffer = io.BytesIO()
    joblib.dump(Pipeline([("scale", scaler), ("model", kmeans)]), buffer)

    with transaction.atomic():
        model = model_version_store(
            kind=ModelVersion.Kind.CLUSTERS,
            activate=activate,
            parameters={
                "as_of": now.isoformat(),
                "event_names": event_names,
                "k_range": [low, k_range[1]],
                "estimator": "StandardScaler + KMeans (k by silhouette)",
                "random_state": random_state,
            },
            features=features.names,
            metrics=metrics,
            trained_at=now,
            training_seconds=round(time.perf_counter() - started, 3),
            artefact=buffer.getvalue(),
        )
        if activate:
            _assign(model, features.customer_ids, assignments, now)
    logger.info("clusters trained", extra={"version": model.version, "k": best})
    return model


def clusters_assign(*, now: dt.datetime | None = None, chunk_size: int = SCORE_CHUNK) -> int:
    """Put every customer seen by ``now`` (new ones too) in the nearest cluster of the
    active clustering; return how many were assigned.

    Customers are taken a range of ids at a time (one feature query, one prediction, one
    upsert each), so memory stays the same however many there are; all of it is one
    transaction, so segments never see half a reassignment.
    """
    model = ModelVersion.objects.filter(kind=ModelVersion.Kind.CLUSTERS, is_active=True).first()
    if model is None:
        raise ModelTrainingError("no active clusters model: train one first")
    now = now or timezone.now()
    pipeline = joblib.load(io.BytesIO(bytes(model.artefact)))
    assigned = 0
    with transaction.atomic():
        for ids in customer_id_ranges(chunk_size=chunk_size):
            features = customer_features(
                as_of=now, event_names=model.parameters["event_names"], customer_ids=ids
            )
            if not len(features.customer_ids):
                continue
            with threadpool_limits(THREADS):
                assignments = pipeline.predict(features.values)
            _upsert(model, features.customer_ids, assignments, now)
            assigned += len(features.customer_ids)
        # Customers not in this clustering keep no stale cluster of an older version.
        CustomerCluster.objects.exclude(model_version=model).delete()
    return assigned


def _assign(
    model: ModelVersion, customer_ids: np.ndarray, assignments: np.ndarray, now: dt.datetime
) -> None:
    """Replace every customer's cluster with this version's."""
    _upsert(model, customer_ids, assignments, now)
    # Customers not in this clustering (seen later) keep no stale cluster of an older version.
    CustomerCluster.objects.exclude(model_version=model).delete()


def _upsert(
    model: ModelVersion, customer_ids: np.ndarray, assignments: np.ndarray, now: dt.datetime
) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO segments_customercluster (customer_id, model_version_id, cluster, assigned_at)
            SELECT a.customer_id, %s, a.cluster, %s
            FROM unnest(%s::bigint[], %s::int[]) AS a(customer_id, cluster)
            ON CONFLICT (customer_id) DO UPDATE SET
                model_version_id = EXCLUDED.model_version_id,
                cluster = EXCLUDED.cluster,
                assigned_at = EXCLUDED.assigned_at
            """,
            [model.pk, now, customer_ids.tolist(), assignments.tolist()],
        )


def customer_cluster(*, customer_id: int) -> dict | None:
    """A customer's cluster and its description, for templates and previews."""
    assignment = CustomerCluster.objects.filter(customer_id=customer_id).first()
    if assignment is None:
        return None
    # Only the metrics: the version's artefact is not needed here.
    metrics = ModelVersion.objects.values_list("metrics", flat=True).get(
        pk=assignment.model_version_id
    )
    described = {cluster["cluster"]: cluster["description"] for cluster in metrics["clusters"]}
    return {"cluster": assignment.cluster, "description": described.get(assignment.cluster, "")}
