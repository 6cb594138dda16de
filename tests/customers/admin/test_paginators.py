"""Big unfiltered admin lists use PostgreSQL's row estimate instead of COUNT(*)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.admin.paginators import EstimatedCountPaginator
from customers.models import Event
from tests.customers.factories import EventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def analysed_events(monkeypatch):
    EventFactory.create_batch(5)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_event")
    # Treat the table as big, so the estimate is used at 5 rows.
    monkeypatch.setattr(EstimatedCountPaginator, "EXACT_BELOW", 1)


def counted(paginator: EstimatedCountPaginator) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        count = paginator.count
    return count, [query["sql"] for query in queries.captured_queries]


def test_an_unfiltered_list_uses_the_estimate(analysed_events):
    # when
    count, queries = counted(EstimatedCountPaginator(Event.objects.order_by("-pk"), 100))
    # then
    assert count == 5
    assert len(queries) == 1
    assert "reltuples" in queries[0]


def test_a_filtered_list_counts_exactly(analysed_events):
    # when
    count, queries = counted(
        EstimatedCountPaginator(Event.objects.filter(type="page").order_by("-pk"), 100)
    )
    # then
    assert count == 0
    assert len(queries) == 1
    assert "COUNT(*)" in queries[0]


def test_a_small_table_counts_exactly():
    # given
    EventFactory.create_batch(3)
    # when
    count, queries = counted(EstimatedCountPaginator(Event.objects.order_by("-pk"), 100))
    # then
    assert count == 3
    assert "COUNT(*)" in queries[-1]
