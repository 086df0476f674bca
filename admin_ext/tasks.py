"""django-tasks entry points: bulk token jobs run by `manage.py db_worker`.

The task's only argument is the job id: the selection lives in BulkJobItem rows,
so a task can be run again, by any worker, and it simply continues the job.
"""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
    with _stop_on_shutdown(stop):
        return jobs.run_job(job, stop=stop).as_dict()


@contextmanager
def _stop_on_shutdown(stop: threading.Event) -> Iterator[None]:
    """Make a worker's SIGTERM/SIGINT stop the job at once, then pass the signal on.

    db_worker answers SIGTERM by finishing its current task before exiting, and a
    big job can take an hour: a deploy would either wait that long or kill the
    worker with exchanges in flight (X spends a refresh token before we can store
    its successor). Instead the calls in flight finish and are recorded, the rest
    is handed back, and the next worker carries on (the watchdog copy).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(signum, frame) -> None:
        stop.set()
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _schedule_watchdog(job_id: int) -> None:
    run_after = timezone.now() + 2 * jobs.claim_lease()
    run_bulk_job.using(run_after=run_after).enqueue(job_id)


def enqueue_job(job: BulkJob) -> None:
    """Hand the job to the background workers."""
    result = run_bulk_job.enqueue(job.pk)
    BulkJob.objects.filter(pk=job.pk).update(task_id=str(result.id))
    job.task_id = str(result.id)
