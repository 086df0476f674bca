"""The staff side of the site, on the stock Django admin.

Profiles, tokens, bulk jobs and the audit trail, plus safe replacements for
allauth's own SocialToken/SocialApp pages. The rules every class here follows:
- no page lists, shows, searches or accepts a token secret; tokens appear only
  masked (kind and last four characters) and their encrypted columns are never
  even loaded for a list;
- list pages cost a constant number of queries at any page size (select_related
  and correlated subqueries instead of per-row lookups);
- profiles, tokens, jobs and audit events are read-only here: X is the source of
  profile data, tokens change only through check/refresh/revoke, and the records
  of what staff did must not be edited;
- users, profiles and tokens can be deleted by staff with the delete permission:
  every X grant they hold is revoked at X (or kept as a pending revocation until X
  confirms) by accounts.revocation, and the confirmation page says how many.
"""

from datetime import datetime, timedelta

from allauth.socialaccount import admin as allauth_admin  # noqa: F401  (registers first)
from allauth.socialaccount.models import SocialApp, SocialToken
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import flatten, unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, gettext_lazy, ngettext

from accounts import revocation
from accounts.models import (
    SECRET_COLUMNS,
    PendingRevocation,
    Profile,
    TokenKind,
    TokenStatus,
    XToken,
    current_token_column,
)
from accounts.secret_columns import masked
from admin_ext import jobs
from admin_ext.actions import (
    Selection,
    check_tokens,
    refresh_tokens,
    revoke_tokens,
    selection_of_profiles,
    selection_of_tokens,
    summary_message,
)
from admin_ext.admin_guard import ChoiceListFilter, GuardedAdminMixin, guard_every_admin
from admin_ext.export import x_profiles
from admin_ext.export_admin import CurrentTokenStatusFilter, ProfileExportMixin
from admin_ext.models import AuditEvent, BulkJob, BulkJobItem, ItemStatus, TokenAction
from admin_ext.paginators import EstimatedCountPaginator
from admin_ext.permissions import guarded_action, may_run, may_see_accounts
from admin_ext.tasks import enqueue_job

# Query parameters that page or sort a list without narrowing it.
UNFILTERING_PARAMETERS = {"p", "o", "_changelist_filters"}

admin.site.site_header = f"{settings.SITE_NAME} staff"
admin.site.site_title = f"{settings.SITE_NAME} staff"
admin.site.index_title = gettext_lazy("Accounts, tokens and jobs")

EXPIRY_WINDOW = timedelta(hours=1)
JOB_ITEMS_PER_PAGE = 100
JOB_ITEMS_TEMPLATE = "admin/admin_ext/bulkjob/job_items.html"


def when(moment: datetime | None) -> str:
    """A moment as people read it in a list ("3 hours ago", "in 50 minutes"); the
    exact local time is in the tooltip and the machine-readable one in datetime=."""
    if moment is None:
        return "—"
    exact = date_format(timezone.localtime(moment), "DATETIME_FORMAT")
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', moment.isoformat(), exact, naturaltime(moment)
    )


def masked_token(kind: str | None, hint: str | None) -> str:
    return masked(TokenKind(kind).label, hint) if kind else "—"


TOKEN_ACTION_BUTTONS = (
    ("check_tokens", gettext_lazy("Check with X"), False),
    ("refresh_tokens", gettext_lazy("Refresh"), False),
    ("revoke_tokens", gettext_lazy("Revoke at X…"), True),
)


