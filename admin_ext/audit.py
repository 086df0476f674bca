"""Writing the audit trail: an AuditEvent per account per action, and one LogEntry per job.

Outcomes are written in small batches (what a job's threads finished since the
last write, a fraction of a second's worth): the items' outcomes and their audit
events in one transaction, so the trail and the job page can never disagree.
Most items of a batch end the same way ("Refreshed", 200), so each distinct
outcome is one UPDATE of its items and one INSERT ... SELECT of their events,
whose snapshots (screen name, X user id) the database copies from the profiles
as they are after the action: two statements per outcome, however many items,
and no model instance per account. Django's LogEntry (the admin's "Recent
actions") gets one entry per job a person starts, linking to the job: one per
account would bury every other recent action under a bulk action.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Profile
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
    """What one item's outcome left behind, for the runner's progress counts."""

    ok: bool


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
        # The item's copy was cleaned when the job was made; the profile row may
        # predate the cleaning of X's values, and SQL cannot clean it here.
        "COALESCE(NULLIF(item.screen_name, ''), profile.screen_name, '') "
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
    return Recorded(ok=done.outcome.ok)


def log_job_started(user: AbstractBaseUser, job: BulkJob) -> None:
    """The admin's "Recent actions" entry for a job: one per job, linking to its page."""
    LogEntry.objects.create(
        user_id=user.pk,
        content_type=ContentType.objects.get_for_model(BulkJob),
        object_id=str(job.pk),
        object_repr=str(job)[:200],
        action_flag=ADDITION,
        change_message=f"Started {job.get_action_display().lower()} of {job.total} tokens.",
    )
