"""Item recommendations from item-to-item similarity of co-purchase and co-view behaviour.

Each customer's interactions form a row: 1 for an item they bought, ``VIEW_WEIGHT`` for one
they only viewed. Items are similar when the same customers interact with them (cosine of
the item columns). A customer's candidates are scored by their similarity to what the
customer interacted with; items the customer already bought are never recommended.
"""

import datetime as dt
import io
import json
import logging
import time

import joblib
import numpy as np
from django.db import connection, transaction
from django.utils import timezone
from scipy import sparse

from segments.ml.features import ORDER_EVENT
from segments.ml.training import ModelTrainingError, model_version_store
from segments.models import CustomerRecommendation, ModelVersion

logger = logging.getLogger(__name__)

VIEW_EVENT = "Product Viewed"
VIEW_WEIGHT = 0.3
WINDOW_DAYS = 365
TOP_N = 10
CHUNK = 5_000
# The product fields kept with each recommended item, for templates.
ITEM_FIELDS = ("name", "url", "price", "image_url", "category", "brand")

# One row per product mentioned by an event: ``product_id`` on the event itself (Product
# Viewed) or in its ``products`` list (Order Completed), as Segment's e-commerce spec sends.
_MENTIONS = """
    SELECT e.customer_id, e.name, e.timestamp, item.value AS item
    FROM customers_event e
    CROSS JOIN LATERAL (
        SELECT e.properties AS value WHERE e.properties ? 'product_id'
        UNION ALL
        SELECT value FROM jsonb_array_elements(
            CASE WHEN jsonb_typeof(e.properties -> 'products') = 'array'
                 THEN e.properties -> 'products' ELSE '[]'::jsonb END
        )
    ) AS item
    WHERE e.name = ANY(%s) AND e.timestamp <= %s AND e.timestamp > %s
      AND item.value ->> 'product_id' IS NOT NULL
"""


def _interactions(*, now: dt.datetime) -> tuple[list[tuple[int, str, bool]], dict[str, dict]]:
    params = [[VIEW_EVENT, ORDER_EVENT], now, now - dt.timedelta(days=WINDOW_DAYS)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT customer_id, item ->> 'product_id', bool_or(name = %s)
            FROM ({_MENTIONS}) AS mention
            GROUP BY 1, 2 ORDER BY 1, 2
            """,  # noqa: S608 - a fixed subquery; values are params
            [ORDER_EVENT, *params],
        )
        pairs = cursor.fetchall()
        # The latest description of each product.
        cursor.execute(
            f"""
            SELECT DISTINCT ON (item ->> 'product_id') item ->> 'product_id', item
            FROM ({_MENTIONS}) AS mention
            ORDER BY item ->> 'product_id', timestamp DESC
            """,  # noqa: S608 - a fixed subquery; values are params
            params,
        )
        described = {}
        for product_id, item in cursor.fetchall():
            item = json.loads(item) if isinstance(item, str) else item
            described[product_id] = {field: item[field] for field in ITEM_FIELDS if field in item}
    return pairs, described


def recommendations_train(
    *, now: dt.datetime | None = None, top_n: int = TOP_N, activate: bool = True
) -> ModelVersion:
    """Compute item similarities from the last year's views and orders, store them as a
    model version and (if activated) each customer's top ``top_n`` items."""
    now = now or timezone.now()
    started = time.perf_counter()
    pairs, described = _interactions(now=now)
    customer_ids = sorted({customer_id for customer_id, _, _ in pairs})
    items = sorted({product_id for _, product_id, _ in pairs})
    if len(items) < 2:
        raise ModelTrainingError(
            f"recommendations need at least 2 viewed or bought products; there are {len(items)}"
        )
    row_of = {customer_id: row for row, customer_id in enumerate(customer_ids)}
    column_of = {product_id: column for column, product_id in enumerate(items)}
    rows = [row_of[customer_id] for customer_id, _, _ in pairs]
    columns = [column_of[product_id] for _, product_id, _ in pairs]
    weights = [1.0 if bought else VIEW_WEIGHT for _, _, bought in pairs]
    shape = (len(customer_ids), len(items))
    interactions = sparse.csr_matrix((weights, (rows, columns)), shape=shape)
    bought = sparse.csr_matrix(
        ([1.0 if was_bought else 0.0 for _, _, was_bought in pairs], (rows, columns)), shape=shape
    )
    norms = np.sqrt(np.asarray(interactions.multiply(interactions).sum(axis=0))).ravel()
    normalised = interactions @ sparse.diags(1 / np.where(norms > 0, norms, 1))
    similarity = (normalised.T @ normalised).toarray()
    np.fill_diagonal(similarity, 0)

    recommended: list[tuple[int, list[dict]]] = []
    for start in range(0, len(customer_ids), CHUNK):
        chunk = slice(start, start + CHUNK)
        scores = np.asarray(interactions[chunk] @ similarity)
        scores[bought[chunk].toarray() > 0] = 0
        for offset, row in enumerate(scores):
            best = [column for column in np.argsort(-row, kind="stable")[:top_n] if row[column] > 0]
            if best:
                recommended.append(
                    (
                        customer_ids[start + offset],
                        [
                            {
                                "product_id": items[column],
                                "score": round(float(row[column]), 4),
                                **described.get(items[column], {}),
                            }
                            for column in best
                        ],
                    )
                )
    metrics = {
        "customers": len(customer_ids),
        "items": len(items),
        "interactions": len(pairs),
        "customers_with_recommendations": len(recommended),
    }
    with transaction.atomic():
        model = model_version_store(
            kind=ModelVersion.Kind.RECOMMENDATIONS,
            activate=activate,
            parameters={
                "as_of": now.isoformat(),
                "window_days": WINDOW_DAYS,
                "view_weight": VIEW_WEIGHT,
                "top_n": top_n,
                "estimator": "item-to-item cosine similarity of views and orders",
            },
            features=[VIEW_EVENT, ORDER_EVENT],
            metrics=metrics,
            trained_at=now,
            training_seconds=round(time.perf_counter() - started, 3),
            # The item similarities, so a version can be inspected or reused.
            artefact=_artefact(items, similarity),
        )
        if activate:
            _store(model, recommended, now)
    logger.info("recommendations trained", extra={"version": model.version, **metrics})
    return model


def _artefact(items: list[str], similarity: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    joblib.dump({"items": items, "similarity": similarity}, buffer)
    return buffer.getvalue()


def _store(model: ModelVersion, recommended: list[tuple[int, list[dict]]], now: dt.datetime):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO segments_customerrecommendation
                (customer_id, model_version_id, items, computed_at)
            SELECT r.customer_id, %s, r.items::jsonb, %s
            FROM unnest(%s::bigint[], %s::text[]) AS r(customer_id, items)
            ON CONFLICT (customer_id) DO UPDATE SET
                model_version_id = EXCLUDED.model_version_id,
                items = EXCLUDED.items,
                computed_at = EXCLUDED.computed_at
            """,
            [
                model.pk,
                now,
                [customer_id for customer_id, _ in recommended],
                [json.dumps(items) for _, items in recommended],
            ],
        )
    # A customer with nothing to recommend now keeps no stale list of an older version.
    CustomerRecommendation.objects.exclude(model_version=model).delete()
