"""`{% staff_dashboard as dashboard %}`: the admin index's numbers, as far as the viewer may see.

Each section is computed only for staff who have the view permission for what it
shows, so a section someone may not see costs no query either.
"""

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django import template
from django.contrib.auth.models import AbstractBaseUser
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

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
    profiles_url: str | None = None
    jobs_url: str | None = None
    audit_url: str | None = None


def _changelist(name: str, **filters: str) -> str | None:
    """The admin list for `name` with filters, or None if that model has no admin."""
    try:
        url = reverse(f"admin:{name}_changelist")
    except NoReverseMatch:
        return None
    return f"{url}?{urlencode(filters)}" if filters else url


TONES = {
    TokenStatus.ACTIVE: "good",
    TokenStatus.EXPIRED: "warn",
    TokenStatus.REVOKED: "quiet",
    TokenStatus.INVALID: "bad",
    TokenStatus.ERROR: "bad",
}


def _token_rows(counts: dict[str, int]) -> list[HealthRow]:
    now = timezone.now().replace(microsecond=0)
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
                expires_at__lte=(now + dashboard.EXPIRING_WINDOW).isoformat(),
            ),
            "warn",
        ),
    ]
    for status in (
        TokenStatus.EXPIRED,
        TokenStatus.REVOKED,
        TokenStatus.INVALID,
        TokenStatus.ERROR,
    ):
        rows.append(
            HealthRow(
                status.label,
                counts[status],
                _changelist("accounts_xtoken", status__exact=status),
                TONES[status],
            )
        )
    return rows


def build_dashboard(user: AbstractBaseUser) -> Dashboard:
    board = Dashboard()
    if user.has_perm("accounts.view_profile"):
        board.totals = dashboard.account_totals()
        board.methods = [
            (TokenKind(kind).label, count) for kind, count in board.totals.by_method.items()
        ]
        board.chart = dashboard.activity_chart(dashboard.daily_activity())
        board.profiles_url = _changelist("accounts_profile")
    if user.has_perm("accounts.view_xtoken"):
        board.token_rows = _token_rows(dashboard.token_health())
    if user.has_perm("admin_ext.view_bulkjob"):
        board.jobs = dashboard.recent_jobs()
        board.jobs_url = _changelist("admin_ext_bulkjob")
    if user.has_perm("admin_ext.view_auditevent"):
        board.audit_events = dashboard.recent_audit_events()
        board.audit_url = _changelist("admin_ext_auditevent")
    return board


@register.simple_tag(takes_context=True)
def staff_dashboard(context: template.Context) -> Dashboard:
    return build_dashboard(context["request"].user)
