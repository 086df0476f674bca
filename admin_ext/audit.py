"""Writing the audit trail: an AuditEvent per account per action, and the admin's LogEntry.

Outcomes are written in small batches (what a job's threads finished since the
last write, a fraction of a second's worth): the items' outcomes and their audit
events in one transaction, so the trail and the job page can never disagree.
Most items of a batch end the same way ("Refreshed", 200), so each distinct
outcome is one UPDATE of its items and one INSERT ... SELECT of their events,
whose snapshots (screen name, X user id) the database copies from the profiles
as they are after the action: two statements per outcome, however many items,
and no model instance per account. Django's LogEntry (the admin's "Recent
actions") is secondary and bulk-created the same way.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Profile, TokenKind, XToken
from accounts.tokens import Outcome
from admin_ext.models import AuditEvent, AuditOutcome, BulkJob, BulkJobItem, ItemStatus

# Far below every database's limit on query parameters.
IDS_PER_STATEMENT = 500


@dataclass(frozen=True)
class Claimed:
    """An item a runner holds, as read when it was claimed: enough to act on and record it."""

    pk: int
    token_id: int | None
    profile_id: int | None
    token_kind: str
    screen_name: str
    # Claimed after another runner's lease on it ran out: that runner may have
    # acted on it before it stopped.
    taken_over: bool = False


@dataclass(frozen=True)
class Finished:
    """One item a runner's thread is done with, and what happened."""

    item: Claimed
    outcome: Outcome


@dataclass(frozen=True)
class Recorded:
    """What one item's outcome left behind, for the LogEntry batch and progress counts."""

    ok: bool
    action: str
    token_id: int | None
    profile_id: int | None
    label: str
    message: str


def record_outcomes(job: BulkJob, finished: list[Finished]) -> list[Recorded]:
    """Store the items' outcomes and their audit events together, or none of them."""
    now = timezone.now()
    by_outcome: dict[Outcome, list[int]] = defaultdict(list)
    for done in finished:
        by_outcome[done.outcome].append(done.item.pk)
    with transaction.atomic():
        for outcome, pks in by_outcome.items():
            for start in range(0, len(pks), IDS_PER_STATEMENT):
                chunk = pks[start : start + IDS_PER_STATEMENT]
                BulkJobItem.objects.filter(pk__in=chunk).update(
                    status=ItemStatus.OK if outcome.ok else ItemStatus.FAILED,
                    message=outcome.message,
                    http_status=outcome.http_status,
                    finished_at=now,
                )
                _insert_audit_events(job, outcome, chunk, now)
    return [_recorded(job, done) for done in finished]


def _insert_audit_events(job: BulkJob, outcome: Outcome, item_ids: list[int], now: datetime):
    """One AuditEvent per item, built by the database from the item and its profile.

    Django has no INSERT ... SELECT, hence plain SQL (portable between PostgreSQL
    and SQLite); the values of the outcome are parameters like any other.
    """
    quote = connection.ops.quote_name
    event_columns = [
        AuditEvent._meta.get_field(name).column
        for name in (
            "created_at",
            "actor",
            "actor_label",
            "action",
            "job",
            "outcome",
            "token_status",
            "http_status",
            "message",
            "profile",
            "token",
            "token_kind",
            "x_user_id",
            "screen_name",
        )
    ]
    placeholders = ", ".join(["%s"] * len(item_ids))
    # Only names from the models' metadata are formatted in; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(AuditEvent._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(column) for column in event_columns)}) "
        "SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "item.profile_id, item.token_id, item.token_kind, COALESCE(profile.x_user_id, ''), "
        "COALESCE(NULLIF(profile.screen_name, ''), item.screen_name) "
        f"FROM {quote(BulkJobItem._meta.db_table)} item "
        f"LEFT JOIN {quote(Profile._meta.db_table)} profile ON profile.id = item.profile_id "
        f"WHERE item.id IN ({placeholders}) ORDER BY item.id"
    )
    values = [
        connection.ops.adapt_datetimefield_value(now),
        job.created_by_id,
        job.created_by_label,
        job.action,
        job.pk,
        AuditOutcome.OK if outcome.ok else AuditOutcome.FAILED,
        outcome.status,
        outcome.http_status,
        outcome.message,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *item_ids])


def _recorded(job: BulkJob, done: Finished) -> Recorded:
    item = done.item
    kind = TokenKind(item.token_kind).label if item.token_id is not None else "no token"
    return Recorded(
        ok=done.outcome.ok,
        action=job.action,
        token_id=item.token_id,
        profile_id=item.profile_id,
        label=f"@{item.screen_name} ({kind})" if item.screen_name else f"profile {item.pk}",
        message=done.outcome.message,
    )


def write_log_entries(user_id: int | None, recorded: Iterable[Recorded]) -> None:
    """One admin LogEntry per account, in one INSERT. Jobs without a user (cron) skip it:
    LogEntry requires a user, and the AuditEvent already names the command."""
    if user_id is None:
        return
    token_type = ContentType.objects.get_for_model(XToken)
    profile_type = ContentType.objects.get_for_model(Profile)
    entries = []
    for record in recorded:
        if record.token_id is not None:
            content_type, object_id = token_type, record.token_id
        elif record.profile_id is not None:
            content_type, object_id = profile_type, record.profile_id
        else:
            continue
        result = "ok" if record.ok else "failed"
        entries.append(
            LogEntry(
                user_id=user_id,
                content_type=content_type,
                object_id=str(object_id),
                object_repr=record.label[:200],
                action_flag=CHANGE,
                change_message=f"{record.action} tokens: {result}. {record.message}".strip(),
            )
        )
    LogEntry.objects.bulk_create(entries, batch_size=500)
