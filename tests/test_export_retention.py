"""Finished exports expire: `manage.py prune_exports` deletes old jobs and their files."""

import io
import os
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from admin_ext.models import ExportJob, ExportStatus

pytestmark = pytest.mark.django_db

DAY = 24 * 60 * 60


@pytest.fixture
def export_dir(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.EXPORT_DIR.mkdir()
    settings.EXPORT_RETENTION_DAYS = 7
    return settings.EXPORT_DIR


@pytest.fixture
def make_job(django_user_model, export_dir):
    staff = django_user_model.objects.create(username="exporter", is_staff=True)

    def make(status: str, age_days: float, with_file: bool = True) -> ExportJob:
        file_name = f"job-{ExportJob.objects.count()}.xlsx" if with_file else ""
        job = ExportJob.objects.create(
            requested_by=staff,
            summary="the whole list",
            selection="-",
            status=status,
            file_name=file_name,
        )
        ExportJob.objects.filter(pk=job.pk).update(
            created_at=timezone.now() - timedelta(days=age_days)
        )
        if file_name:
            (export_dir / file_name).write_bytes(b"PK fake xlsx with profile data")
        return job

    return make


def prune(*args: str) -> str:
    out = io.StringIO()
    call_command("prune_exports", *args, stdout=out)
    return out.getvalue()


def aged_file(directory, name: str, age_days: float):
    path = directory / name
    path.write_bytes(b"left behind")
    stamp = time.time() - age_days * DAY
    os.utime(path, (stamp, stamp))
    return path


def test_old_finished_exports_go_with_their_files_recent_and_unfinished_stay(make_job, export_dir):
    old_done = make_job(ExportStatus.DONE, age_days=8)
    old_failed = make_job(ExportStatus.FAILED, age_days=30, with_file=False)
    recent_done = make_job(ExportStatus.DONE, age_days=2)
    old_running = make_job(ExportStatus.RUNNING, age_days=9, with_file=False)
    old_pending = make_job(ExportStatus.PENDING, age_days=9, with_file=False)

    assert prune() == "Deleted 2 export job(s) and 1 file(s).\n"

    remaining = set(ExportJob.objects.values_list("pk", flat=True))
    assert remaining == {recent_done.pk, old_running.pk, old_pending.pk}
    assert not (export_dir / old_done.file_name).exists()
    assert (export_dir / recent_done.file_name).exists()
    assert old_failed.pk not in remaining


def test_files_no_job_claims_are_swept_once_old(make_job, export_dir):
    kept_job = make_job(ExportStatus.DONE, age_days=1)
    stale_part = aged_file(export_dir, "abc.xlsx.part", age_days=10)
    orphan = aged_file(export_dir, "def.xlsx", age_days=10)
    fresh_part = aged_file(export_dir, "ghi.xlsx.part", age_days=0)
    # Its job is recent, so the file stays even though the file itself is old.
    os.utime(export_dir / kept_job.file_name, (time.time() - 20 * DAY,) * 2)

    assert prune() == "Deleted 0 export job(s) and 2 file(s).\n"

    assert not stale_part.exists() and not orphan.exists()
    assert fresh_part.exists()
    assert (export_dir / kept_job.file_name).exists()


def test_days_option_overrides_the_setting(make_job):
    make_job(ExportStatus.DONE, age_days=3)
    assert prune() == "Deleted 0 export job(s) and 0 file(s).\n"
    assert prune("--days", "2") == "Deleted 1 export job(s) and 1 file(s).\n"


def test_a_file_being_written_survives_even_days_zero(make_job, export_dir):
    make_job(ExportStatus.DONE, age_days=0.5)
    being_written = aged_file(export_dir, "jkl.xlsx.part", age_days=0.1)
    assert prune("--days", "0") == "Deleted 1 export job(s) and 1 file(s).\n"
    assert being_written.exists()


def test_negative_days_is_refused(export_dir):
    with pytest.raises(CommandError, match="cannot be negative"):
        prune("--days", "-1")


def test_a_missing_export_dir_is_not_an_error(settings, tmp_path, make_job):
    make_job(ExportStatus.FAILED, age_days=8, with_file=False)
    settings.EXPORT_DIR = tmp_path / "never-created"
    assert prune() == "Deleted 1 export job(s) and 0 file(s).\n"
