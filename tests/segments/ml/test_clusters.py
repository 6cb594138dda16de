import datetime as dt
import random

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer, Event
from segments.ml.clusters import clusters_train, customer_cluster
from segments.ml.registry import model_train_any
from segments.models import CustomerCluster, ModelVersion, SegmentMembership
from segments.rules import RuleError, compile_rule, evaluate_rule, validate_rule
from segments.selectors import customer_snapshot
from segments.services.definitions import segment_create
from tests.segments.factories import NOW, CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db


def _group(rng: random.Random, size: int, make_events) -> list[int]:
    customers = CustomerFactory.create_batch(size, first_seen=NOW - dt.timedelta(days=100))
    events = []
    for customer in customers:
        events.extend(make_events(rng, customer))
    Event.objects.bulk_create(events)
    return sorted(customer.pk for customer in customers)


def _buyers(rng, customer):
    # Frequent, big orders in the last month.
    return [
        EventFactory.build(
            customer=customer,
            timestamp=NOW - dt.timedelta(days=rng.randint(1, 25), hours=index),
            properties={"revenue": rng.randint(180, 220)},
        )
        for index in range(rng.randint(9, 11))
    ]


def _browsers(rng, customer):
    # Many recent page views, never an order.
    return [
        EventFactory.build(
            customer=customer,
            name="Page Viewed",
            timestamp=NOW - dt.timedelta(days=rng.randint(1, 6), hours=index),
        )
        for index in range(rng.randint(28, 32))
    ]


def _lapsed(rng, customer):
    # One page view long ago.
    return [
        EventFactory.build(
            customer=customer,
            name="Page Viewed",
            timestamp=NOW - dt.timedelta(days=rng.randint(85, 95)),
        )
    ]


@pytest.fixture
def three_groups():
    rng = random.Random(3)
    return [_group(rng, 15, make) for make in (_buyers, _browsers, _lapsed)]


def _clusters_of(ids: list[int]) -> set[int]:
    return set(
        CustomerCluster.objects.filter(customer_id__in=ids).values_list("cluster", flat=True)
    )


def test_k_is_chosen_by_silhouette_and_each_group_is_one_cluster(three_groups):
    model = clusters_train(now=NOW)

    assert (model.kind, model.version, model.is_active) == ("clusters", 1, True)
    assert model.metrics["k"] == 3
    assert model.metrics["silhouette"] == max(model.metrics["silhouette_by_k"].values())
    assert sorted(model.metrics["silhouette_by_k"]) == [str(k) for k in range(2, 9)]
    assert CustomerCluster.objects.filter(model_version=model).count() == 45
    per_group = [_clusters_of(ids) for ids in three_groups]
    assert all(len(clusters) == 1 for clusters in per_group)
    assert len(set.union(*per_group)) == 3
    assert sorted(cluster["size"] for cluster in model.metrics["clusters"]) == [15, 15, 15]


def test_each_cluster_is_described_by_its_distinctive_features(three_groups):
    buyers, _browsers, lapsed = three_groups
    model = clusters_train(now=NOW)
    described = {c["cluster"]: c for c in model.metrics["clusters"]}

    buyer_cluster = described[_clusters_of(buyers).pop()]
    lapsed_cluster = described[_clusters_of(lapsed).pop()]
    # Three features each: the buyers' are all about orders, and well above average.
    assert len(buyer_cluster["distinctive"]) == 3
    assert all(
        ("Order Completed" in name or name in ("orders_365d", "monetary_365d")) and z > 1
        for name, z in buyer_cluster["distinctive"].items()
    ), buyer_cluster
    assert buyer_cluster["description"].startswith("high ")
    assert lapsed_cluster["distinctive"].get("recency_days", 0) > 1
    assert "high recency_days" in lapsed_cluster["description"]
    assert customer_cluster(customer_id=lapsed[0]) == {
        "cluster": lapsed_cluster["cluster"],
        "description": lapsed_cluster["description"],
    }


def test_a_new_version_replaces_every_assignment(three_groups):
    first = clusters_train(now=NOW)
    second = model_train_any(kind="clusters", now=NOW)

    assert second.version == 2
    assert CustomerCluster.objects.count() == 45
    assert not CustomerCluster.objects.filter(model_version=first).exists()
    first.refresh_from_db()
    assert (first.is_active, second.is_active) == (False, True)


