from django.apps import AppConfig


class AdminExtConfig(AppConfig):
    """Staff tooling on the Django admin: token actions, bulk jobs, dashboard, export."""

    name = "admin_ext"
    verbose_name = "Staff tools"

    def ready(self) -> None:
        from admin_ext import signals  # noqa: F401  (connects the sign-in counter)
