"""The check / refresh / revoke admin actions, shared by the Profiles and Tokens admins.

Every action becomes a BulkJob run by the background workers, and the admin goes
straight to the job's page, which follows it live: no action, however small,
holds the page while X answers. Each action is declared with
`admin_ext.permissions.guarded_action`: hidden from staff without its permission,
and refused (403) if it is posted anyway.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, gettext_lazy, ngettext

from accounts.models import SECRET_COLUMNS, Profile, XToken
from admin_ext import jobs
from admin_ext.audit import log_job_started
from admin_ext.models import BulkJob, BulkJobItem, ItemStatus, TokenAction
from admin_ext.permissions import guarded_action
from admin_ext.tasks import start_job

CONFIRMATION_LISTED = 100
REASONS_SHOWN = 3
NAMES_PER_REASON = 5


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


@guarded_action(description=gettext_lazy("Check tokens with X"), permissions=["check_token"])
def check_tokens(modeladmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
    selection = modeladmin.selection(queryset)
    return run_token_action(modeladmin, request, TokenAction.CHECK, selection)


@guarded_action(description=gettext_lazy("Refresh tokens"), permissions=["refresh_token"])
def refresh_tokens(modeladmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
    selection = modeladmin.selection(queryset)
    return run_token_action(modeladmin, request, TokenAction.REFRESH, selection)


@guarded_action(description=gettext_lazy("Revoke tokens at X…"), permissions=["revoke_token"])
def revoke_tokens(modeladmin, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
    selection = modeladmin.selection(queryset)
    if request.POST.get("confirmed") != "yes":
        return revoke_confirmation(modeladmin, request, queryset, selection)
    return run_token_action(modeladmin, request, TokenAction.REVOKE, selection)


# Running ----------------------------------------------------------------------------


def run_token_action(
    modeladmin, request: HttpRequest, action: str, selection: Selection
) -> HttpResponseRedirect:
    """Create the job, hand it to the workers and go to its page, which shows its progress.

    Even one token goes to the workers: X can take seconds to answer (or rate-limit
    us for minutes), and a page that waits for it looks frozen.
    """
    job = start_job(
        action,
        selection.tokens,
        profiles_without_tokens=selection.profiles_without_tokens,
        actor=request.user,
    )
    log_job_started(request.user, job)
    modeladmin.message_user(
        request,
        ngettext(
            "%(action)s of %(count)d token started as job #%(job)s; this page follows it.",
            "%(action)s of %(count)d tokens started as job #%(job)s; this page follows it.",
            job.total,
        )
        % {"action": job.get_action_display(), "count": job.total, "job": job.pk},
        messages.INFO,
    )
    return HttpResponseRedirect(job.get_admin_url())


def summary_message(job: BulkJob, progress: jobs.Progress, *, with_names: bool) -> str:
    """'Refresh: 3 ok, 2 failed (X answered 503: @a, @b).' for the finished job's page.

    The accounts are named only to staff who may view profiles.
    """
    head = format_html(
        gettext("{}: {} ok, {} failed"), job.get_action_display(), progress.ok, progress.failed
    )
    if not progress.failed:
        return format_html("{}.", head)
    return format_html("{} ({}).", head, failure_reasons(job, with_names=with_names))


def failure_reasons(job: BulkJob, *, with_names: bool = True) -> str:
    """The commonest failure messages, each with some of the accounts it hit.

    A message's own closing full stop is dropped: "again.: @x" reads as a typo.
    """
    names_by_reason: dict[str, list[str]] = defaultdict(list)
    failed = BulkJobItem.objects.filter(job=job, status=ItemStatus.FAILED)
    rows = failed.values_list("screen_name", "profile__user__username", "message")[:500]
    for screen_name, username, message in rows:
        names_by_reason[message.rstrip(".")].append(
            f"@{screen_name}" if screen_name else (username or gettext("(deleted account)"))
        )
    reasons = sorted(names_by_reason.items(), key=lambda pair: -len(pair[1]))
    if with_names:
        shown = [
            (message, ", ".join(names[:NAMES_PER_REASON]) + (" …" if len(names) > 5 else ""))
            for message, names in reasons[:REASONS_SHOWN]
        ]
        text = format_html_join("; ", "{}: {}", shown)
    else:
        shown = [(message, len(names)) for message, names in reasons[:REASONS_SHOWN]]
        text = format_html_join("; ", "{}: {}", shown)
    if len(reasons) > REASONS_SHOWN:
        text = format_html(gettext("{}; and {} other reasons"), text, len(reasons) - REASONS_SHOWN)
    return text


# Revoke confirmation -------------------------------------------------------------------


def revoke_confirmation(
    modeladmin, request: HttpRequest, queryset: QuerySet, selection: Selection
) -> TemplateResponse:
    """List the accounts about to lose their X connection before anything is revoked."""
    listed = (
        selection.tokens.select_related("profile__user")
        .defer(*SECRET_COLUMNS)
        .order_by("profile__screen_name", "pk")[:CONFIRMATION_LISTED]
    )
    token_count = selection.tokens.count()
    bare = selection.profiles_without_tokens
    without_token = bare.count() if bare is not None else 0
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": gettext("Revoke X tokens?"),
        "opts": modeladmin.model._meta,
        "tokens": listed,
        "token_count": token_count,
        "unlisted": max(0, token_count - len(listed)),
        "without_token": without_token,
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "cancel_url": _cancel_url(modeladmin, request),
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin_ext/revoke_confirmation.html", context)


def _cancel_url(modeladmin, request: HttpRequest) -> str:
    """Back where the revoke was asked for: the account's page or the (filtered) list."""
    selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
    if request.POST.get("from_change_page") == "1" and len(selected) == 1:
        opts = modeladmin.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[selected[0]])
    return request.get_full_path()
