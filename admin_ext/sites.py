"""The admin site staff use: the stock AdminSite with its model list grouped by task.

Django lists installed apps alphabetically, so staff met allauth's e-mail and
social tables, axes' logs and django-tasks' results between their own models.
`get_app_list` (public AdminSite API) regroups the index and the sidebar by what
staff do; every model stays registered and reachable by its URL, and each app's
own page (/admin/<app>/) still lists it as Django does.
"""

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _


class StaffGroup:
    """A heading in the model list and the models under it, in the order staff use them."""

    def __init__(self, key: str, name: str, models: tuple[str, ...], superusers_only=False):
        self.key = key
        self.name = name
        self.models = models
        self.superusers_only = superusers_only


STAFF_GROUPS = (
    StaffGroup("staff-accounts", _("Accounts"), ("accounts.Profile", "auth.User", "auth.Group")),
    StaffGroup("staff-tokens", _("X tokens"), ("accounts.XToken", "accounts.PendingRevocation")),
    StaffGroup(
        "staff-jobs",
        _("Jobs and audit"),
        ("admin_ext.BulkJob", "admin_ext.ExportJob", "admin_ext.AuditEvent"),
    ),
    # Locked-out staff are unlocked by deleting their access attempt.
    StaffGroup("staff-security", _("Security"), ("axes.AccessAttempt",), superusers_only=True),
)
# Registered but not listed: the site reads no allauth e-mail address or database
# app and keeps no allauth token; axes' logs and task results are for debugging.
UNLISTED = frozenset(
    {
        "account.EmailAddress",
        "socialaccount.SocialAccount",
        "socialaccount.SocialApp",
        "axes.AccessLog",
        "axes.AccessFailureLog",
        "django_tasks_database.DBTaskResult",
    }
)
OTHER = StaffGroup("staff-other", _("Other"), ())


class StaffAdminSite(admin.AdminSite):
    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        """Staff groups for the index and sidebar; an app's own page stays Django's."""
        if app_label is not None:
            return super().get_app_list(request, app_label)
        by_label = {
            entry["model"]._meta.label: entry
            for app in super().get_app_list(request)
            for entry in app["models"]
        }
        grouped = []
        for group in STAFF_GROUPS:
            if group.superusers_only and not request.user.is_superuser:
                by_label = {k: v for k, v in by_label.items() if k not in group.models}
                continue
            entries = [by_label.pop(label) for label in group.models if label in by_label]
            grouped.append(_group(group, entries))
        others = [entry for label, entry in by_label.items() if label not in UNLISTED]
        grouped.append(_group(OTHER, others))
        return [group for group in grouped if group["models"]]


def _group(group: StaffGroup, entries: list[dict]) -> dict:
    return {
        "name": group.name,
        "app_label": group.key,
        "app_url": "",
        "has_module_perms": True,
        "models": entries,
    }
