"""One row per sign-in with X, so the dashboard can chart sign-ins per day.

Nothing else keeps this history: `last_login` and the profile only remember the
latest sign-in. Rows hold no token and no X data, only who, how and when.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import TokenKind
from tallies import keys
from tallies.tracked import TalliedModel, TalliedQuerySet


class SignInEvent(TalliedModel, models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    method = models.CharField(verbose_name=_("method"), max_length=10, choices=TokenKind.choices)
    created_at = models.DateTimeField(
        verbose_name=_("created at"), auto_now_add=True, db_index=True
    )

    objects = TalliedQuerySet.as_manager()
    # The dashboard's sign-ins per day (tallies.keys).
    tally_fields = ("created_at",)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("sign-in with X")
        verbose_name_plural = _("sign-ins with X")

    def __str__(self) -> str:
        return f"{self.user} via {self.get_method_display()} at {self.created_at:%Y-%m-%d %H:%M}"

    @classmethod
    def tally_keys(cls, values) -> list[str]:
        return keys.of_sign_in(*values)
