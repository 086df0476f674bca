from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in with X, the profiles it keeps in sync, and the encrypted tokens."""

    name = "accounts"
    verbose_name = "X accounts"
