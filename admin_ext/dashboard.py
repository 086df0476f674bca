"""The numbers on the admin index: accounts, token health, daily activity, jobs, audit.

Counts of accounts, tokens, pending revocations, sign-ups, sign-ins and each
job's items are not counted here: every write keeps them up to date (the tallies
app) and one query reads them all. What depends on the clock (tokens expiring
within 24 hours) is a range count on an index, read in that same query with the
count of account deletions; jobs and audit events read only the latest few rows.
So the page costs the same few queries at a hundred profiles or a million, with
nothing cached. Geometry for the activity chart is worked out here too.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

from django.db import connection
from django.utils import timezone

from accounts.models import TokenKind, TokenStatus, XToken
from admin_ext.models import AuditEvent, AuditOutcome, BulkJob, ItemStatus, TokenAction
from tallies import counting, keys

EXPIRING_WINDOW = timedelta(hours=24)
# Read with the tallies, but counted (see `figures`).
EXPIRING = "expiring within 24 h"
DELETED = "account deletions"
DELETED_DISTINCT = "account deletions, distinct X accounts"
ACTIVITY_DAYS = 30
NEW_DAYS = 7


def activity_days(today: date, days: int = ACTIVITY_DAYS) -> list[date]:
    """The days the chart shows, oldest first, ending today."""
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def figures(
    today: date | None = None,
    jobs: list[BulkJob] = (),
    now: datetime | None = None,
    *,
    deletions: bool = False,
) -> Counter:
    """Every figure the dashboard shows, with the progress of `jobs`, in one query.

    All are tallies but EXPIRING, whose window moves with the clock: it is a range
    count on the (status, kind, expires_at) index, read in the same query. So are
    the account deletions (DELETED, DELETED_DISTINCT), with `deletions`.
    """
    now = now or timezone.now()
    days = activity_days(today or timezone.localdate(now))
    wanted = [keys.PROFILES, keys.PENDING_REVOCATIONS]
    wanted += [keys.job_items(job.pk, status) for job in jobs for status in ItemStatus.values]
    counted_otherwise = [_expiring_count(now)]
    if deletions:
        counted_otherwise += _deletion_counts()
    return counting.read(
        wanted,
        prefixes=[keys.TOKENS, keys.X_ACCOUNTS],
        # Day keys sort by date (ISO format), so a month of them is one range.
        ranges=[
            (keys.sign_ups_on(days[0]), keys.sign_ups_on(days[-1])),
            (keys.sign_ins_on(days[0]), keys.sign_ins_on(days[-1])),
        ],
        also=counted_otherwise,
    )


def _expiring_count(now: datetime) -> tuple[str, list]:
    """SQL for the row (EXPIRING, n): active OAuth 2.0 tokens that expire within the window."""
    soon = XToken._meta.get_field("expires_at").get_db_prep_value(
        now + EXPIRING_WINDOW, connection
    )
    # COUNT(*), not COUNT(id): the index holds no id, and PostgreSQL would visit
    # every counted row in the table instead of the index alone.
    sql = (
        "SELECT %s, COUNT(*) FROM accounts_xtoken WHERE status = %s AND kind = %s"
        " AND expires_at IS NOT NULL AND expires_at <= %s"
    )
    return sql, [EXPIRING, TokenStatus.ACTIVE.value, TokenKind.OAUTH2.value, soon]


@dataclass(frozen=True)
class AccountTotals:
    users: int
    x_accounts: int
    new_this_week: int
    by_method: dict[str, int]


def account_totals(tallies: Counter, today: date | None = None) -> AccountTotals:
    """Users, people with an X account here (by the method they last used), new this week.

    Every user has exactly one profile (see accounts.models), and only people who
    signed in with X have an X user id. "New this week" is the sign-ups of today
    and the six days before, as in the chart.
    """
    recent = activity_days(today or timezone.localdate(), NEW_DAYS)
    by_method = {kind: tallies[keys.x_account(kind)] for kind in TokenKind.values}
    return AccountTotals(
        users=tallies[keys.PROFILES],
        x_accounts=sum(n for key, n in tallies.items() if key.startswith(keys.X_ACCOUNTS)),
        new_this_week=sum(tallies[keys.sign_ups_on(day)] for day in recent),
        by_method=by_method,
    )


def token_health(tallies: Counter) -> dict[str, int]:
    """Tokens per status, plus the active OAuth 2.0 ones whose expiry is within 24 hours.

    "expiring" is a subset of "active": those need the refresh cron (or a sign-in)
    soon, or they will fail the next call to X.
    """
    counts = {
        status: sum(tallies[keys.token(kind, status)] for kind in TokenKind.values)
        for status in TokenStatus.values
    }
    counts["expiring"] = tallies[EXPIRING]
    return counts


def pending_revocations(tallies: Counter) -> int:
    """Grants the site gave up that X has not yet confirmed revoked (the workers retry them)."""
    return tallies[keys.PENDING_REVOCATIONS]


def _deletion_counts() -> list[tuple[str, list]]:
    """SQL for the rows (DELETED, n) and (DELETED_DISTINCT, n)."""
    return [
        ("SELECT %s, COUNT(*) FROM accounts_accountdeletion", [DELETED]),
        (
            "SELECT %s, COUNT(DISTINCT subject_hash) FROM accounts_accountdeletion",
            [DELETED_DISTINCT],
        ),
    ]


def account_deletions(tallies: Counter) -> tuple[int, int]:
    """Accounts their owners deleted, and how many distinct X accounts those were
    (read by `figures` with `deletions`)."""
    return tallies[DELETED], tallies[DELETED_DISTINCT]


@dataclass(frozen=True)
class DayActivity:
    day: date
    sign_ups: int
    sign_ins: int


def daily_activity(tallies: Counter, today: date | None = None) -> list[DayActivity]:
    """Sign-ups (new people with X) and sign-ins with X per day, oldest first, gaps as 0."""
    return [
        DayActivity(
            day=day,
            sign_ups=tallies[keys.sign_ups_on(day)],
            sign_ins=tallies[keys.sign_ins_on(day)],
        )
        for day in activity_days(today or timezone.localdate())
    ]


class Bar(NamedTuple):
    """One bar (a tuple: sixty are made per render, and a frozen dataclass is slower to build)."""

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


def latest_jobs(limit: int = 5) -> list[BulkJob]:
    """The newest jobs, with only the columns the dashboard shows."""
    shown = ("action", "total", "created_by_label", "created_at", "finished_at")
    return list(BulkJob.objects.only(*shown).order_by("-created_at", "-id")[:limit])


def job_progress(jobs: list[BulkJob], tallies: Counter) -> list[JobSummary]:
    """How far each job has got, from its items' tallies (read with `figures`)."""
    summaries = []
    for job in jobs:
        by_status = {status: tallies[keys.job_items(job.pk, status)] for status in ItemStatus}
        summaries.append(
            JobSummary(
                job=job,
                total=sum(by_status.values()),
                ok=by_status[ItemStatus.OK],
                failed=by_status[ItemStatus.FAILED],
            )
        )
    return summaries


@dataclass(frozen=True)
class AuditLine:
    """An audit event as the dashboard lists it, its choices already labelled."""

    action: str
    screen_name: str
    outcome: str
    ok: bool
    actor_label: str
    created_at: datetime


ACTION_LABELS = dict(TokenAction.choices)
OUTCOME_LABELS = dict(AuditOutcome.choices)


def recent_audit_events(limit: int = 8) -> list[AuditLine]:
    """The newest audit rows; their snapshots (who, whom) need no joins.

    Labels come from the choices read once here, not from get_FOO_display, which
    builds a dictionary of every choice on each call: two calls per row cost more
    than reading the rows.
    """
    shown = ("action", "screen_name", "outcome", "actor_label", "created_at")
    rows = AuditEvent.objects.order_by("-created_at", "-id").values_list(*shown)[:limit]
    return [
        AuditLine(
            action=ACTION_LABELS.get(action, action),
            screen_name=screen_name,
            outcome=OUTCOME_LABELS.get(outcome, outcome),
            ok=outcome == AuditOutcome.OK,
            actor_label=actor_label,
            created_at=created_at,
        )
        for action, screen_name, outcome, actor_label, created_at in rows
    ]
