"""How long background export files are kept: finished exports expire.

An export file is a copy of everyone's profile data sitting on disk, so it should
live only as long as someone might still download it. `prune_exports` deletes
finished jobs (done or failed) older than the retention period together with
their files, and sweeps EXPORT_DIR for files no job points to any more (a worker
killed mid-write leaves a `.part` behind). Jobs still waiting or running are never
touched, however old: a resumed worker may still finish them.
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from admin_ext.export_tasks import export_file_path
from admin_ext.models import ExportJob, ExportStatus

logger = logging.getLogger(__name__)

FINISHED = (ExportStatus.DONE, ExportStatus.FAILED)
# A file a worker is writing (or has just renamed) has no job pointing to it yet;
# however short the retention, unclaimed files younger than this are left alone.
UNCLAIMED_GRACE = timedelta(days=1)


@dataclass(frozen=True)
class Pruned:
    jobs: int
    files: int


def prune_exports(older_than: timedelta | None = None) -> Pruned:
    """Delete finished export jobs and export files older than `older_than`.

    Defaults to settings.EXPORT_RETENTION_DAYS. A file is deleted before its job,
    so a crash in between leaves an empty job rather than an unlisted file.
    """
    if older_than is None:
        older_than = timedelta(days=settings.EXPORT_RETENTION_DAYS)
    cutoff = timezone.now() - older_than
    expired = ExportJob.objects.filter(status__in=FINISHED, created_at__lt=cutoff)
    files = 0
    for job in expired.exclude(file_name="").only("pk", "file_name"):
        files += _unlink(export_file_path(job))
    jobs, _ = expired.delete()
    files += _sweep_unclaimed_files(min(cutoff, timezone.now() - UNCLAIMED_GRACE).timestamp())
    if jobs or files:
        logger.info("Pruned %s export job(s) and %s file(s) older than %s", jobs, files, cutoff)
    return Pruned(jobs=jobs, files=files)


def _sweep_unclaimed_files(cutoff: float) -> int:
    directory = Path(settings.EXPORT_DIR)
    if not directory.is_dir():
        return 0
    claimed = set(ExportJob.objects.exclude(file_name="").values_list("file_name", flat=True))
    removed = 0
    for path in directory.iterdir():
        if path.is_file() and path.name not in claimed and _modified(path) < cutoff:
            removed += _unlink(path)
    return removed


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return time.time()


def _unlink(path: Path) -> int:
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1
