"""The numbers on the admin index: accounts, token health, daily activity, jobs, audit.

Each function is one SQL query (aggregates and a UNION, never a row per account),
so the page costs the same number of queries at a hundred profiles or a hundred
thousand, and `cached` keeps the results for half a minute so that most visits
run none of them. Geometry for the activity chart is worked out here too.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

from django.core.cache import cache
from django.db.models import CharField, Count, Q, Value
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import (
    AccountDeletion,
    PendingRevocation,
    Profile,
    TokenKind,
    TokenStatus,
    XToken,
)
from admin_ext.models import AuditEvent, BulkJob, ItemStatus, SignInEvent

EXPIRING_WINDOW = timedelta(hours=24)
ACTIVITY_DAYS = 30
# Counting 100,000 rows on every visit to the admin index would make the index
# several times slower; figures half a minute old are fresh enough for a glance.
CACHE_SECONDS = 30

T = TypeVar("T")


def cached(name: str, compute: Callable[[], T]) -> tuple[T, datetime]:
    """`compute()`'s value and when it was computed, reused for CACHE_SECONDS."""
    key = f"admin_ext.dashboard.{name}"
    hit = cache.get(key)
    if hit is None:
        hit = (compute(), timezone.now())
        cache.set(key, hit, CACHE_SECONDS)
    return hit


@dataclass(frozen=True)
class AccountTotals:
    users: int
    x_accounts: int
    new_this_week: int
    by_method: dict[str, int]


def account_totals(now: datetime | None = None) -> AccountTotals:
    """Users, people with an X account here (by the method they last used), new this week.

    Counted on profiles alone, one table: every user has exactly one profile (see
    accounts.models), and only people who signed in with X have an X user id.
    """
    now = now or timezone.now()
    has_x = Q(x_user_id__isnull=False)
    counts = Profile.objects.aggregate(
        users=Count("pk"),
        x_accounts=Count("pk", filter=has_x),
        new_this_week=Count("pk", filter=has_x & Q(created_at__gte=now - timedelta(days=7))),
        **{
            f"method_{kind}": Count("pk", filter=has_x & Q(sign_in_method=kind))
            for kind in TokenKind.values
        },
    )
    return AccountTotals(
        users=counts["users"],
        x_accounts=counts["x_accounts"],
        new_this_week=counts["new_this_week"],
        by_method={kind: counts[f"method_{kind}"] for kind in TokenKind.values},
    )


def token_health(now: datetime | None = None) -> dict[str, int]:
    """Tokens per status, plus the active OAuth 2.0 ones whose expiry is within 24 hours.

    "expiring" is a subset of "active": those need the refresh cron (or a sign-in)
    soon, or they will fail the next call to X.
    """
    now = now or timezone.now()
    expiring = Q(
        status=TokenStatus.ACTIVE,
        kind=TokenKind.OAUTH2,
        expires_at__isnull=False,
        expires_at__lte=now + EXPIRING_WINDOW,
    )
    counts = XToken.objects.aggregate(
        expiring=Count("pk", filter=expiring),
        **{status: Count("pk", filter=Q(status=status)) for status in TokenStatus.values},
    )
    return counts


def pending_revocations() -> int:
    """Grants the site gave up that X has not yet confirmed revoked (the workers retry them)."""
    return PendingRevocation.objects.filter(resolved_at__isnull=True).count()


def account_deletions() -> tuple[int, int]:
    """Accounts their owners deleted, and how many distinct X accounts those were."""
    counts = AccountDeletion.objects.aggregate(
        deleted=Count("pk"), distinct=Count("subject_hash", distinct=True)
    )
    return counts["deleted"], counts["distinct"]


@dataclass(frozen=True)
class DayActivity:
    day: date
    sign_ups: int
    sign_ins: int


def daily_activity(now: datetime | None = None, days: int = ACTIVITY_DAYS) -> list[DayActivity]:
    """Sign-ups (new people with X) and sign-ins with X per day, oldest first, gaps as 0."""
    today = timezone.localdate(now or timezone.now())
    first_day = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(first_day, datetime.min.time()))
    sign_ups = (
        Profile.objects.filter(created_at__gte=since, x_user_id__isnull=False)
        .annotate(series=Value("up", output_field=CharField()), day=TruncDate("created_at"))
        .values("series", "day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    sign_ins = (
        SignInEvent.objects.filter(created_at__gte=since)
        .annotate(series=Value("in", output_field=CharField()), day=TruncDate("created_at"))
        .values("series", "day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts = {(row["series"], row["day"]): row["n"] for row in sign_ups.union(sign_ins, all=True)}
    return [
        DayActivity(
            day=day,
            sign_ups=counts.get(("up", day), 0),
            sign_ins=counts.get(("in", day), 0),
        )
        for day in (first_day + timedelta(days=offset) for offset in range(days))
    ]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    day: date


@dataclass(frozen=True)
class ActivityChart:
    """Bar positions in a 0..width x 0..height SVG viewBox (y grows downwards)."""

    width: int
    height: int
    sign_up_bars: list[Bar]
    sign_in_bars: list[Bar]
    peak: int
    first_day: date
    last_day: date
    total_sign_ups: int
    total_sign_ins: int


def activity_chart(days: list[DayActivity], width: int = 600, height: int = 120) -> ActivityChart:
    """Two bars per day, side by side, scaled to the busiest day."""
    peak = max([1, *(d.sign_ups for d in days), *(d.sign_ins for d in days)])
    slot = width / max(len(days), 1)
    bar_width = slot * 0.4

    def bar(index: int, offset: float, value: int, day: date) -> Bar:
        bar_height = height * value / peak
        return Bar(
            x=round(index * slot + offset, 2),
            y=round(height - bar_height, 2),
            width=round(bar_width, 2),
            height=round(bar_height, 2),
            value=value,
            day=day,
        )

    return ActivityChart(
        width=width,
        height=height,
        sign_up_bars=[bar(i, slot * 0.1, d.sign_ups, d.day) for i, d in enumerate(days)],
        sign_in_bars=[bar(i, slot * 0.5, d.sign_ins, d.day) for i, d in enumerate(days)],
        peak=peak,
        first_day=days[0].day,
        last_day=days[-1].day,
        total_sign_ups=sum(d.sign_ups for d in days),
        total_sign_ins=sum(d.sign_ins for d in days),
    )


@dataclass(frozen=True)
class JobSummary:
    job: BulkJob
    total: int
    ok: int
    failed: int

    @property
    def done(self) -> int:
        return self.ok + self.failed

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100


def recent_jobs(limit: int = 5) -> list[JobSummary]:
    """The latest bulk jobs with how far each has got, counted from their items."""
    jobs = BulkJob.objects.annotate(
        item_count=Count("items"),
        ok_count=Count("items", filter=Q(items__status=ItemStatus.OK)),
        failed_count=Count("items", filter=Q(items__status=ItemStatus.FAILED)),
    ).order_by("-created_at", "-id")[:limit]
    return [
        JobSummary(job=job, total=job.item_count, ok=job.ok_count, failed=job.failed_count)
        for job in jobs
    ]


def recent_audit_events(limit: int = 8) -> list[AuditEvent]:
    """The newest audit rows; their snapshots (who, whom) need no joins."""
    return list(AuditEvent.objects.order_by("-created_at", "-id")[:limit])
