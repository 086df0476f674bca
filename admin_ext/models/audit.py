"""The audit trail: one row per account per staff or cron action on X tokens.

Rows are written by the job runner, never edited, and keep snapshots (screen name,
X user id, actor's username) so the record still reads correctly after the
account, the token or the staff user is gone. No column ever holds a token.
"""

from django.conf import settings
from django.db import models


class TokenAction(models.TextChoices):
    CHECK = "check", "Check"
    REFRESH = "refresh", "Refresh"
    REVOKE = "revoke", "Revoke"


class AuditOutcome(models.TextChoices):
    OK = "ok", "OK"
    FAILED = "failed", "Failed"


class AuditEvent(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_label = models.CharField(
        "who", max_length=150, help_text="Username at the time, or the command that ran."
    )
    action = models.CharField(max_length=10, choices=TokenAction.choices, db_index=True)
    job = models.ForeignKey(
        "admin_ext.BulkJob",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    profile = models.ForeignKey(
        "accounts.Profile", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    token = models.ForeignKey(
        "accounts.XToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    token_kind = models.CharField(max_length=10, blank=True)
    x_user_id = models.CharField("X user id", max_length=32, blank=True, db_index=True)
    screen_name = models.CharField(max_length=50, blank=True, db_index=True)
    outcome = models.CharField(max_length=10, choices=AuditOutcome.choices, db_index=True)
    token_status = models.CharField(
        max_length=10, blank=True, help_text="The token's status after the action."
    )
    http_status = models.PositiveSmallIntegerField("X's HTTP status", null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit event"

    def __str__(self) -> str:
        who = f"@{self.screen_name}" if self.screen_name else "an account"
        return f"{self.get_action_display()} {who}: {self.get_outcome_display()}"
