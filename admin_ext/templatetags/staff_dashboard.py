"""`{% staff_dashboard as board %}` and `{{ board.chart|activity_svg }}` for the admin index.

Each section is computed only for staff who have the view permission for what it
shows, so a section someone may not see costs no query either.
"""

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from django import template
from django.contrib.auth.models import AbstractBaseUser
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts.models import TokenKind, TokenStatus
from admin_ext import dashboard

register = template.Library()


@dataclass(frozen=True)
class HealthRow:
    label: str
    count: int
    url: str | None
    tone: str


@dataclass
class Dashboard:
    totals: dashboard.AccountTotals | None = None
    methods: list[tuple[str, int]] = field(default_factory=list)
    token_rows: list[HealthRow] = field(default_factory=list)
    chart: dashboard.ActivityChart | None = None
    jobs: list[dashboard.JobSummary] | None = None
    audit_events: list | None = None
    # Accounts their owners deleted, and how many distinct X accounts those were.
    deletions: tuple[int, int] | None = None
    profiles_url: str | None = None
    jobs_url: str | None = None
    audit_url: str | None = None
    as_of: datetime | None = None
    cache_seconds: int = dashboard.CACHE_SECONDS

    def note_time(self, computed_at: datetime) -> None:
        self.as_of = min(self.as_of or computed_at, computed_at)


def _changelist(name: str, **filters: str) -> str | None:
    """The admin list for `name` with filters, or None if that model has no admin."""
    try:
        url = reverse(f"admin:{name}_changelist")
    except NoReverseMatch:
        return None
    return f"{url}?{urlencode(filters)}" if filters else url


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
    rows = [
        HealthRow(
            "Active",
            counts[TokenStatus.ACTIVE],
            _changelist("accounts_xtoken", status__exact=TokenStatus.ACTIVE),
            "good",
        ),
        HealthRow(
            "Expiring within 24 h",
            counts["expiring"],
            _changelist(
                "accounts_xtoken",
                status__exact=TokenStatus.ACTIVE,
                kind__exact=TokenKind.OAUTH2,
                expires_at__lte=soon.isoformat(),
            ),
            "warn",
        ),
    ]
    for status, tone in TONES.items():
        rows.append(
            HealthRow(
                status.label,
                counts[status],
                _changelist("accounts_xtoken", status__exact=status),
                tone,
            )
        )
    return rows


def _activity_chart() -> dashboard.ActivityChart:
    return dashboard.activity_chart(dashboard.daily_activity())


def build_dashboard(user: AbstractBaseUser) -> Dashboard:
    board = Dashboard()
    if user.has_perm("accounts.view_profile"):
        board.totals, computed_at = dashboard.cached("totals", dashboard.account_totals)
        board.note_time(computed_at)
        board.methods = [
            (TokenKind(kind).label, count) for kind, count in board.totals.by_method.items()
        ]
        board.chart, computed_at = dashboard.cached("activity", _activity_chart)
        board.note_time(computed_at)
        board.profiles_url = _changelist("accounts_profile")
        board.deletions, computed_at = dashboard.cached(
            "account_deletions", dashboard.account_deletions
        )
        board.note_time(computed_at)
    if user.has_perm("accounts.view_xtoken"):
        counts, computed_at = dashboard.cached("tokens", dashboard.token_health)
        board.note_time(computed_at)
        board.token_rows = _token_rows(counts)
    if user.has_perm("accounts.view_pendingrevocation"):
        waiting, computed_at = dashboard.cached(
            "pending_revocations", dashboard.pending_revocations
        )
        board.note_time(computed_at)
        board.token_rows.append(
            HealthRow(
                "Revocations X has not confirmed yet",
                waiting,
                _changelist("accounts_pendingrevocation", resolved="no"),
                "bad" if waiting else "quiet",
            )
        )
    if user.has_perm("admin_ext.view_bulkjob"):
        board.jobs, computed_at = dashboard.cached("jobs", dashboard.recent_jobs)
        board.note_time(computed_at)
        board.jobs_url = _changelist("admin_ext_bulkjob")
    if user.has_perm("admin_ext.view_auditevent"):
        board.audit_events, computed_at = dashboard.cached("audit", dashboard.recent_audit_events)
        board.note_time(computed_at)
        board.audit_url = _changelist("admin_ext_auditevent")
    return board


@register.simple_tag(takes_context=True)
def staff_dashboard(context: template.Context) -> Dashboard:
    return build_dashboard(context["request"].user)


def _bars(bars: list[dashboard.Bar], series: str, noun: str) -> SafeString:
    # Built here rather than in a template loop: sixty bars with dates and titles
    # cost more in the template engine than the rest of the index page.
    return format_html_join(
        "",
        '<rect class="bar bar-{}" x="{}" y="{}" width="{}" height="{}">'
        "<title>{}: {} {}{}</title></rect>",
        (
            (
                series,
                bar.x,
                bar.y,
                bar.width,
                bar.height,
                bar.day.strftime("%a %-d %b"),
                bar.value,
                noun,
                "" if bar.value == 1 else "s",
            )
            for bar in bars
        ),
    )


@register.filter
def activity_svg(chart: dashboard.ActivityChart) -> SafeString:
    """The chart as inline SVG: classes only, no style attributes (strict CSP)."""
    return format_html(
        '<svg class="dash-chart" viewBox="0 0 {w} {h}" preserveAspectRatio="none" role="img"'
        ' aria-label="Sign-ups and sign-ins per day from {first} to {last}">'
        '<line class="baseline" x1="0" y1="{h}" x2="{w}" y2="{h}"></line>{ups}{ins}</svg>',
        w=chart.width,
        h=chart.height,
        first=chart.first_day.strftime("%-d %b"),
        last=chart.last_day.strftime("%-d %b"),
        ups=_bars(chart.sign_up_bars, "up", "sign-up"),
        ins=_bars(chart.sign_in_bars, "in", "sign-in"),
    )
