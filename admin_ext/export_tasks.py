"""Big XLSX exports run on django-tasks (`manage.py db_worker`), not in a request.

A spreadsheet cannot be streamed the way CSV is (XLSX is a zip written at the end),
so past settings.EXPORT_XLSX_SYNC_LIMIT rows the admin records an ExportJob and a
worker writes the file into settings.EXPORT_DIR. The requester then downloads it
through a permission-checked admin view; the directory is never served publicly.

The job must export exactly the admin list staff were looking at, whatever filters
the Profile admin offers. Django documents pickling `QuerySet.query` to rebuild a
queryset elsewhere, so the job stores that pickle, signed with SECRET_KEY: nothing
but this module can produce a payload the worker will unpickle.
"""

import base64
import logging
import os
import pickle
import uuid
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.db.models import QuerySet
from django.utils import timezone
from django_tasks import task

from accounts.models import Profile
from admin_ext.export import export_columns, write_export
from admin_ext.models import ExportJob, ExportStatus
from admin_ext.permissions import may_export

logger = logging.getLogger(__name__)

_SELECTION_SALT = "admin_ext.export_tasks.selection"


def seal_selection(queryset: QuerySet) -> str:
    payload = base64.b64encode(pickle.dumps(queryset.query)).decode("ascii")
    return signing.Signer(salt=_SELECTION_SALT).sign(payload)


def open_selection(sealed: str) -> QuerySet:
    """The queryset `seal_selection` was given; BadSignature if the row was tampered with."""
    payload = signing.Signer(salt=_SELECTION_SALT).unsign(sealed)
    queryset = Profile.objects.all()
    queryset.query = pickle.loads(base64.b64decode(payload))  # noqa: S301 - signed above
    return queryset


def export_file_path(job: ExportJob) -> Path:
    return Path(settings.EXPORT_DIR) / job.file_name


def start_export_job(
    *, user, queryset: QuerySet, fields: Sequence[str], summary: str
) -> ExportJob:
    """Record the job and queue it; the worker picks it up from the database."""
    job = ExportJob.objects.create(
        requested_by=user,
        format="xlsx",
        fields=list(fields),
        summary=summary[:255],
        selection=seal_selection(queryset),
    )
    result = export_profiles_job.enqueue(job.pk)
    job.task_id = str(result.id)
    job.save(update_fields=["task_id"])
    return job


@task()
def export_profiles_job(job_id: int) -> None:
    run_export_job(job_id)


def run_export_job(job_id: int) -> ExportJob:
    """Write the job's file, or record why not. Running a finished job again does nothing."""
    job = ExportJob.objects.select_related("requested_by").get(pk=job_id)
    if job.status != ExportStatus.PENDING:
        return job
    job.status = ExportStatus.RUNNING
    job.started_at = timezone.now()
    job.save(update_fields=["status", "started_at"])
    # Permission is checked again here: it may have been withdrawn since the click.
    if not may_export(job.requested_by):
        return _finish(job, ExportStatus.FAILED, error="You no longer may export profiles.")
    try:
        file_name, rows = _write_file(job)
    except Exception:
        logger.exception("Profile export job %s failed", job.pk)
        return _finish(
            job, ExportStatus.FAILED, error="Writing the file failed; the server log says why."
        )
    return _finish(job, ExportStatus.DONE, file_name=file_name, row_count=rows)


def _write_file(job: ExportJob) -> tuple[str, int]:
    directory = Path(settings.EXPORT_DIR)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    file_name = f"{uuid.uuid4().hex}.{job.format}"
    partial = directory / f"{file_name}.part"
    written = [0]

    def count(rows: int) -> None:
        written[0] = rows

    columns = export_columns(job.fields)
    try:
        write_export(open_selection(job.selection), columns, job.format, str(partial), count)
        os.replace(partial, directory / file_name)
    finally:
        partial.unlink(missing_ok=True)
    return file_name, written[0]


def _finish(job: ExportJob, status: str, **changes) -> ExportJob:
    job.status = status
    job.finished_at = timezone.now()
    for field, value in changes.items():
        setattr(job, field, value)
    job.save()
    return job
