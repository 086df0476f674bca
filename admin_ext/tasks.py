"""django-tasks entry points: bulk token jobs run by `manage.py db_worker`.

The task's only argument is the job id: the selection lives in BulkJobItem rows,
so a task can be run again, by any worker, and it simply continues the job.
"""

import threading

from django.utils import timezone
from django_tasks import task

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
    stop = threading.Event()
    with jobs.stop_on_shutdown(stop):
        return jobs.run_job(job, stop=stop).as_dict()


def _schedule_watchdog(job_id: int) -> None:
    run_after = timezone.now() + 2 * jobs.claim_lease()
    run_bulk_job.using(run_after=run_after).enqueue(job_id)


def enqueue_job(job: BulkJob) -> None:
    """Hand the job to the background workers."""
    result = run_bulk_job.enqueue(job.pk)
    BulkJob.objects.filter(pk=job.pk).update(task_id=str(result.id))
    job.task_id = str(result.id)