def test_an_inactive_version_assigns_nobody(three_groups):
    clusters_train(now=NOW, activate=False)

    assert CustomerCluster.objects.count() == 0


def test_the_train_command_trains_clusters_and_prints_their_descriptions(three_groups, capsys):
    call_command("segments_train", "clusters", "--as-of", NOW.isoformat())

    output = capsys.readouterr().out
    assert "clusters v1: 3 clusters" in output
    assert output.count("  cluster ") == 3
    assert CustomerCluster.objects.count() == 45


def test_too_few_customers_is_refused_and_nothing_is_written():
    CustomerFactory()

    with pytest.raises(CommandError, match="clustering needs at least 3 customers"):
        call_command("segments_train", "clusters", "--as-of", NOW.isoformat())

    assert ModelVersion.objects.count() == 0
    assert CustomerCluster.objects.count() == 0


def test_the_admin_shows_a_clusters_version_with_its_descriptions(admin_client, three_groups):
    model = clusters_train(now=NOW)

    page = admin_client.get(f"/admin/segments/modelversion/{model.pk}/change/")

    assert page.status_code == 200
    assert model.metrics["clusters"][0]["description"] in page.content.decode()


def test_a_cluster_rule_selects_the_cluster_in_sql_and_for_one_customer(three_groups):
    buyers, browsers, lapsed = three_groups
    clusters_train(now=NOW)
    rule = {"cluster": {"in": [_clusters_of(buyers).pop(), _clusters_of(lapsed).pop()]}}

    selected = Customer.objects.filter(compile_rule(rule, now=NOW)).values_list("pk", flat=True)

    assert sorted(selected) == sorted(buyers + lapsed)
    for customer in Customer.objects.filter(pk__in=[buyers[0], browsers[0], lapsed[0]]):
        snapshot = customer_snapshot(customer=customer)
        assert evaluate_rule(rule, snapshot, now=NOW) is (customer.pk != browsers[0])


def test_a_customer_without_a_cluster_is_in_no_cluster_segment():
    customer = CustomerFactory()
    rule = {"cluster": {"in": [0]}}

    assert not Customer.objects.filter(compile_rule(rule, now=NOW)).exists()
    assert evaluate_rule(rule, customer_snapshot(customer=customer), now=NOW) is False


@pytest.mark.parametrize("clusters", [[], [-1], ["1"], [True], 2, None])
def test_a_cluster_rule_without_cluster_numbers_is_refused_with_its_path(clusters):
    with pytest.raises(RuleError) as refused:
        validate_rule({"all": [{"cluster": {"in": clusters}}]})

    assert list(refused.value.as_dict()) == ["$.all[0].cluster.in"]


def test_retraining_clusters_recomputes_the_segments_that_use_them(three_groups):
    buyers, _browsers, _lapsed = three_groups
    clusters_train(now=NOW)
    segment = segment_create(
        key="big-buyers", name="Big buyers", rules={"cluster": {"in": [_clusters_of(buyers).pop()]}}
    )

    model_train_any(kind="clusters", now=NOW)

    members = SegmentMembership.objects.filter(segment=segment, exited_at=None)
    assert sorted(members.values_list("customer_id", flat=True)) == buyers


def test_the_score_command_puts_new_customers_in_their_nearest_cluster(three_groups):
    buyers, _browsers, lapsed = three_groups
    clusters_train(now=NOW)
    newcomer = CustomerFactory(first_seen=NOW - dt.timedelta(days=100))
    Event.objects.bulk_create(_buyers(random.Random(9), newcomer))

    call_command("segments_score", "clusters", "--as-of", NOW.isoformat())

    assert CustomerCluster.objects.count() == 46
    assert _clusters_of([newcomer.pk]) == _clusters_of(buyers)
    assert _clusters_of(lapsed) != _clusters_of(buyers)


def test_scoring_clusters_without_an_active_model_is_refused():
    CustomerFactory()

    with pytest.raises(CommandError, match="no active clusters model"):
        call_command("segments_score", "clusters", "--as-of", NOW.isoformat())

    assert CustomerCluster.objects.count() == 0
