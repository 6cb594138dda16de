"""Journeys load condition snapshots through segments, in batches, without the inputs the
runner's facts provide."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consent.services.ledger import consent_record
from journeys.services.condition_facts import snapshots_load
from segments.models import CustomerRFM
from segments.snapshots import customer_snapshots
from tests.consent.factories import TopicFactory
from tests.segments.factories import NOW, CustomerFactory, EventFactory

pytestmark = pytest.mark.django_db

KINDS = {"trait", "profile", "event", "segment", "payload", "consent", "rfm"}


def customers_with_consent_and_rfm(size: int) -> dict:
    TopicFactory(key="news", channels=["email"])
    customers = {}
    for n in range(size):
        customer = CustomerFactory(external_id=f"c{n}")
        EventFactory(customer=customer)
        consent_record(
            customer_id=customer.pk, channel="email", topic_key="news", action="grant",
            source="api", occurred_at=NOW - dt.timedelta(days=1), now=NOW,
        )  # fmt: skip
        CustomerRFM.objects.create(
            customer=customer, recency_days=1, frequency=1, monetary=1, recency_score=5,
            frequency_score=1 + n % 5, monetary_score=3, segment="x", computed_at=NOW,
        )  # fmt: skip
        customers[customer.pk] = customer
    return customers


@pytest.mark.parametrize("size", [1, 5])
def test_consent_and_rfm_load_in_a_fixed_number_of_queries(size):
    # Given customers with consent state, RFM scores and events
    customers = customers_with_consent_and_rfm(size)

    # When the runner loads snapshots for conditions of these kinds
    with CaptureQueriesContext(connection) as queries:
        snapshots = snapshots_load(customers=customers, kinds=KINDS)

    # Then topics, consent states and RFM are three queries whatever the batch size, and
    # events (the runner's facts hold them) are not loaded
    assert len(queries) == 3
    assert snapshots == customer_snapshots(customers=customers.values(), kinds={"consent", "rfm"})
    assert [snapshots[pk].rfm["frequency"] for pk in customers] == [1 + n % 5 for n in range(size)]
    assert all(snapshot.events == () for snapshot in snapshots.values())
