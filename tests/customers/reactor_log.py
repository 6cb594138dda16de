"""A reactor of the test suite's own: it writes each event it is handed into a table.

Registered in-process by the unit tests, and by dotted path (JOURNEYLINE_EXTRA_REACTORS)
in the Celery worker the end-to-end test starts, so the same table proves "once".
"""

from django.db import connection

TABLE = "test_reactor_log"


def create_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (event_id bigint NOT NULL)")
        cursor.execute(f"TRUNCATE {TABLE}")


def drop_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")


def record(events) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (event_id) SELECT unnest(%s::bigint[])",
            [[event.pk for event in events]],
        )


def times_handed_over() -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT event_id, count(*) FROM {TABLE} GROUP BY event_id")  # noqa: S608
        return dict(cursor.fetchall())
