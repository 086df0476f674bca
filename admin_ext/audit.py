"""Writing the audit trail: an AuditEvent per account per action, and the admin's LogEntry.

Outcomes are written in small batches (what a job's threads finished since the
last write, a fraction of a second's worth): the items' outcomes and their audit
events in one transaction, so the trail and the job page can never disagree, in
two statements instead of four round trips per account. Django's LogEntry (the
admin's "Recent actions") is secondary and bulk-created the same way.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.admin.models import CHANGE, LogEntry
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
        kind = token.get_kind_display() if token is not None else "no token"
        recorded.append(
            Recorded(
                ok=outcome.ok,
                action=job.action,
                token_id=token.pk if token is not None else None,
                profile_id=profile.pk if profile else None,
                label=f"@{screen_name} ({kind})" if screen_name else f"profile {item.profile_id}",
                message=outcome.message,
            )
        )
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
