"""Scoring works a chunk of customer ids at a time, with the same result as all at once."""

import datetime as dt

import pytest

from segments.ml.clusters import clusters_assign, clusters_train
from segments.ml.training import customer_id_ranges
from segments.models import CustomerCluster
from tests.segments.factories import NOW, CustomerFactory
from tests.segments.ml.test_clusters import three_groups  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db


def _assignments() -> dict[int, tuple[int, int]]:
    return {
        customer_id: (cluster, version)
        for customer_id, cluster, version in CustomerCluster.objects.values_list(
            "customer_id", "cluster", "model_version_id"
        )
    }


def test_customer_ids_come_in_consecutive_ranges_of_the_chunk_size():
    first = CustomerFactory().pk
    CustomerFactory.create_batch(5)

    ranges = list(customer_id_ranges(chunk_size=4))

    assert ranges == [list(range(first, first + 4)), list(range(first + 4, first + 6))]


def test_no_customers_give_no_ranges():
    assert list(customer_id_ranges(chunk_size=4)) == []


def test_clusters_assigned_in_chunks_equal_one_pass(three_groups):  # noqa: F811
    clusters_train(now=NOW)
    late = CustomerFactory(first_seen=NOW - dt.timedelta(days=1))
    one_pass = _assignments()
    assert late.pk not in one_pass

    assigned = clusters_assign(now=NOW, chunk_size=7)

    # The 45 customers in chunks of 7 ids, and the newcomer too; nobody moved.
    assert assigned == 46
    chunked = _assignments()
    assert late.pk in chunked
    del chunked[late.pk]
    assert chunked == one_pass


def test_chunked_assignment_drops_the_clusters_of_an_older_version(three_groups):  # noqa: F811
    old = clusters_train(now=NOW, activate=True)
    new = clusters_train(now=NOW, activate=True, random_state=1)
    CustomerCluster.objects.update(model_version=old)

    clusters_assign(now=NOW, chunk_size=10)

    assert CustomerCluster.objects.count() == 45
    assert set(CustomerCluster.objects.values_list("model_version", flat=True)) == {new.pk}