class TokenActionsMixin:
    """check_tokens / refresh_tokens / revoke_tokens, each behind its own permission,
    on the list and, as buttons posting the same list actions, on each object's page."""

    actions = [check_tokens, refresh_tokens, revoke_tokens]
    change_form_template = "admin/admin_ext/token_change_form.html"

    def selection(self, queryset: QuerySet) -> Selection:
        raise NotImplementedError

    def tokens_of(self, queryset: QuerySet) -> QuerySet[XToken]:
        """The tokens a deletion of `queryset` ends: those its token actions act on."""
        return self.selection(queryset).tokens

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        context = {
            **(extra_context or {}),
            "token_action_buttons": self.token_action_buttons(request, object_id),
        }
        return super().change_view(request, object_id, form_url, context)

    def token_action_buttons(self, request: HttpRequest, object_id) -> list[dict]:
        """The actions this person may run, when the account holds a token to act on."""
        offered = self.get_actions(request)
        permitted = [
            (name, label, destructive)
            for name, label, destructive in TOKEN_ACTION_BUTTONS
            if name in offered
        ]
        if not permitted:
            return []
        # get_object answers None for an id that names nothing ("abc" included):
        # the change view then says so instead of this failing first.
        shown = self.get_object(request, unquote(str(object_id)))
        if shown is None:
            return []
        tokens = self.selection(self.model._default_manager.filter(pk=shown.pk)).tokens.count()
        if not tokens:
            return []
        noun = "token" if tokens == 1 else "tokens"
        return [
            {"name": name, "label": label, "destructive": destructive, "noun": noun}
            for name, label, destructive in permitted
        ]


@guarded_action(permissions=["delete"])
def delete_selected_revoking_grants(modeladmin, request: HttpRequest, queryset: QuerySet):
    """Django's own "delete selected", with the number of X grants it will revoke."""
    response = django_delete_selected(modeladmin, request, queryset)
    if isinstance(response, TemplateResponse):
        response.context_data["x_grants"] = revocation.grants_held(modeladmin.tokens_of(queryset))
    return response


class GrantDeletionMixin:
    """Deleting users, profiles or tokens here revokes the X grants they hold.

    The revocation itself happens in accounts.revocation (a pre_delete receiver on
    XToken), whatever deletes the rows; this only names the reason in the pending
    list and audit trail, and tells staff how many grants the deletion will revoke.
    """

    delete_confirmation_template = "admin/x_grants/delete_confirmation.html"
    delete_selected_confirmation_template = "admin/x_grants/delete_selected_confirmation.html"

    def tokens_of(self, queryset: QuerySet) -> QuerySet[XToken]:
        raise NotImplementedError

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _, name, description = actions["delete_selected"]
            actions[name] = (delete_selected_revoking_grants, name, description)
        return actions

    def delete_view(self, request: HttpRequest, object_id, extra_context=None):
        # get_object answers None for an id that names nothing ("abc", a NUL byte);
        # Django's delete view then says so instead of this failing with a 500.
        shown = self.get_object(request, unquote(str(object_id)))
        chosen = self.model._default_manager.filter(pk=shown.pk if shown else None)
        tokens = self.tokens_of(chosen)
        context = {**(extra_context or {}), "x_grants": revocation.grants_held(tokens)}
        return super().delete_view(request, object_id, context)

    def delete_model(self, request: HttpRequest, obj) -> None:
        with revocation.deletion_reason(f"deleted in the admin by {request.user.get_username()}"):
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with revocation.deletion_reason(f"deleted in the admin by {request.user.get_username()}"):
            super().delete_queryset(request, queryset)


