"""django-tasks entry points: bulk token jobs run by `manage.py db_worker`.

The task's only argument is the job id: the selection lives in BulkJobItem rows,
so a task can be run again, by any worker, and it simply continues the job.
Every running worker takes part in a big job: each runner, as it starts, leaves
one more copy of the task in the queue for the next idle worker (see
`_invite_another_runner`), and all of them share the job's items through their
claims (admin_ext.jobs).
"""

import threading

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone
from django_tasks import task

from accounts.models import Profile, XToken
from admin_ext import jobs
from admin_ext.models import BulkJob


@task()
def run_bulk_job(job_id: int) -> dict[str, int | str]:
    """Run, join or resume a job; first schedule a later copy of this task as a watchdog.

    If this worker dies mid-job (killed, machine restarted), its task never finishes,
    but the watchdog copy becomes ready after the claim lease has run out and any
    worker that picks it up carries on with the items not yet done. When the job is
    finished by then, the watchdog returns at once.
    """
    job = BulkJob.objects.filter(pk=job_id).first()
    if job is None or job.is_finished:
        return {}
    _schedule_watchdog(job_id)
    _invite_another_runner(job)
    stop = threading.Event()
    with jobs.stop_on_shutdown(stop):
        return jobs.run_job(job, stop=stop).as_dict()


def _schedule_watchdog(job_id: int) -> None:
    run_after = timezone.now() + 2 * jobs.claim_lease()
    run_bulk_job.using(run_after=run_after).enqueue(job_id)


def _invite_another_runner(job: BulkJob) -> None:
    """Queue one more runner while the job has more work than this runner's first claim.

    A worker busy with this job never takes the copy (a worker runs one task at a
    time), so it waits for an idle one: with W workers the job gets W runners, one
    each, plus at most one copy waiting, which returns at once if it only starts
    after the job is done. A worker that starts mid-job (a restart, a new
    machine) picks that copy up and joins in.
    """
    if jobs.has_work_to_share(job):
        run_bulk_job.enqueue(job.pk)


def start_job(
    action: str,
    tokens: QuerySet[XToken],
    *,
    profiles_without_tokens: QuerySet[Profile] | None = None,
    actor: AbstractBaseUser | None = None,
) -> BulkJob:
    """The one way a selection is run in the background: stored as a job marked so,
    then handed to the workers. (`manage.py x_tokens` runs its jobs in its own process.)"""
    job = jobs.create_job(
        action,
        tokens,
        profiles_without_tokens=profiles_without_tokens,
        actor=actor,
        run_in_background=True,
    )
    enqueue_job(job)
    return job


def enqueue_job(job: BulkJob) -> None:
    """Hand the job to the background workers."""
    result = run_bulk_job.enqueue(job.pk)
    BulkJob.objects.filter(pk=job.pk).update(task_id=str(result.id))
    job.task_id = str(result.id)
