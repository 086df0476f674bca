from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class AdminExtConfig(AppConfig):
    """Staff tooling on the Django admin: token actions, bulk jobs, dashboard, export."""

    default = True  # of the two configs here, the one `"admin_ext"` means
    name = "admin_ext"
    verbose_name = _("Staff tools")

    def ready(self) -> None:
        from admin_ext import signals  # noqa: F401  (connects the sign-in counter)


class StaffAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the staff site (admin_ext.sites) as `admin.site`."""

    default = False
    default_site = "admin_ext.sites.StaffAdminSite"