class ReadOnlyAdmin(GuardedAdminMixin, admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


# Profiles -------------------------------------------------------------------------------


class CurrentTokenKindFilter(ChoiceListFilter):
    title = gettext_lazy("current token kind")
    parameter_name = "token_kind"

    def lookups(self, request, model_admin):
        return TokenKind.choices

    def filter(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(current_kind=value)


class ExpiresWithinHourFilter(ChoiceListFilter):
    """Tokens X will refuse within the hour (or already does): refresh candidates."""

    title = gettext_lazy("token expiry")
    parameter_name = "expires"
    expiry_field = "expires_at"
    status_field = "status"

    def lookups(self, request, model_admin):
        return [("1h", gettext("Expires within 1 h"))]

    def filter(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(
            **{f"{self.expiry_field}__lte": timezone.now() + EXPIRY_WINDOW}
        ).exclude(**{self.status_field: TokenStatus.REVOKED})


class CurrentTokenExpiresFilter(ExpiresWithinHourFilter):
    expiry_field = "current_expires_at"
    status_field = "current_status"


@admin.register(Profile)
class ProfileAdmin(ProfileExportMixin, TokenActionsMixin, GrantDeletionMixin, ReadOnlyAdmin):
    list_display = (
        "account",
        "x_link",
        "followers",
        "token_kind",
        "token_status",
        "token_expires",
        "last_synced",
        "last_sign_in",
    )
    list_display_links = ("account",)
    list_select_related = ("user",)
    list_filter = (
        CurrentTokenStatusFilter,
        CurrentTokenKindFilter,
        CurrentTokenExpiresFilter,
        "protected",
        "verified",
    )
    search_fields = ("screen_name", "name", "x_user_id", "user__email")
    ordering = ("-last_synced_at", "-pk")  # indexed (admin_ext migration 0006)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = (
        "user",
        "x_link",
        "x_user_id",
        "name",
        "avatar",
        "description",
        "location",
        "url",
        ("followers_count", "following_count", "tweet_count", "listed_count"),
        ("protected", "verified"),
        "x_created_at",
        "sign_in_method",
        "last_synced_at",
        "tokens_summary",
        ("created_at", "updated_at"),
    )
    readonly_fields = flatten(fields)

    def get_paginator(
        self, request: HttpRequest, queryset: QuerySet, per_page: int, *args, **kwargs
    ):
        paginator = super().get_paginator(request, queryset, per_page, *args, **kwargs)
        if not set(request.GET) - UNFILTERING_PARAMETERS:
            paginator.estimate_from = Profile.objects.all()
        return paginator

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """X accounts only: a staff account's empty profile is no row to list or export
        (its user page has everything about it)."""
        return (
            super()
            .get_queryset(request)
            .filter(pk__in=x_profiles().values("pk"))
            .annotate(
                current_kind=current_token_column("kind"),
                current_hint=current_token_column("token_hint"),
                current_status=current_token_column("status"),
                current_expires_at=current_token_column("expires_at"),
            )
        )

    def selection(self, queryset: QuerySet) -> Selection:
        return selection_of_profiles(queryset)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    @admin.display(description=gettext_lazy("picture"))
    def avatar(self, profile: Profile) -> str:
        if not profile.profile_image_url:
            return "—"
        return format_html(
            '<img src="{}" alt="" width="32" height="32" loading="lazy" class="x-avatar">',
            profile.profile_image_url,
        )

    @admin.display(description=gettext_lazy("account"), ordering="name")
    def account(self, profile: Profile) -> str:
        name = profile.name or profile.user.get_username()
        if not profile.profile_image_url:
            return name
        return format_html(
            '<img src="{}" alt="" width="24" height="24" loading="lazy" class="x-avatar"> {}',
            profile.profile_image_url,
            name,
        )

    @admin.display(description=gettext_lazy("followers"), ordering="followers_count")
    def followers(self, profile: Profile) -> int:
        return profile.followers_count

    @admin.display(description=gettext_lazy("screen name"), ordering="screen_name")
    def x_link(self, profile: Profile) -> str:
        if not profile.screen_name:
            return "—"
        return format_html(
            '<a href="{}" rel="noopener noreferrer" target="_blank">@{}</a>',
            profile.x_profile_url,
            profile.screen_name,
        )

    @admin.display(description=gettext_lazy("token"), ordering="current_kind")
    def token_kind(self, profile: Profile) -> str:
        return masked_token(profile.current_kind, profile.current_hint)

    @admin.display(description=gettext_lazy("token status"), ordering="current_status")
    def token_status(self, profile: Profile) -> str:
        if not profile.current_status:
            return "no token"
        return TokenStatus(profile.current_status).label

    @admin.display(description=gettext_lazy("token expires"), ordering="current_expires_at")
    def token_expires(self, profile: Profile) -> str:
        return when(profile.current_expires_at)

    @admin.display(description=gettext_lazy("last synced"), ordering="last_synced_at")
    def last_synced(self, profile: Profile) -> str:
        return when(profile.last_synced_at)

    @admin.display(description=gettext_lazy("last sign-in"), ordering="user__last_login")
    def last_sign_in(self, profile: Profile) -> str:
        return when(profile.user.last_login)

    @admin.display(description=gettext_lazy("X tokens"))
    def tokens_summary(self, profile: Profile) -> str:
        tokens = profile.tokens.defer(*SECRET_COLUMNS).order_by("kind")
        if not tokens:
            return gettext("none")
        return format_html_join(
            "",
            '<p><a href="{}">{}</a>: {}, expires {}</p>',
            (
                (
                    reverse("admin:accounts_xtoken_change", args=[token.pk]),
                    token.masked,
                    token.get_status_display(),
                    when(token.expires_at) if token.expires_at else "never",
                )
                for token in tokens
            ),
        )


# Tokens -----------------------------------------------------------------------------------


@admin.register(XToken)
class XTokenAdmin(TokenActionsMixin, GrantDeletionMixin, ReadOnlyAdmin):
    list_display = (
        "masked",
        "account",
        "status",
        "expires",
        "last_checked",
        "last_refreshed",
        "short_error",
    )
    list_select_related = ("profile",)
    list_filter = ("kind", "status", ExpiresWithinHourFilter)
    search_fields = ("profile__screen_name", "profile__name", "profile__x_user_id")
    ordering = ("-updated_at", "-pk")  # indexed (admin_ext migration 0006)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = (
        "account",
        "kind",
        "masked",
        "scopes",
        "status",
        "expires_at",
        "last_checked_at",
        "last_refreshed_at",
        "last_error",
        ("created_at", "updated_at"),
    )
    readonly_fields = flatten(fields)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer(*SECRET_COLUMNS)

    def selection(self, queryset: QuerySet) -> Selection:
        return selection_of_tokens(queryset)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    @admin.display(description=gettext_lazy("token"), ordering="kind")
    def masked(self, token: XToken) -> str:
        return token.masked

    @admin.display(description=gettext_lazy("account"), ordering="profile__screen_name")
    def account(self, token: XToken) -> str:
        profile = token.profile
        label = f"@{profile.screen_name}" if profile.screen_name else str(profile)
        url = reverse("admin:accounts_profile_change", args=[profile.pk])
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description=gettext_lazy("expires"), ordering="expires_at")
    def expires(self, token: XToken) -> str:
        return when(token.expires_at)

    @admin.display(description=gettext_lazy("last checked"), ordering="last_checked_at")
    def last_checked(self, token: XToken) -> str:
        return when(token.last_checked_at)

    @admin.display(description=gettext_lazy("last refreshed"), ordering="last_refreshed_at")
    def last_refreshed(self, token: XToken) -> str:
        return when(token.last_refreshed_at)

    @admin.display(description=gettext_lazy("last error"))
    def short_error(self, token: XToken) -> str:
        return token.last_error[:80] + ("…" if len(token.last_error) > 80 else "")


