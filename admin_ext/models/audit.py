"""The audit trail: one row per account per staff or cron action on X tokens.

Rows are written by the job runner, never edited, and keep snapshots (screen name,
X user id, actor's username) so the record still reads correctly after the
account, the token or the staff user is gone. No column ever holds a token.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TokenAction(models.TextChoices):
    CHECK = "check", _("Check")
    REFRESH = "refresh", _("Refresh")
    REVOKE = "revoke", _("Revoke")


class AuditOutcome(models.TextChoices):
    OK = "ok", _("OK")
    FAILED = "failed", _("Failed")


class AuditEvent(models.Model):
    created_at = models.DateTimeField(
        verbose_name=_("created at"), auto_now_add=True, db_index=True
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(
        _("who"), max_length=150, help_text=_("Username at the time, or the command that ran.")
    )
    action = models.CharField(
        verbose_name=_("action"), max_length=10, choices=TokenAction.choices, db_index=True
    )
    job = models.ForeignKey(
        "admin_ext.BulkJob",
        verbose_name=_("job"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    profile = models.ForeignKey(
        "accounts.Profile",
        verbose_name=_("profile"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    token = models.ForeignKey(
        "accounts.XToken",
        verbose_name=_("token"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    token_kind = models.CharField(verbose_name=_("token kind"), max_length=10, blank=True)
    x_user_id = models.CharField(_("X user id"), max_length=32, blank=True, db_index=True)
    screen_name = models.CharField(
        verbose_name=_("screen name"), max_length=50, blank=True, db_index=True
    )
    outcome = models.CharField(
        verbose_name=_("outcome"), max_length=10, choices=AuditOutcome.choices, db_index=True
    )
    token_status = models.CharField(
        verbose_name=_("token status"),
        max_length=10,
        blank=True,
        help_text=_("The token's status after the action."),
    )
    http_status = models.PositiveSmallIntegerField(_("X's HTTP status"), null=True, blank=True)
    message = models.TextField(verbose_name=_("message"), blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit event")

    def __str__(self) -> str:
        who = f"@{self.screen_name}" if self.screen_name else "an account"
        return f"{self.get_action_display()} {who}: {self.get_outcome_display()}"
