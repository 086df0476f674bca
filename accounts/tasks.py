"""django-tasks entry point for retrying pending revocations on the job workers.

While anything is pending, one copy of `retry_pending_revocations` is scheduled for
when the next one is due: each run retries what is due and schedules the next. A
new pending revocation schedules a run at once. If the chain is ever broken (no
worker for a while, a worker killed mid-run), the next new pending revocation or
`manage.py x_tokens retry-revocations` from cron starts it again.
"""

from datetime import datetime

from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks_db.models import DBTaskResult

from accounts import revocation
from accounts.models import PendingRevocation


@task()
def retry_pending_revocations() -> dict[str, int]:
    summary = revocation.retry_due_revocations()
    schedule_revocation_retries()
    return {"attempted": summary.attempted, "revoked": summary.revoked, "failed": summary.failed}


def next_due() -> datetime | None:
    pending = PendingRevocation.objects.filter(resolved_at__isnull=True)
    return pending.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()


def schedule_revocation_retries() -> None:
    """Make sure a retry run is scheduled by the time the next pending revocation is due."""
    due = next_due()
    if due is None:
        return
    run_after = max(due, timezone.now())
    already = DBTaskResult.objects.filter(
        task_path=retry_pending_revocations.module_path,
        status=TaskResultStatus.READY,
        run_after__lte=run_after,
    )
    if not already.exists():
        retry_pending_revocations.using(run_after=run_after).enqueue()