# Users --------------------------------------------------------------------------------------


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    verbose_name = "X profile"
    fields = ProfileAdmin.fields[1:]  # all but the user: this is the user's page
    readonly_fields = flatten(fields)
    x_link = ProfileAdmin.x_link
    avatar = ProfileAdmin.avatar
    tokens_summary = ProfileAdmin.tokens_summary

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class XUserAdmin(GrantDeletionMixin, UserAdmin):
    """Django's user admin, plus the person's X account and token status.

    Deleting a user revokes the X grants their tokens hold (GrantDeletionMixin).
    """

    inlines = [ProfileInline]
    list_display = (
        "username",
        "email",
        "x_account",
        "x_token_status",
        "is_staff",
        "last_login",
    )
    list_select_related = ("x_profile",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                x_token_status=current_token_column(
                    "status", profile="x_profile__id", method="x_profile__sign_in_method"
                )
            )
        )

    def tokens_of(self, queryset: QuerySet) -> QuerySet[XToken]:
        return XToken.objects.filter(profile__user__in=queryset.values("pk"))

    @admin.display(description=gettext_lazy("X account"), ordering="x_profile__screen_name")
    def x_account(self, user) -> str:
        profile = getattr(user, "x_profile", None)
        return f"@{profile.screen_name}" if profile and profile.screen_name else "—"

    @admin.display(description=gettext_lazy("X token"), ordering="x_token_status")
    def x_token_status(self, user) -> str:
        return (
            TokenStatus(user.x_token_status).label if user.x_token_status else gettext("no token")
        )


