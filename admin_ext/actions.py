"""The check / refresh / revoke admin actions, shared by the Profiles and Tokens admins.

Every action becomes a BulkJob, so each one is audited the same way and has a
page to link to. Up to ADMIN_EXT_SYNC_LIMIT tokens run in the request; more, or
"select all", go to the background workers. Each action is guarded twice: by
`@admin.action(permissions=...)`, which hides it, and by `refuse_unpermitted_action`,
which answers a hand-made POST with 403 instead of Django's silent "no action".
"""

from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from accounts.models import Profile, XToken
from admin_ext import jobs
from admin_ext.models import BulkJob, BulkJobItem, ItemStatus, TokenAction
from admin_ext.tasks import enqueue_job

ACTION_PERMISSIONS = {
    "check_tokens": "accounts.check_token",
    "refresh_tokens": "accounts.refresh_token",
    "revoke_tokens": "accounts.revoke_token",
}
CONFIRMATION_LISTED = 100
REASONS_SHOWN = 3
NAMES_PER_REASON = 5


def refuse_unpermitted_action(request: HttpRequest) -> None:
    """403 for a POST naming a token action the user may not run."""
    if request.method != "POST":
        return
    permission = ACTION_PERMISSIONS.get(request.POST.get("action", ""))
    if permission and not request.user.has_perm(permission):
        raise PermissionDenied


@dataclass(frozen=True)
class Selection:
    """The tokens an action acts on, plus selected profiles that have none."""

    tokens: QuerySet[XToken]
    profiles_without_tokens: QuerySet[Profile] | None = None

    def count(self) -> int:
        bare = self.profiles_without_tokens
        return self.tokens.count() + (bare.count() if bare is not None else 0)


def selection_of_profiles(profiles: QuerySet[Profile]) -> Selection:
    return Selection(jobs.tokens_of_profiles(profiles), jobs.profiles_without_tokens(profiles))


def selection_of_tokens(tokens: QuerySet[XToken]) -> Selection:
    return Selection(XToken.objects.filter(pk__in=tokens.values("pk")))


# The actions ----------------------------------------------------------------------


@admin.action(description="Check tokens with X", permissions=["check_token"])
def check_tokens(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    _require(request, "check_tokens")
    run_token_action(modeladmin, request, TokenAction.CHECK, modeladmin.selection(queryset))


@admin.action(description="Refresh tokens", permissions=["refresh_token"])
def refresh_tokens(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    _require(request, "refresh_tokens")
    run_token_action(modeladmin, request, TokenAction.REFRESH, modeladmin.selection(queryset))


@admin.action(description="Revoke tokens at X…", permissions=["revoke_token"])
def revoke_tokens(modeladmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
    _require(request, "revoke_tokens")
    selection = modeladmin.selection(queryset)
    if request.POST.get("confirmed") != "yes":
        return revoke_confirmation(modeladmin, request, queryset, selection)
    run_token_action(modeladmin, request, TokenAction.REVOKE, selection)
    return None


def _require(request: HttpRequest, action: str) -> None:
    if not request.user.has_perm(ACTION_PERMISSIONS[action]):
        raise PermissionDenied


# Running ----------------------------------------------------------------------------


def run_token_action(
    modeladmin, request: HttpRequest, action: str, selection: Selection
) -> BulkJob:
    """Create the job, run it here or hand it to the workers, and say what happened."""
    select_all = request.POST.get("select_across") == "1"
    background = select_all or selection.count() > settings.ADMIN_EXT_SYNC_LIMIT
    job = jobs.create_job(
        action,
        selection.tokens,
        profiles_without_tokens=selection.profiles_without_tokens,
        actor=request.user,
        run_in_background=background,
    )
    if background:
        enqueue_job(job)
        modeladmin.message_user(
            request,
            format_html(
                '{} of {} tokens runs in the background: follow it on <a href="{}">job #{}</a>.',
                job.get_action_display(),
                job.total,
                job.get_admin_url(),
                job.pk,
            ),
            messages.INFO,
        )
        return job
    progress = jobs.run_job(job)
    modeladmin.message_user(
        request,
        summary_message(job, progress),
        messages.SUCCESS if progress.failed == 0 else messages.WARNING,
    )
    return job


def summary_message(job: BulkJob, progress: jobs.Progress) -> str:
    """'Refresh: 3 ok, 2 failed (X answered 503…: @a, @b). Job #7.' with the link."""
    link = format_html('<a href="{}">Job #{}</a>', job.get_admin_url(), job.pk)
    head = format_html(
        "{}: {} ok, {} failed", job.get_action_display(), progress.ok, progress.failed
    )
    if not progress.failed:
        return format_html("{}. {}.", head, link)
    return format_html("{} ({}). {}.", head, failure_reasons(job), link)


def failure_reasons(job: BulkJob) -> str:
    """The commonest failure messages, each with some of the accounts it hit."""
    names_by_reason: dict[str, list[str]] = defaultdict(list)
    failed = BulkJobItem.objects.filter(job=job, status=ItemStatus.FAILED)
    rows = failed.values_list("screen_name", "profile__user__username", "message")[:500]
    for screen_name, username, message in rows:
        names_by_reason[message].append(
            f"@{screen_name}" if screen_name else (username or "(deleted account)")
        )
    reasons = sorted(names_by_reason.items(), key=lambda pair: -len(pair[1]))
    shown = [
        (message, ", ".join(names[:NAMES_PER_REASON]) + (" …" if len(names) > 5 else ""))
        for message, names in reasons[:REASONS_SHOWN]
    ]
    text = format_html_join("; ", "{}: {}", shown)
    if len(reasons) > REASONS_SHOWN:
        text = format_html("{}; and {} other reasons", text, len(reasons) - REASONS_SHOWN)
    return text


# Revoke confirmation -------------------------------------------------------------------


def revoke_confirmation(
    modeladmin, request: HttpRequest, queryset: QuerySet, selection: Selection
) -> TemplateResponse:
    """List the accounts about to lose their X connection before anything is revoked."""
    listed = (
        selection.tokens.select_related("profile__user")
        .defer("access_token", "token_secret", "refresh_token")
        .order_by("profile__screen_name", "pk")[:CONFIRMATION_LISTED]
    )
    token_count = selection.tokens.count()
    bare = selection.profiles_without_tokens
    without_token = bare.count() if bare is not None else 0
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Revoke X tokens?",
        "opts": modeladmin.model._meta,
        "tokens": listed,
        "token_count": token_count,
        "unlisted": max(0, token_count - len(listed)),
        "without_token": without_token,
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "background": request.POST.get("select_across") == "1"
        or token_count + without_token > settings.ADMIN_EXT_SYNC_LIMIT,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin_ext/revoke_confirmation.html", context)
