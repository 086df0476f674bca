"""Who may do what on the staff side: the one place its permission rules are written.

The token actions (check, refresh, revoke), the job pages that follow them, the
"resume" and "retry now" actions, profile exports and their background files all
ask here. Admin actions are declared with `guarded_action`: Django's
`permissions=` hides an action from staff who lack them, and the action itself
refuses (403) when it is run anyway, so no action relies on being hidden.
`ActionPermissions` gives a ModelAdmin the `has_<name>_permission` methods those
permission names stand for.
"""

import functools
from collections.abc import Callable, Sequence

from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from admin_ext.models import TokenAction

TOKEN_ACTION_PERMISSIONS = {
    TokenAction.CHECK: "accounts.check_token",
    TokenAction.REFRESH: "accounts.refresh_token",
    TokenAction.REVOKE: "accounts.revoke_token",
}
EXPORT_PERMISSION = "accounts.export_profile"
VIEW_PROFILE_PERMISSION = "accounts.view_profile"

User = AbstractBaseUser | AnonymousUser


def may_run(user: User, action: str) -> bool:
    """Whether `user` may run a token action (a TokenAction), or follow and resume its job."""
    return user.has_perm(TOKEN_ACTION_PERMISSIONS[action])


def may_run_any(user: User) -> bool:
    return any(may_run(user, action) for action in TOKEN_ACTION_PERMISSIONS)


def may_export(user: User | None) -> bool:
    """Asked at the click and again when a background export starts writing."""
    return bool(user and user.is_active and user.is_staff and user.has_perm(EXPORT_PERMISSION))


def may_see_accounts(user: User) -> bool:
    """Who the accounts are is profile data: staff who may not view profiles follow
    a job by its counts and outcomes only."""
    return user.has_perm(VIEW_PROFILE_PERMISSION)


class ActionPermissions:
    """The `has_<name>_permission` methods behind the token actions' permission names."""

    def has_check_token_permission(self, request: HttpRequest) -> bool:
        return may_run(request.user, TokenAction.CHECK)

    def has_refresh_token_permission(self, request: HttpRequest) -> bool:
        return may_run(request.user, TokenAction.REFRESH)

    def has_revoke_token_permission(self, request: HttpRequest) -> bool:
        return may_run(request.user, TokenAction.REVOKE)

    def has_resume_permission(self, request: HttpRequest) -> bool:
        return may_run_any(request.user)


def require(modeladmin, request: HttpRequest, permissions: Sequence[str]) -> None:
    """403 unless the user holds one of `permissions`: Django's own test for offering an action."""
    if not any(getattr(modeladmin, f"has_{name}_permission")(request) for name in permissions):
        raise PermissionDenied


def guarded_action(
    *, permissions: Sequence[str], description: str | None = None
) -> Callable[[Callable], Callable]:
    """`@admin.action(permissions=...)` whose function also checks them on every call."""

    def decorate(function: Callable) -> Callable:
        @functools.wraps(function)
        def checked(modeladmin, request: HttpRequest, queryset):
            require(modeladmin, request, permissions)
            return function(modeladmin, request, queryset)

        return admin.action(checked, permissions=list(permissions), description=description)

    return decorate
