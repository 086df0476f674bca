from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Sign-in with X, the profiles it keeps in sync, and the encrypted tokens."""

    name = "accounts"
    verbose_name = _("X accounts")

    def ready(self) -> None:
        # Connects the receivers that revoke (or queue) every grant whose token row
        # is deleted, whatever deletes it.
        from accounts import revocation  # noqa: F401
