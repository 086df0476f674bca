"""The names of the figures, and which figures one row of each counted model adds to.

Pure functions of column values, shared by the live counting (tallies.tracked),
the full recount (tallies.recount) and the migration that fills the table.
"""

from datetime import date, datetime

from django.utils import timezone

PROFILES = "profiles"
TOKENS = "token:"
X_ACCOUNTS = "x:"
PENDING_REVOCATIONS = "revocations:pending"


def token(kind: str, status: str) -> str:
    return f"{TOKENS}{kind}:{status}"


def x_account(method: str) -> str:
    """People with an X account here, by the method they last signed in with."""
    return f"{X_ACCOUNTS}{method}"


def job_items(job_id: int, status: str) -> str:
    """A bulk job's items in one state (its progress)."""
    return f"job:{job_id}:{status}"


def sign_ups_on(day: date) -> str:
    return f"signup:{day.isoformat()}"


def sign_ins_on(day: date) -> str:
    return f"signin:{day.isoformat()}"


def day_of(moment: datetime) -> date:
    """The calendar day (in TIME_ZONE) a moment counts for, as the dashboard's chart shows it."""
    return timezone.localdate(moment)


def of_token(kind: str, status: str) -> list[str]:
    return [token(kind, status)]


def of_profile(x_user_id: str | None, sign_in_method: str, created_at: datetime) -> list[str]:
    """Every profile is a user; one with an X user id is also an X account and a sign-up."""
    if x_user_id is None:
        return [PROFILES]
    return [PROFILES, x_account(sign_in_method), sign_ups_on(day_of(created_at))]


def of_sign_in(created_at: datetime) -> list[str]:
    return [sign_ins_on(day_of(created_at))]


def of_job_item(job_id: int, status: str) -> list[str]:
    return [job_items(job_id, status)]


def of_pending_revocation(resolved_at: datetime | None) -> list[str]:
    """A grant waits to be revoked until X confirms (resolved_at set)."""
    return [PENDING_REVOCATIONS] if resolved_at is None else []
