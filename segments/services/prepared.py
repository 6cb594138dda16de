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

import psycopg
from django.conf import settings
from django.db import connection

# Statements are prepared only when asked (prepare=True), never automatically: Django's
# own queries keep their client-side binding. psycopg treats None as "never prepare".
_ONLY_WHEN_ASKED = 2**31 - 1


class _PreparedCursor(psycopg.Cursor):
    """A server-binding cursor that prepares every statement it runs."""

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


def prepared_statements_enabled() -> bool:
    return getattr(settings, "SEGMENTS_PREPARED_STATEMENTS", True)


def fetch_prepared(sql: str, params: Sequence) -> tuple[list[str], list[tuple]]:
    """Column names and rows of ``sql`` (``%s`` placeholders), as a prepared statement."""
    if not prepared_statements_enabled():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [column.name for column in cursor.description], cursor.fetchall()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = _ONLY_WHEN_ASKED
    raw_cursor = _PreparedCursor(raw)
    cursor = (
        connection.make_debug_cursor(raw_cursor)
        if connection.queries_logged
        else connection.make_cursor(raw_cursor)
    )
    with cursor:
        cursor.execute(sql, params)
        return [column.name for column in cursor.description], cursor.fetchall()
