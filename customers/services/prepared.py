"""A cursor for the ingest hot path: server-side binding, each statement prepared once.

Django's default psycopg cursor binds on the client: every request's parameters are
quoted in Python and PostgreSQL parses and plans the statement text anew. Ingest runs the
same few statements thousands of times a second, with the rows as one JSON parameter, so
here they are prepared once per connection and only the parameter travels.

The cursor still goes through Django's wrapper: database errors become Django's, and
queries are counted and logged as any other (``django_assert_num_queries`` sees them).
Prepared statements need a session per connection: a pooler in front of PostgreSQL
must support them (PgBouncer 1.21+ with ``max_prepared_statements``); otherwise set
INGEST_PREPARED_STATEMENTS=false and the statements go through Django's own cursor.
"""

import psycopg
from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

# Prepared only when asked (prepare=True), never automatically: Django's own queries keep
# their client-side binding. psycopg reads None (Django's default) as "never prepare".
_ONLY_WHEN_ASKED = 2**31 - 1


class _PreparingCursor(psycopg.Cursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True, binary=binary)


class _PreparedDebugCursor(CursorDebugWrapper):
    """Django's debug cursor logs the text psycopg last sent, which a prepared statement
    does not keep (the log would say None): the statement is logged as written, its
    parameters beside it."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)


def prepared_cursor(*, enabled: bool | None = None):
    """A Django cursor wrapper over a server-binding cursor that prepares its statements;
    Django's own cursor when ``enabled`` (INGEST_PREPARED_STATEMENTS by default) is off."""
    if enabled is None:
        enabled = settings.INGEST_PREPARED_STATEMENTS
    if not enabled:
        return connection.cursor()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = _ONLY_WHEN_ASKED
    cursor = _PreparingCursor(raw)
    if connection.queries_logged:
        return _PreparedDebugCursor(cursor, connection)
    return connection.make_cursor(cursor)
