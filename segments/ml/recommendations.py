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
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import joblib
import numpy as np
import orjson
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
# Customers scored and written per batch.
CHUNK = 1_000
# Most similar items kept per item, and items whose similarities are computed at once.
NEIGHBOURS = 200
ITEM_BLOCK = 500
# Interaction rows per fetch from the server-side cursor.
FETCH = 20_000
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


@dataclass
class Interactions:
    """Who interacted with what, as sparse matrices: a row per customer, a column per item."""

    customer_ids: np.ndarray
    items: list[str]
    weights: sparse.csr_matrix  # 1 bought, VIEW_WEIGHT viewed only
    bought: sparse.csr_matrix  # 1 where bought
    count: int


def _interactions(*, now: dt.datetime) -> Interactions:
    """The year's (customer, item, bought) pairs, streamed from a server-side cursor into
    compact arrays: memory grows by a few bytes per pair, not by a Python tuple."""
    params = [[VIEW_EVENT, ORDER_EVENT], now, now - dt.timedelta(days=WINDOW_DAYS)]
    customer_ids, rows, columns = array("q"), array("q"), array("q")
    bought_flags = array("b")
    column_of: dict[str, int] = {}
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            f"""
            SELECT customer_id, item ->> 'product_id', bool_or(name = %s)
            FROM ({_MENTIONS}) AS mention
            GROUP BY 1, 2 ORDER BY 1, 2
            """,  # noqa: S608 - a fixed subquery; values are params
            [ORDER_EVENT, *params],
        )
        while batch := cursor.fetchmany(FETCH):
            for customer_id, product_id, was_bought in batch:
                # Rows come ordered by customer: a new id is the next row.
                if not customer_ids or customer_ids[-1] != customer_id:
                    customer_ids.append(customer_id)
                rows.append(len(customer_ids) - 1)
                column = column_of.get(product_id)
                if column is None:
                    column = column_of[product_id] = len(column_of)
                columns.append(column)
                bought_flags.append(1 if was_bought else 0)
    # Columns in product order, so ties between items break the same way every time.
    items = sorted(column_of)
    rank = np.empty(len(items), dtype=np.int64)
    rank[[column_of[item] for item in items]] = np.arange(len(items))
    shape = (len(customer_ids), len(items))
    row_index = np.frombuffer(rows, dtype=np.int64) if rows else np.zeros(0, dtype=np.int64)
    column_index = (
        rank[np.frombuffer(columns, dtype=np.int64)] if columns else np.zeros(0, dtype=np.int64)
    )
    was_bought = np.frombuffer(bought_flags, dtype=np.int8).astype(bool)
    weights = sparse.csr_matrix(
        (np.where(was_bought, 1.0, VIEW_WEIGHT), (row_index, column_index)), shape=shape
    )
    bought = sparse.csr_matrix(
        (np.ones(int(was_bought.sum())), (row_index[was_bought], column_index[was_bought])),
        shape=shape,
    )
    return Interactions(
        customer_ids=np.frombuffer(customer_ids, dtype=np.int64).copy(),
        items=items,
        weights=weights,
        bought=bought,
        count=len(rows),
    )


def _descriptions(*, now: dt.datetime) -> dict[str, dict]:
    """The latest description of each product (one row per product)."""
    params = [[VIEW_EVENT, ORDER_EVENT], now, now - dt.timedelta(days=WINDOW_DAYS)]
    described = {}
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            f"""
            SELECT DISTINCT ON (item ->> 'product_id') item ->> 'product_id', item
            FROM ({_MENTIONS}) AS mention
            ORDER BY item ->> 'product_id', timestamp DESC
            """,  # noqa: S608 - a fixed subquery; values are params
            params,
        )
        while batch := cursor.fetchmany(FETCH):
            for product_id, item in batch:
                item = json.loads(item) if isinstance(item, str) else item
                described[product_id] = {
                    field: item[field] for field in ITEM_FIELDS if field in item
                }
    return described


def item_similarity(
    weights: sparse.csr_matrix, *, neighbours: int = NEIGHBOURS, block: int = ITEM_BLOCK
) -> sparse.csr_matrix:
    """Cosine similarity of the item columns, keeping each item's ``neighbours`` most
    similar items (ties to the lower column), computed ``block`` items at a time: memory is
    bounded by items times neighbours, never items squared."""
    norms = np.sqrt(np.asarray(weights.multiply(weights).sum(axis=0))).ravel()
    normalised = (weights @ sparse.diags(1 / np.where(norms > 0, norms, 1))).tocsr()
    by_item = normalised.T.tocsr()
    items = weights.shape[1]
    data, indices, indptr = [], [], [0]
    for start in range(0, items, block):
        similar = (by_item[start : start + block] @ normalised).tocsr()
        similar.sort_indices()
        for offset in range(similar.shape[0]):
            low, high = similar.indptr[offset], similar.indptr[offset + 1]
            columns, values = similar.indices[low:high], similar.data[low:high]
            keep = (columns != start + offset) & (values != 0)
            columns, values = columns[keep], values[keep]
            if len(values) > neighbours:
                order = np.lexsort((columns, -values))[:neighbours]
                order.sort()  # back in column order
                columns, values = columns[order], values[order]
            indices.append(columns)
            data.append(values)
            indptr.append(indptr[-1] + len(values))
    return sparse.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0),
            np.concatenate(indices) if indices else np.zeros(0, dtype=np.int32),
            np.array(indptr),
        ),
        shape=(items, items),
    )


