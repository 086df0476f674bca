"""Background profile exports: big XLSX files are written by a worker, not in a request.

A job remembers who asked, which columns and which profiles (the admin list's
query, signed; see `admin_ext.export_tasks`), and where the finished file is.
Files live in settings.EXPORT_DIR, outside any public URL; the only way to one is
the requester's permission-checked download view.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ExportStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for a worker")
    RUNNING = "running", _("Writing the file")
    DONE = "done", _("Ready to download")
    FAILED = "failed", _("Failed")


class ExportJob(models.Model):
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    format = models.CharField(verbose_name=_("format"), max_length=10, default="xlsx")
    # Resource field names (admin_ext.export.ProfileResource), in export order.
    fields = models.JSONField(verbose_name=_("fields"), default=list)
    # What staff saw, for the job page: "the filtered list (q=ada)" or "12 selected".
    summary = models.CharField(verbose_name=_("summary"), max_length=255)
    # The signed, pickled query of the profiles to export; see export_tasks.
    selection = models.TextField(verbose_name=_("selection"), editable=False)
    status = models.CharField(
        verbose_name=_("status"),
        max_length=10,
        choices=ExportStatus.choices,
        default=ExportStatus.PENDING,
    )
    row_count = models.PositiveIntegerField(verbose_name=_("row count"), null=True, blank=True)
    # A random name inside EXPORT_DIR; never a path taken from a request.
    file_name = models.CharField(
        verbose_name=_("file name"), max_length=100, blank=True, editable=False
    )
    error = models.TextField(verbose_name=_("error"), blank=True)
    task_id = models.CharField(verbose_name=_("task id"), max_length=64, blank=True)
    created_at = models.DateTimeField(
        verbose_name=_("created at"), auto_now_add=True, db_index=True
    )
    started_at = models.DateTimeField(verbose_name=_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(verbose_name=_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("profile export")

    def __str__(self) -> str:
        return f"Export #{self.pk} ({self.format}, {self.get_status_display().lower()})"

    @property
    def is_finished(self) -> bool:
        return self.status in {ExportStatus.DONE, ExportStatus.FAILED}

    @property
    def download_name(self) -> str:
        stamp = self.created_at.strftime("%Y-%m-%d-%H%M%S")
        return f"profiles-{stamp}.{self.format}"
