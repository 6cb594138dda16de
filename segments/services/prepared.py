"""Running a hot, fixed query as a server-side prepared statement.

The per-event path runs the same few statements for one customer at a time, and
PostgreSQL's planning of them (half a millisecond for a handful of segments, more as
segments are added) cost more than their execution. Django binds parameters on the client
and never prepares; here the statement is bound on the server and prepared once per
connection (psycopg keeps the cache and deallocates the least used past its limit). With
every parameter a scalar, PostgreSQL settles on one generic plan after five executions and
stops planning.

The cursor is wrapped like Django's own, so execute wrappers, ``CaptureQueriesContext`` and
database error translation see these queries too.

Connections through a pooler in transaction mode (PgBouncer before 1.21) cannot keep
prepared statements: ``SEGMENTS_PREPARED_STATEMENTS = False`` in the settings turns them
off, and the same SQL runs with client-side binding.
"""

from collections.abc import Sequence

from django.conf import settings

from customers.services.prepared import prepared_cursor


def prepared_statements_enabled() -> bool:
    return getattr(settings, "SEGMENTS_PREPARED_STATEMENTS", True)


def fetch_prepared(sql: str, params: Sequence) -> tuple[list[str], list[tuple]]:
    """Column names and rows of ``sql`` (``%s`` placeholders), as a prepared statement."""
    with prepared_cursor(enabled=prepared_statements_enabled()) as cursor:
        cursor.execute(sql, params)
        return [column.name for column in cursor.description], cursor.fetchall()