def recommend(
    interactions: Interactions,
    similarity: sparse.csr_matrix,
    described: dict[str, dict],
    *,
    top_n: int,
    chunk: int = CHUNK,
) -> Iterator[list[tuple[int, list[dict]]]]:
    """Each customer's best ``top_n`` items not bought, best first (ties in product order),
    ``chunk`` customers at a time; customers with nothing to recommend are left out."""
    items = interactions.items
    for start in range(0, len(interactions.customer_ids), chunk):
        scores = (interactions.weights[start : start + chunk] @ similarity).tocsr()
        # What a customer bought scores exactly 0 (x - x * 1), and is dropped.
        scores = (scores - scores.multiply(interactions.bought[start : start + chunk])).tocsr()
        scores.eliminate_zeros()
        scores.sort_indices()
        recommended = []
        for offset in range(scores.shape[0]):
            low, high = scores.indptr[offset], scores.indptr[offset + 1]
            columns, values = scores.indices[low:high], scores.data[low:high]
            keep = values > 0
            columns, values = columns[keep], values[keep]
            if not len(values):
                continue
            best = np.lexsort((columns, -values))[:top_n]
            recommended.append(
                (
                    int(interactions.customer_ids[start + offset]),
                    [
                        {
                            "product_id": items[columns[index]],
                            "score": round(float(values[index]), 4),
                            **described.get(items[columns[index]], {}),
                        }
                        for index in best
                    ],
                )
            )
        yield recommended


def recommendations_train(
    *, now: dt.datetime | None = None, top_n: int = TOP_N, activate: bool = True
) -> ModelVersion:
    """Compute item similarities from the last year's views and orders, store them as a
    model version and (if activated) each customer's top ``top_n`` items.

    Interactions are streamed into sparse matrices, similarities keep the top
    ``NEIGHBOURS`` per item, and customers are scored and written ``CHUNK`` at a time, so
    memory follows the number of interactions, not customers times items or items squared.
    """
    now = now or timezone.now()
    started = time.perf_counter()
    interactions = _interactions(now=now)
    items = interactions.items
    if len(items) < 2:
        raise ModelTrainingError(
            f"recommendations need at least 2 viewed or bought products; there are {len(items)}"
        )
    described = _descriptions(now=now)
    similarity = item_similarity(interactions.weights)
    metrics = {
        "customers": len(interactions.customer_ids),
        "items": len(items),
        "interactions": interactions.count,
        "customers_with_recommendations": 0,
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
                "neighbours": NEIGHBOURS,
                "estimator": "item-to-item cosine similarity of views and orders",
            },
            features=[VIEW_EVENT, ORDER_EVENT],
            metrics=metrics,
            trained_at=now,
            # The item similarities, so a version can be inspected or reused.
            artefact=_artefact(items, similarity),
        )
        for recommended in recommend(interactions, similarity, described, top_n=top_n):
            metrics["customers_with_recommendations"] += len(recommended)
            if activate:
                _store(model, recommended, now)
        if activate:
            # A customer with nothing to recommend now keeps no stale list of an older version.
            CustomerRecommendation.objects.exclude(model_version=model).delete()
        model.metrics = metrics
        model.training_seconds = round(time.perf_counter() - started, 3)
        ModelVersion.objects.filter(pk=model.pk).update(
            metrics=model.metrics, training_seconds=model.training_seconds
        )
    logger.info("recommendations trained", extra={"version": model.version, **metrics})
    return model


def _artefact(items: list[str], similarity: sparse.csr_matrix) -> bytes:
    buffer = io.BytesIO()
    joblib.dump({"items": items, "similarity": similarity}, buffer)
    return buffer.getvalue()


def _store(model: ModelVersion, recommended: list[tuple[int, list[dict]]], now: dt.datetime):
    """Upsert one batch of customers' lists."""
    if not recommended:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO segments_customerrecommendation
                (customer_id, model_version_id, items, computed_at)
            SELECT (r ->> 0)::bigint, %s, r -> 1, %s
            FROM jsonb_array_elements(%s::jsonb) AS r
            ON CONFLICT (customer_id) DO UPDATE SET
                model_version_id = EXCLUDED.model_version_id,
                items = EXCLUDED.items,
                computed_at = EXCLUDED.computed_at
            """,
            # One JSON document for the batch: a text[] of documents is escaped element
            # by element in Python by the client-side binding, a single string is not.
            [model.pk, now, orjson.dumps(recommended).decode()],
        )