# Pending revocations ------------------------------------------------------------------------


class ResolvedFilter(admin.SimpleListFilter):
    title = gettext_lazy("confirmed by X")
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return [("no", gettext("Not yet (still pending)")), ("yes", gettext("Yes"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(resolved_at__isnull=self.value() == "no")
        return queryset


@guarded_action(description=gettext_lazy("Retry now at X"), permissions=["revoke_token"])
def retry_revocations_now(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    waiting = queryset.filter(resolved_at__isnull=True)
    pks = list(waiting.values_list("pk", flat=True)[: settings.ADMIN_EXT_SYNC_LIMIT])
    PendingRevocation.objects.filter(pk__in=pks).update(next_attempt_at=timezone.now())
    outcomes = [outcome for pk in pks if (outcome := revocation.attempt_pending(pk))]
    confirmed = sum(outcome.ok for outcome in outcomes)
    modeladmin.message_user(
        request,
        ngettext(
            "X confirmed %(confirmed)d of %(count)d revocation; the rest stay pending "
            "and are retried by the workers.",
            "X confirmed %(confirmed)d of %(count)d revocations; the rest stay pending "
            "and are retried by the workers.",
            len(outcomes),
        )
        % {"confirmed": confirmed, "count": len(outcomes)},
        messages.SUCCESS if confirmed == len(outcomes) else messages.WARNING,
    )


@admin.register(PendingRevocation)
class PendingRevocationAdmin(ReadOnlyAdmin):
    """Grants the site gave up that X has not confirmed revoked; never shows a secret."""

    list_display = (
        "masked",
        "account",
        "reason",
        "attempts",
        "next_attempt_at",
        "short_error",
        "created_at",
        "resolved_at",
    )
    list_filter = (ResolvedFilter, "kind", "created_at")
    search_fields = ("screen_name", "x_user_id", "reason")
    ordering = ("resolved_at", "next_attempt_at", "-pk")
    actions = [retry_revocations_now]
    fields = (
        "masked",
        "account",
        "kind",
        "reason",
        "token_ref",
        "attempts",
        "next_attempt_at",
        "last_error",
        "last_http_status",
        "created_at",
        "resolved_at",
        "resolution",
    )
    readonly_fields = flatten(fields)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer(*SECRET_COLUMNS)

    @admin.display(description=gettext_lazy("token"), ordering="kind")
    def masked(self, pending: PendingRevocation) -> str:
        return pending.masked

    @admin.display(description=gettext_lazy("account"), ordering="screen_name")
    def account(self, pending: PendingRevocation) -> str:
        name = f"@{pending.screen_name}" if pending.screen_name else "—"
        return f"{name} ({pending.x_user_id})" if pending.x_user_id else name

    @admin.display(description=gettext_lazy("last error"))
    def short_error(self, pending: PendingRevocation) -> str:
        return pending.last_error[:80] + ("…" if len(pending.last_error) > 80 else "")


# Bulk jobs -----------------------------------------------------------------------------------


@guarded_action(description=gettext_lazy("Resume stalled jobs"), permissions=["resume"])
def resume_jobs(modeladmin, request: HttpRequest, queryset: QuerySet) -> None:
    resumed, skipped = [], []
    for job in queryset:
        if may_run(request.user, job.action) and jobs.job_state(job) == "stalled":
            enqueue_job(job)
            resumed.append(f"#{job.pk}")
        else:
            skipped.append(f"#{job.pk}")
    if resumed:
        modeladmin.message_user(
            request,
            gettext("Resumed %(jobs)s: the workers will do what is left.")
            % {"jobs": ", ".join(resumed)},
        )
    if skipped:
        modeladmin.message_user(
            request,
            gettext("Not resumed %(jobs)s: only stalled jobs you may run are resumed.")
            % {"jobs": ", ".join(skipped)},
            messages.WARNING,
        )


@admin.register(BulkJob)
class BulkJobAdmin(ReadOnlyAdmin):
    list_display = (
        "__str__",
        "action",
        "created_by_label",
        "source",
        "created_at",
        "total",
        "ok_count",
        "failed_count",
        "state",
    )
    list_filter = ("action", "source", "run_in_background", "created_at")
    search_fields = ("created_by_label",)
    actions = [resume_jobs]
    fields = (
        "action",
        "source",
        "created_by_label",
        "run_in_background",
        "total",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "task_id",
    )
    readonly_fields = flatten(fields)
    change_form_template = "admin/admin_ext/bulkjob/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                ok_count=Count("items", filter=Q(items__status=ItemStatus.OK)),
                failed_count=Count("items", filter=Q(items__status=ItemStatus.FAILED)),
            )
        )

    @admin.display(description=gettext_lazy("ok"), ordering="ok_count")
    def ok_count(self, job: BulkJob) -> int:
        return job.ok_count

    @admin.display(description=gettext_lazy("failed"), ordering="failed_count")
    def failed_count(self, job: BulkJob) -> int:
        return job.failed_count

    @admin.display(description=gettext_lazy("state"))
    def state(self, job: BulkJob) -> str:
        return jobs.job_state(job)

    def get_urls(self):
        progress = path(
            "<path:object_id>/progress/",
            self.admin_site.admin_view(self.progress_view),
            name="admin_ext_bulkjob_progress",
        )
        return [progress, *super().get_urls()]

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        """Staff may follow a job they started with a token permission they still
        hold, even without the job list's view permission: every action leads here."""
        if super().has_view_permission(request, obj):
            return True
        return (
            obj is not None
            and obj.created_by_id == request.user.pk
            and may_run(request.user, obj.action)
        )

    def viewable_job(self, request: HttpRequest, object_id: str) -> BulkJob:
        """The job, for staff with the job model's view permission (or who started it);
        404 for an id that names no job (`abc` included)."""
        job = self.get_object(request, unquote(object_id))
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        if job is None:
            raise Http404("No such job.")
        return job

    def progress_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        """The job page polls this: the counts, the page of items it shows (same
        filter and page), and once finished the one-line summary."""
        job = self.viewable_job(request, object_id)
        progress = jobs.job_progress(job)
        context = self.items_context(request, job)
        data = {
            **progress.as_dict(),
            "items_html": render_to_string(JOB_ITEMS_TEMPLATE, context, request=request),
            "summary_html": self.summary(request, job, progress),
        }
        return JsonResponse(data)

    def summary(self, request: HttpRequest, job: BulkJob, progress: jobs.Progress) -> str:
        if progress.state != "done":
            return ""
        return summary_message(job, progress, with_names=may_see_accounts(request.user))

    def items_context(self, request: HttpRequest, job: BulkJob) -> dict:
        items = BulkJobItem.objects.filter(job=job).select_related("profile__user").order_by("pk")
        status = request.GET.get("status", "")
        if status in ItemStatus.values:
            items = items.filter(status=status)
        items_page = Paginator(items, JOB_ITEMS_PER_PAGE).get_page(request.GET.get("page"))
        for item in items_page:
            item.kind_label = (
                TokenKind(item.token_kind).label if item.token_kind else gettext("no token")
            )
        return {
            "items_page": items_page,
            "item_status": status,
            "show_accounts": may_see_accounts(request.user),
        }

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        job = self.viewable_job(request, object_id)
        progress = jobs.job_progress(job)
        context = {
            **(extra_context or {}),
            **self.items_context(request, job),
            "progress": progress,
            "progress_url": reverse("admin:admin_ext_bulkjob_progress", args=[job.pk]),
            "summary_html": self.summary(request, job, progress),
            "item_statuses": ItemStatus.choices,
            "action_label": TokenAction(job.action).label,
        }
        return super().change_view(request, object_id, form_url, context)


# Audit trail ------------------------------------------------------------------------------------


class AuditTokenKindFilter(ChoiceListFilter):
    """The method's one name ("OAuth 2.0"), not the stored code ("oauth2")."""

    title = gettext_lazy("token kind")
    parameter_name = "token_kind"

    def lookups(self, request, model_admin):
        return TokenKind.choices

    def filter(self, queryset: QuerySet, value: str) -> QuerySet:
        return queryset.filter(token_kind=value)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "actor_label",
        "action",
        "account",
        "kind",
        "outcome",
        "http_status",
        "short_message",
        "job_link",
    )
    list_filter = (
        "action",
        "outcome",
        AuditTokenKindFilter,
        ("actor", admin.RelatedOnlyFieldListFilter),
        "http_status",
        "created_at",
    )
    search_fields = ("screen_name", "x_user_id", "actor_label", "message")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "actor_label",
        "action",
        "account",
        "kind",
        "outcome",
        "token_status",
        "http_status",
        "message",
        "job_link",
    )
    readonly_fields = flatten(fields)

    @admin.display(description=gettext_lazy("account"), ordering="screen_name")
    def account(self, event: AuditEvent) -> str:
        name = f"@{event.screen_name}" if event.screen_name else "—"
        return f"{name} ({event.x_user_id})" if event.x_user_id else name

    @admin.display(description=gettext_lazy("token kind"), ordering="token_kind")
    def kind(self, event: AuditEvent) -> str:
        if not event.token_kind:
            return "no token"
        return dict(TokenKind.choices).get(event.token_kind, event.token_kind)

    @admin.display(description=gettext_lazy("message"))
    def short_message(self, event: AuditEvent) -> str:
        return event.message[:100] + ("…" if len(event.message) > 100 else "")

    @admin.display(description=gettext_lazy("job"), ordering="job_id")
    def job_link(self, event: AuditEvent) -> str:
        if event.job_id is None:
            return "—"
        url = reverse("admin:admin_ext_bulkjob_change", args=[event.job_id])
        return format_html('<a href="{}">#{}</a>', url, event.job_id)


# allauth's token and app pages ------------------------------------------------------------------

# allauth's SocialToken admin lists tokens in clear. The site stores none there
# (SOCIALACCOUNT_STORE_TOKENS = False), so the page goes entirely.
if admin.site.is_registered(SocialToken):
    admin.site.unregister(SocialToken)
if admin.site.is_registered(SocialApp):
    admin.site.unregister(SocialApp)


@admin.register(SocialApp)
class SocialAppAdmin(ReadOnlyAdmin):
    """Apps come from settings (X_CLIENT_* / X_CONSUMER_*); a database app is only
    shown, never with its secret, and cannot be added or edited here."""

    list_display = ("name", "provider", "client_id")
    fields = ("name", "provider", "provider_id", "client_id")
    readonly_fields = flatten(fields)


# Last, once every app has registered its models: the rules every admin page obeys.
guard_every_admin(admin.site)
