import datetime as dt

import pytest
from django.core.management import CommandError, call_command

from segments.ml.recommendations import recommendations_train
from segments.models import CustomerRecommendation, ModelVersion
from segments.selectors import recommendations_for
from tests.segments.factories import NOW, CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db


def _product(product_id: str) -> dict:
    return {
        "product_id": product_id,
        "name": f"Product {product_id}",
        "url": f"https://shop.example.com/products/{product_id.lower()}",
        "price": 10.0,
        "category": "Tents",
    }


def _order(customer, *product_ids, days_ago=5):
    EventFactory(
        customer=customer,
        name="Order Completed",
        timestamp=NOW - dt.timedelta(days=days_ago),
        properties={"order_id": "o", "products": [_product(p) for p in product_ids]},
    )


def _view(customer, product_id, days_ago=3):
    EventFactory(
        customer=customer,
        name="Product Viewed",
        timestamp=NOW - dt.timedelta(days=days_ago),
        properties=_product(product_id),
    )


@pytest.fixture
def shop():
    alice, bob, carol, dave, erin = CustomerFactory.create_batch(5)
    _order(alice, "A", "B")
    _order(bob, "A", "B", "C")
    _order(carol, "A")
    _view(dave, "D")
    _view(erin, "D")
    _view(erin, "E")
    # Out of the year's window: would make F similar to A if it counted.
    _order(carol, "F", days_ago=400)
    _order(bob, "F", days_ago=400)
    return {"alice": alice, "bob": bob, "carol": carol, "dave": dave, "erin": erin}


def _recommended(customer) -> list[tuple[str, float]]:
    return [
        (item["product_id"], item["score"])
        for item in recommendations_for(customer_id=customer.pk, limit=10)
    ]


def test_items_bought_together_are_recommended_best_first(shop):
    model = recommendations_train(now=NOW)

    assert (model.kind, model.version, model.is_active) == ("recommendations", 1, True)
    assert model.metrics == {
        "customers": 5,
        "items": 5,
        "interactions": 9,
        "customers_with_recommendations": 4,
    }
    # cos(A, B) = 2 / (sqrt 3 * sqrt 2); cos(A, C) = 1 / sqrt 3.
    assert _recommended(shop["carol"]) == [("B", 0.8165), ("C", 0.5774)]
    # cos(A, C) + cos(B, C); what alice bought is never recommended to her.
    assert _recommended(shop["alice"]) == [("C", 1.2845)]
    # Bob bought everything there is: no row, no recommendations.
    assert _recommended(shop["bob"]) == []
    assert not CustomerRecommendation.objects.filter(customer=shop["bob"]).exists()


def test_items_viewed_together_are_recommended(shop):
    recommendations_train(now=NOW)

    assert [product for product, _ in _recommended(shop["dave"])] == ["E"]
    # Viewed but not bought: each of erin's items is suggested through the other (a tie,
    # kept in product order).
    assert _recommended(shop["erin"]) == [("D", 0.2121), ("E", 0.2121)]


def test_items_carry_the_product_fields_templates_use_and_the_limit_applies(shop):
    recommendations_train(now=NOW)

    items = recommendations_for(customer_id=shop["carol"].pk, limit=1)

    assert items == [
        {
            "product_id": "B",
            "score": 0.8165,
            "name": "Product B",
            "url": "https://shop.example.com/products/b",
            "price": 10.0,
            "category": "Tents",
        }
    ]


def test_the_train_command_trains_recommendations(shop, capsys):
    call_command("segments_train", "recommendations", "--as-of", NOW.isoformat())

    assert "recommendations v1: 5 items, 4 of 5 customers" in capsys.readouterr().out
    assert CustomerRecommendation.objects.count() == 4


def test_a_new_version_replaces_stale_lists(shop):
    first = recommendations_train(now=NOW)
    # A year later nothing is in the window but the two views of a new day.
    later = NOW + dt.timedelta(days=400)
    _view(shop["dave"], "X", days_ago=-399)
    _view(shop["erin"], "X", days_ago=-399)
    _view(shop["erin"], "Y", days_ago=-399)

    second = recommendations_train(now=later)

    assert second.version == 2
    assert not CustomerRecommendation.objects.filter(model_version=first).exists()
    assert list(
        CustomerRecommendation.objects.order_by("customer_id").values_list("customer_id", flat=True)
    ) == [shop["dave"].pk, shop["erin"].pk]


def test_without_products_training_is_refused_and_nothing_is_written():
    EventFactory(name="Page Viewed", timestamp=NOW - dt.timedelta(days=1))

    with pytest.raises(CommandError, match="at least 2 viewed or bought products; there are 0"):
        call_command("segments_train", "recommendations", "--as-of", NOW.isoformat())

    assert ModelVersion.objects.count() == 0
    assert CustomerRecommendation.objects.count() == 0
