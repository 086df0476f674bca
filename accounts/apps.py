from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in with X, the profiles it keeps in sync, and the encrypted tokens."""

    name = "accounts"
    verbose_name = "X accounts"

    def ready(self) -> None:
        # Connects the receivers that revoke (or queue) every grant whose token row
        # is deleted, whatever deletes it.
        from accounts import revocation  # noqa: F401
