"""Ingest statements are prepared once per connection, or not at all when told so."""

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from customers.models import Event
from customers.services.prepared import prepared_cursor
from tests.customers.ingest.helpers import post

pytestmark = pytest.mark.django_db


def _prepared_statements() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


def _track(index: int) -> dict:
    return {"userId": "u1", "event": "Product Viewed", "messageId": f"m{index}"}


def test_known_customers_activity_runs_as_prepared_statements(client, basic_auth):
    # given a known customer
    post(client, "/v1/identify", {"userId": "u1"}, basic_auth)

    # when their activity arrives three times
    answers = [post(client, "/v1/track", _track(i), basic_auth).status_code for i in range(3)]

    # then it is stored, and each of the two statements is prepared once on this connection
    assert answers == [200, 200, 200]
    assert Event.objects.filter(type="track").count() == 3
    prepared = _prepared_statements()
    assert len([s for s in prepared if "JOIN customers_identity" in s]) == 1
    assert len([s for s in prepared if "WITH inserted AS" in s]) == 1


@override_settings(INGEST_PREPARED_STATEMENTS=False)
def test_with_prepared_statements_off_nothing_is_prepared_and_all_is_stored(client, basic_auth):
    before = _prepared_statements()

    identify = post(client, "/v1/identify", {"userId": "u1"}, basic_auth)
    track = post(client, "/v1/track", _track(1), basic_auth)

    assert (identify.status_code, track.status_code) == (200, 200)
    assert Event.objects.count() == 2
    assert _prepared_statements() - before == set()


pytestmark = pytest.mark.django_db


def test_a_prepared_statement_is_logged_with_its_text_each_time():
    # given a statement run three times through the preparing cursor
    with CaptureQueriesContext(connection) as queries:
        for number in range(3):
            with prepared_cursor(enabled=True) as cursor:
                cursor.execute("SELECT %s::int + 1", [number])
                assert cursor.fetchone() == (number + 1,)
    # then the log has it three times, as written
    assert [query["sql"] for query in queries.captured_queries] == ["SELECT %s::int + 1"] * 3
