"""`{% staff_dashboard as board %}` and `{{ board.chart|activity_svg }}` for the admin index.

Each section is computed only for staff who have the view permission for what it
shows, so a section someone may not see costs no query either. Nothing is cached:
the figures are read, not recounted (admin_ext.dashboard), so they are always current.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlencode

from django import template
from django.contrib.auth.models import AbstractBaseUser
from django.urls import NoReverseMatch, reverse
from django.utils import dateformat, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext

from accounts.models import TokenKind, TokenStatus
from admin_ext import dashboard

register = template.Library()


@dataclass(frozen=True)
class HealthRow:
    label: str
    count: int
    url: str | None
    tone: str


@dataclass(frozen=True)
class JobRow:
    summary: dashboard.JobSummary
    name: str
    url: str | None
    by: str
    progress: str
    failed: str


@dataclass(frozen=True)
class AuditRow:
    event: dashboard.AuditLine
    by: str


@dataclass
class Dashboard:
    totals: dashboard.AccountTotals | None = None
    methods: list[tuple[str, int]] = field(default_factory=list)
    token_rows: list[HealthRow] = field(default_factory=list)
    chart: dashboard.ActivityChart | None = None
    jobs: list[JobRow] | None = None
    audit_events: list[AuditRow] | None = None
    # Accounts their owners deleted, and how many distinct X accounts those were.
    deletions: tuple[int, int] | None = None
    profiles_url: str | None = None
    jobs_url: str | None = None
    audit_url: str | None = None


def _changelist(name: str, **filters: str) -> str | None:
    """The admin list for `name` with filters, or None if that model has no admin."""
    try:
        url = reverse(f"admin:{name}_changelist")
    except NoReverseMatch:
        return None
    return _filtered(url, filters)


def _filtered(url: str | None, filters: dict[str, str]) -> str | None:
    if url is None or not filters:
        return url
    return f"{url}?{urlencode(filters)}"


TONES = {
    TokenStatus.EXPIRED: "warn",
    TokenStatus.REVOKED: "quiet",
    TokenStatus.INVALID: "bad",
    TokenStatus.ERROR: "bad",
    TokenStatus.UNREADABLE: "bad",
    TokenStatus.NEEDS_SIGN_IN: "bad",
}


def _token_rows(counts: dict[str, int]) -> list[HealthRow]:
    """Rows linking to the token list filtered to exactly the tokens counted."""
    soon = timezone.now().replace(microsecond=0) + dashboard.EXPIRING_WINDOW
    tokens_url = _changelist("accounts_xtoken")  # reversed once for the nine rows

    def filtered(**filters: str) -> str | None:
        return _filtered(tokens_url, filters)

    rows = [
        HealthRow(
            gettext("Active"),
            counts[TokenStatus.ACTIVE],
            filtered(status__exact=TokenStatus.ACTIVE),
            "good",
        ),
        HealthRow(
            gettext("Expiring within 24 h"),
            counts["expiring"],
            filtered(
                status__exact=TokenStatus.ACTIVE,
                kind__exact=TokenKind.OAUTH2,
                expires_at__lte=soon.isoformat(),
            ),
            "warn",
        ),
    ]
    for status, tone in TONES.items():
        rows.append(HealthRow(status.label, counts[status], filtered(status__exact=status), tone))
    return rows


def build_dashboard(user: AbstractBaseUser) -> Dashboard:
    board = Dashboard()
    sees = {
        name: user.has_perm(permission)
        for name, permission in (
            ("profiles", "accounts.view_profile"),
            ("tokens", "accounts.view_xtoken"),
            ("pending", "accounts.view_pendingrevocation"),
            ("jobs", "admin_ext.view_bulkjob"),
            ("audit", "admin_ext.view_auditevent"),
        )
    }
    now = timezone.now()
    today = timezone.localdate(now)
    jobs = dashboard.latest_jobs() if sees["jobs"] else []
    if sees["profiles"] or sees["tokens"] or sees["pending"] or sees["jobs"]:
        tallies = dashboard.figures(today, jobs, now, deletions=sees["profiles"])
    if sees["profiles"]:
        board.totals = dashboard.account_totals(tallies, today)
        board.methods = [
            (TokenKind(kind).label, count) for kind, count in board.totals.by_method.items()
        ]
        board.chart = dashboard.activity_chart(dashboard.daily_activity(tallies, today))
        board.profiles_url = _changelist("accounts_profile")
        board.deletions = dashboard.account_deletions(tallies)
    if sees["tokens"]:
        board.token_rows = _token_rows(dashboard.token_health(tallies))
    if sees["pending"]:
        waiting = dashboard.pending_revocations(tallies)
        board.token_rows.append(
            HealthRow(
                gettext("Revocations X has not confirmed yet"),
                waiting,
                _changelist("accounts_pendingrevocation", resolved="no"),
                "bad" if waiting else "quiet",
            )
        )
    if sees["jobs"]:
        board.jobs_url = _changelist("admin_ext_bulkjob")
        board.jobs = _job_rows(dashboard.job_progress(jobs, tallies), linked=bool(board.jobs_url))
    if sees["audit"]:
        board.audit_events = _audit_rows(dashboard.recent_audit_events())
        board.audit_url = _changelist("admin_ext_auditevent")
    return board


# A list's sentences are put together here, not with {% blocktranslate %} in its
# loop: the tag costs several times what gettext does, and the jobs and audit
# lists had twenty of them. The messages are the ones the tag would look up.


def _job_rows(summaries: list[dashboard.JobSummary], *, linked: bool) -> list[JobRow]:
    return [
        JobRow(
            summary=summary,
            name=str(summary.job),
            url=summary.job.get_admin_url() if linked else None,
            by=gettext("%(who)s, %(since)s ago")
            % {"who": summary.job.created_by_label, "since": timesince(summary.job.created_at)},
            progress=gettext("%(done)s of %(total)s done")
            % {"done": summary.done, "total": summary.total},
            failed=gettext("%(failed)s failed") % {"failed": summary.failed},
        )
        for summary in summaries
    ]


def _audit_rows(events: list[dashboard.AuditLine]) -> list[AuditRow]:
    return [
        AuditRow(
            event=event,
            by=gettext("by %(who)s, %(since)s ago")
            % {"who": event.actor_label, "since": timesince(event.created_at)},
        )
        for event in events
    ]


@register.simple_tag(takes_context=True)
def staff_dashboard(context: template.Context) -> Dashboard:
    return build_dashboard(context["request"].user)


def _bars(
    bars: list[dashboard.Bar], series: str, noun: Callable[[int], str], days: dict[date, str]
) -> SafeString:
    # Built here rather than in a template loop: sixty bars with dates and titles
    # cost more in the template engine than the rest of the index page. Plain
    # formatting, not format_html: every value is a number, a date written by
    # Django's date format, or one of this module's literals (`series`, `noun`,
    # translated), so there is nothing to escape, and escaping 540 of them was a third
    # of the dashboard's time.
    return mark_safe(  # noqa: S308
        "".join(
            f'<rect class="bar bar-{series}" x="{bar.x}" y="{bar.y}" width="{bar.width}"'
            f' height="{bar.height}"><title>{days[bar.day]}: '
            f"{noun(bar.value) % bar.value}</title></rect>"
            for bar in bars
        )
    )


@register.filter
def activity_svg(chart: dashboard.ActivityChart) -> SafeString:
    """The chart as inline SVG: classes only, no style attributes (strict CSP)."""
    # Both series share a day's label, and many days share a count: each is
    # formatted and translated once. Thirty days have seven weekday names and at
    # most two month names, so Django's date format (the chart's largest cost when
    # run for every day) runs for those alone.
    shown = [bar.day for bar in chart.sign_up_bars]
    one_per_weekday = {day.weekday(): day for day in shown}
    one_per_month = {day.month: day for day in shown}
    weekdays = {n: dateformat.format(day, "D") for n, day in one_per_weekday.items()}
    months = {n: dateformat.format(day, "M") for n, day in one_per_month.items()}
    days = {day: f"{weekdays[day.weekday()]} {day.day} {months[day.month]}" for day in shown}
    sign_ups = functools.cache(lambda n: ngettext("%d sign-up", "%d sign-ups", n))
    sign_ins = functools.cache(lambda n: ngettext("%d sign-in", "%d sign-ins", n))
    return format_html(
        '<svg class="dash-chart" viewBox="0 0 {w} {h}" preserveAspectRatio="none" role="img"'
        ' aria-label="{label}">'
        '<line class="baseline" x1="0" y1="{h}" x2="{w}" y2="{h}"></line>{ups}{ins}</svg>',
        w=chart.width,
        h=chart.height,
        label=gettext("Sign-ups and sign-ins per day from %(first)s to %(last)s")
        % {
            "first": dateformat.format(chart.first_day, "j M"),
            "last": dateformat.format(chart.last_day, "j M"),
        },
        ups=_bars(chart.sign_up_bars, "up", sign_ups, days),
        ins=_bars(chart.sign_in_bars, "in", sign_ins, days),
    )
