"""Streamed, sparse, top-K recommendations give exactly what the dense in-memory version
gave (kept here as the reference) on a generated shop, and memory-bounding choices (item
blocks, customer chunks, neighbours kept) do not change the answer while they keep
every neighbour that matters."""

import datetime as dt
import random

import numpy as np
import pytest
from scipy import sparse

from customers.models import Event
from segments.ml import recommendations
from segments.ml.features import ORDER_EVENT
from segments.ml.recommendations import (
    _MENTIONS,
    VIEW_EVENT,
    VIEW_WEIGHT,
    WINDOW_DAYS,
    item_similarity,
    recommendations_train,
)
from segments.models import CustomerRecommendation
from tests.segments.factories import NOW, CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db


def dense_reference(*, now: dt.datetime, top_n: int) -> dict[int, list[tuple[str, float]]]:
    """The implementation before streaming: every pair in memory, a dense item x item
    similarity, every customer's scores as dense rows."""
    from django.db import connection

    params = [[VIEW_EVENT, ORDER_EVENT], now, now - dt.timedelta(days=WINDOW_DAYS)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT customer_id, item ->> 'product_id', bool_or(name = %s) "  # noqa: S608
            f"FROM ({_MENTIONS}) AS mention GROUP BY 1, 2 ORDER BY 1, 2",
            [ORDER_EVENT, *params],
        )
        pairs = cursor.fetchall()
    customer_ids = sorted({customer_id for customer_id, _, _ in pairs})
    items = sorted({product_id for _, product_id, _ in pairs})
    row_of = {customer_id: row for row, customer_id in enumerate(customer_ids)}
    column_of = {product_id: column for column, product_id in enumerate(items)}
    rows = [row_of[customer_id] for customer_id, _, _ in pairs]
    columns = [column_of[product_id] for _, product_id, _ in pairs]
    shape = (len(customer_ids), len(items))
    interactions = sparse.csr_matrix(
        ([1.0 if bought else VIEW_WEIGHT for _, _, bought in pairs], (rows, columns)), shape=shape
    )
    bought = sparse.csr_matrix(
        ([1.0 if was_bought else 0.0 for _, _, was_bought in pairs], (rows, columns)), shape=shape
    )
    norms = np.sqrt(np.asarray(interactions.multiply(interactions).sum(axis=0))).ravel()
    normalised = interactions @ sparse.diags(1 / np.where(norms > 0, norms, 1))
    similarity = (normalised.T @ normalised).toarray()
    np.fill_diagonal(similarity, 0)
    scores = np.asarray(interactions @ similarity)
    scores[bought.toarray() > 0] = 0
    result = {}
    for row, customer_id in enumerate(customer_ids):
        ranked = np.argsort(-scores[row], kind="stable")[:top_n]
        best = [(items[c], round(float(scores[row, c]), 4)) for c in ranked if scores[row, c] > 0]
        if best:
            result[customer_id] = best
    return result


@pytest.fixture
def shop():
    """120 customers, 40 products of very unequal popularity, views and orders."""
    rng = random.Random(5)
    products = [f"P{number:02d}" for number in range(40)]
    popularity = [1 / (rank + 1) for rank in range(len(products))]
    customers = CustomerFactory.create_batch(120)
    events = []
    for customer in customers:
        for number in range(rng.randint(0, 8)):
            product = rng.choices(products, popularity)[0]
            events.append(
                EventFactory.build(
                    customer=customer,
                    name="Product Viewed",
                    timestamp=NOW - dt.timedelta(days=rng.randint(1, 300)),
                    properties={"product_id": product, "name": f"Name {product}"},
                    message_id=f"view-{customer.pk}-{number}",
                )
            )
        for number in range(rng.randint(0, 3)):
            basket = sorted(set(rng.choices(products, popularity, k=rng.randint(1, 4))))
            events.append(
                EventFactory.build(
                    customer=customer,
                    name="Order Completed",
                    timestamp=NOW - dt.timedelta(days=rng.randint(1, 300)),
                    properties={"products": [{"product_id": p, "price": 5} for p in basket]},
                    message_id=f"order-{customer.pk}-{number}",
                )
            )
    Event.objects.bulk_create(events)
    return customers


def stored() -> dict[int, list[tuple[str, float]]]:
    return {
        customer_id: [(item["product_id"], item["score"]) for item in items]
        for customer_id, items in CustomerRecommendation.objects.values_list("customer_id", "items")
    }


def test_streamed_sparse_recommendations_equal_the_dense_reference(shop, monkeypatch):
    expected = dense_reference(now=NOW, top_n=10)
    # Small blocks, chunks and fetches: every boundary is crossed many times.
    monkeypatch.setattr(recommendations, "ITEM_BLOCK", 7)
    monkeypatch.setattr(recommendations, "CHUNK", 13)
    monkeypatch.setattr(recommendations, "FETCH", 17)

    model = recommendations_train(now=NOW)

    assert len(expected) > 90
    assert stored() == expected
    assert model.metrics["customers_with_recommendations"] == len(expected)
    assert model.metrics["items"] == 40


def test_item_blocks_do_not_change_the_similarities(shop):
    interactions = recommendations._interactions(now=NOW)

    whole = item_similarity(interactions.weights, block=10_000)
    in_blocks = item_similarity(interactions.weights, block=3)

    assert (whole != in_blocks).nnz == 0
    assert whole.diagonal().sum() == 0


def test_each_item_keeps_its_most_similar_neighbours(shop):
    interactions = recommendations._interactions(now=NOW)
    everything = item_similarity(interactions.weights, neighbours=1_000).toarray()

    kept = item_similarity(interactions.weights, neighbours=3).toarray()

    for item in range(kept.shape[0]):
        neighbours = np.flatnonzero(kept[item])
        assert len(neighbours) == min(3, np.count_nonzero(everything[item]))
        # Nobody left out is more similar than the least similar one kept.
        if len(neighbours):
            left_out = np.delete(everything[item], neighbours)
            assert left_out.max(initial=0) <= kept[item][neighbours].min()
        assert np.array_equal(kept[item][neighbours], everything[item][neighbours])
