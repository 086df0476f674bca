"""Writing the audit trail: an AuditEvent per account per action, and one LogEntry per job.

Outcomes are written in small batches (what a job's threads finished since the
last write, a fraction of a second's worth): the items' outcomes and their audit
events in one transaction, so the trail and the job page can never disagree, in
two statements instead of four round trips per account. Django's LogEntry (the
admin's "Recent actions") gets one entry per job a person starts, linking to the
job: one per account would bury every other recent action under a bulk action.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from accounts.models import Profile, XToken
from accounts.tokens import Outcome
from admin_ext.models import AuditEvent, AuditOutcome, BulkJob, BulkJobItem, ItemStatus


@dataclass(frozen=True)
class Finished:
    """One item a runner's thread is done with: the token it used and what happened."""

    item: BulkJobItem
    token: XToken | None
    outcome: Outcome


@dataclass(frozen=True)
class Recorded:
    """What one item's outcome left behind, for the runner's progress counts."""

    ok: bool


def record_outcomes(job: BulkJob, finished: list[Finished]) -> list[Recorded]:
    """Store the items' outcomes and their audit events together, or none of them."""
    now = timezone.now()
    events, recorded = [], []
    for done in finished:
        item, token, outcome = done.item, done.token, done.outcome
        item.status = ItemStatus.OK if outcome.ok else ItemStatus.FAILED
        item.message = outcome.message
        item.http_status = outcome.http_status
        item.finished_at = now
        profile = token.profile if token is not None else _item_profile(item)
        screen_name = (profile.screen_name if profile else "") or item.screen_name
        events.append(
            AuditEvent(
                actor_id=job.created_by_id,
                actor_label=job.created_by_label,
                action=job.action,
                job=job,
                profile=profile,
                token=token,
                token_kind=token.kind if token is not None else item.token_kind,
                x_user_id=(profile.x_user_id or "") if profile else "",
                screen_name=screen_name,
                outcome=AuditOutcome.OK if outcome.ok else AuditOutcome.FAILED,
                token_status=outcome.status,
                http_status=outcome.http_status,
                message=outcome.message,
            )
        )
        recorded.append(Recorded(ok=outcome.ok))
    # Most items of a batch end the same way ("Refreshed", 200): one UPDATE per
    # distinct outcome is far cheaper than bulk_update's CASE per row.
    by_outcome: dict[tuple, list[int]] = defaultdict(list)
    for done in finished:
        item = done.item
        by_outcome[(item.status, item.message, item.http_status)].append(item.pk)
    with transaction.atomic():
        for (status, message, http_status), pks in by_outcome.items():
            BulkJobItem.objects.filter(pk__in=pks).update(
                status=status, message=message, http_status=http_status, finished_at=now
            )
        AuditEvent.objects.bulk_create(events)
    return recorded


def _item_profile(item: BulkJobItem) -> Profile | None:
    """The profile of an item without a token (claims load it with select_related)."""
    return item.profile if item.profile_id is not None else None


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
