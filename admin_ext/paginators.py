"""Paging the admin's lists of a million rows without counting them on every view.

Django's changelist asks its paginator for `count` on every page view, which is
a `SELECT COUNT(*)` over the whole table: at a million profiles it costs more
than the rest of the page. For the unfiltered list PostgreSQL already keeps an
estimate of the table's size (`pg_class.reltuples`, refreshed by autovacuum and
ANALYZE), which is all a page count needs; Django documents replacing the
paginator (`ModelAdmin.paginator`) for this. A filtered or searched list, a small
table, SQLite, or a table never analysed is still counted exactly.
"""

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property


def estimated_row_count(queryset: QuerySet) -> int | None:
    """PostgreSQL's estimate of how many rows `queryset` has, if it is a whole table.

    None unless the queryset selects every row of its model's table: no filter,
    no DISTINCT, no slice, no UNION. Joins for select_related and annotations
    (the lists' correlated subqueries) do not change the number of rows.
    """
    query = queryset.query
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    if query.has_filters() or query.distinct or query.combinator or query.is_sliced:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(queryset.model._meta.db_table)],
        )
        row = cursor.fetchone()
    # -1: never vacuumed or analysed, so nothing is known yet.
    if row is None or row[0] < 0:
        return None
    return int(row[0])


class EstimatedCountPaginator(Paginator):
    """A paginator whose count of a big unfiltered list is PostgreSQL's estimate.

    Below `estimate_above` rows the exact count is cheap and the estimate of a
    small, busy table is the likeliest to be off, so the list is counted.
    """

    estimate_above = 100_000
    # The whole table to estimate from when the list's own queryset always carries a
    # fixed filter (the Profiles list leaves out staff's empty profiles): the few rows
    # that filter drops are within an estimate's error.
    estimate_from: QuerySet | None = None

    @cached_property
    def count(self) -> int:
        if isinstance(self.object_list, QuerySet):
            # `is None`, not `or`: a QuerySet's truth value fetches every row it holds.
            whole = self.object_list if self.estimate_from is None else self.estimate_from
            estimate = estimated_row_count(whole)
            if estimate is not None and estimate >= self.estimate_above:
                return estimate
        return super().count
