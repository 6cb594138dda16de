from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Counting every event for the page links costs a full scan on a big table; an
    unfiltered list uses PostgreSQL's row estimate instead (filtered lists count)."""

    EXACT_BELOW = 100_000

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is None or query.where:
            return super().count
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [query.model._meta.db_table],
            )
            row = cursor.fetchone()
        estimate = row[0] if row else -1
        if estimate < self.EXACT_BELOW:  # small, or never analysed (-1): count exactly
            return super().count
        return estimate
