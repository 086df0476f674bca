"""Add to the figures, read them, and fold their rows together.

`record` is called inside the transaction that makes the change (tallies.tracked
does it for every write to a counted model), so a change and its count commit or
roll back together.
"""

from collections import Counter
from collections.abc import Iterable

from django.db import connection, transaction

from tallies.models import TallyDelta

# One compaction per this many rows added: the figures stay a sum over at most a
# few hundred rows more than there are keys.
COMPACT_EVERY = 500
IDS_PER_STATEMENT = 500


def record(changes: Counter) -> None:
    """Add `changes` ({key: +n or -n}) to the figures, in the caller's transaction."""
    rows = [TallyDelta(key=key, delta=delta) for key, delta in sorted(changes.items()) if delta]
    if not rows:
        return
    rows = TallyDelta.objects.bulk_create(rows)
    first, last = rows[0].pk, rows[-1].pk
    if first is not None and last // COMPACT_EVERY != (first - 1) // COMPACT_EVERY:
        compact()


def compact() -> None:
    """Replace the rows no one else holds by one row per key with their sum.

    Rows another transaction is compacting are skipped (SKIP LOCKED), so compaction
    never waits for, nor deadlocks with, a writer; the figures' sums are unchanged.
    """
    with transaction.atomic():
        rows = list(
            TallyDelta.objects.select_for_update(skip_locked=True).values_list(
                "pk", "key", "delta"
            )
        )
        if len(rows) < 2:
            return
        sums: Counter = Counter()
        for _, key, delta in rows:
            sums[key] += delta
        pks = [pk for pk, _, _ in rows]
        for start in range(0, len(pks), IDS_PER_STATEMENT):
            TallyDelta.objects.filter(pk__in=pks[start : start + IDS_PER_STATEMENT]).delete()
        TallyDelta.objects.bulk_create(
            TallyDelta(key=key, delta=total) for key, total in sorted(sums.items()) if total
        )


def read(
    keys: Iterable[str] = (),
    prefixes: Iterable[str] = (),
    ranges: Iterable[tuple[str, str]] = (),
    also: Iterable[tuple[str, list]] = (),
) -> Counter:
    """The figures named by `keys`, starting with one of `prefixes` or within one of
    `ranges` (first and last key, as for a run of days), in one statement.

    `also` is SQL with its parameters for rows of (key, total) counted some other
    way (a window of time no tally can follow, a distinct count); they come back in
    the same statement (UNION ALL): one round trip for them all.

    Plain SQL rather than the ORM: the admin index reads this on every render, and
    the ORM took about ten times as long to compile the statement (an OR of
    lookups, a GROUP BY and a UNION) as the database took to answer it.
    """
    keys = list(keys) or [""]  # "IN ()" is not SQL; no tally has the key ""
    patterns = [_escape_like(prefix) + "%" for prefix in prefixes]
    ranges = list(ranges)
    wanted = [f"key IN ({', '.join(['%s'] * len(keys))})"]
    wanted += ["key LIKE %s ESCAPE '\\'"] * len(patterns)
    wanted += ["key BETWEEN %s AND %s"] * len(ranges)
    # Only placeholders are joined into the text; every value is a parameter.
    sql = (
        "SELECT key, SUM(delta) FROM tallies_tallydelta"  # noqa: S608
        f" WHERE {' OR '.join(wanted)} GROUP BY key"
    )
    params = [*keys, *patterns, *(bound for pair in ranges for bound in pair)]
    for other_sql, other_params in also:
        sql = f"{sql} UNION ALL {other_sql}"
        params += other_params
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return Counter({key: int(total) for key, total in cursor.fetchall()})


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def replace_all(figures: Counter) -> None:
    """Make the figures exactly `figures` (after a full recount)."""
    with transaction.atomic():
        TallyDelta.objects.all().delete()
        TallyDelta.objects.bulk_create(
            TallyDelta(key=key, delta=total) for key, total in sorted(figures.items()) if total
        )
