"""Bulk token jobs: the selection is stored as one item per token before any work starts.

Keeping the selection in rows (not in a task's arguments) is what lets a job be
shared by several workers, survive a crash, and be resumed doing only what is left.
An item is claimed with a lease (`claimed_at`, renewed while its runner lives); an
item whose lease ran out is claimable again.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from admin_ext.models.audit import TokenAction
from tallies import keys
from tallies.tracked import TalliedModel, TalliedQuerySet


class JobSource(models.TextChoices):
    ADMIN = "admin", _("Admin action")
    COMMAND = "command", _("x_tokens command")


class BulkJob(models.Model):
    action = models.CharField(verbose_name=_("action"), max_length=10, choices=TokenAction.choices)
    source = models.CharField(
        verbose_name=_("source"), max_length=10, choices=JobSource.choices, default=JobSource.ADMIN
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_by_label = models.CharField(_("started by"), max_length=150)
    created_at = models.DateTimeField(
        verbose_name=_("created at"), auto_now_add=True, db_index=True
    )
    run_in_background = models.BooleanField(verbose_name=_("run in background"), default=False)
    total = models.PositiveIntegerField(verbose_name=_("total"), default=0)
    started_at = models.DateTimeField(verbose_name=_("started at"), null=True, blank=True)
    # Renewed every few seconds by each live runner; a started, unfinished job whose
    # heartbeat is old has lost its runner (crash, restart) and can be resumed.
    heartbeat_at = models.DateTimeField(verbose_name=_("heartbeat at"), null=True, blank=True)
    finished_at = models.DateTimeField(verbose_name=_("finished at"), null=True, blank=True)
    # The django-tasks result of the latest run, to find it in the task admin.
    task_id = models.CharField(verbose_name=_("task id"), max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("bulk token job")

    def __str__(self) -> str:
        return ngettext(
            "Job #%(id)s: %(action)s %(count)s token",
            "Job #%(id)s: %(action)s %(count)s tokens",
            self.total,
        ) % {"id": self.pk, "action": self.get_action_display().lower(), "count": self.total}

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None

    def get_admin_url(self) -> str:
        return reverse("admin:admin_ext_bulkjob_change", args=[self.pk])


class ItemStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    OK = "ok", _("OK")
    FAILED = "failed", _("Failed")


class BulkJobItem(TalliedModel, models.Model):
    job = models.ForeignKey(
        BulkJob, verbose_name=_("job"), on_delete=models.CASCADE, related_name="items"
    )
    token = models.ForeignKey(
        "accounts.XToken",
        verbose_name=_("token"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    profile = models.ForeignKey(
        "accounts.Profile",
        verbose_name=_("profile"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Snapshots: the job page must still say whose token it was after deletions.
    screen_name = models.CharField(verbose_name=_("screen name"), max_length=50, blank=True)
    token_kind = models.CharField(verbose_name=_("token kind"), max_length=10, blank=True)
    status = models.CharField(
        verbose_name=_("status"),
        max_length=10,
        choices=ItemStatus.choices,
        default=ItemStatus.PENDING,
    )
    message = models.TextField(verbose_name=_("message"), blank=True)
    http_status = models.PositiveSmallIntegerField(
        verbose_name=_("http status"), null=True, blank=True
    )
    claimed_by = models.CharField(verbose_name=_("claimed by"), max_length=64, blank=True)
    claimed_at = models.DateTimeField(verbose_name=_("claimed at"), null=True, blank=True)
    finished_at = models.DateTimeField(verbose_name=_("finished at"), null=True, blank=True)

    objects = TalliedQuerySet.as_manager()
    # Each job's progress on the dashboard (tallies.keys).
    tally_fields = ("job_id", "status")

    class Meta:
        ordering = ["id"]
        verbose_name = _("bulk job item")
        # Claims read "this job's pending items in id order": with the id in the
        # index that is a range scan, however many items are already done.
        indexes = [models.Index(fields=["job", "status", "id"], name="bulkjobitem_claim")]

    def __str__(self) -> str:
        who = f"@{self.screen_name}" if self.screen_name else gettext("an account")
        return f"{who} ({self.get_status_display()})"

    @classmethod
    def tally_keys(cls, values) -> list[str]:
        return keys.of_job_item(*values)
