"""`manage.py x_tokens`: what cron (and a person at a terminal) sees, and what it changes."""

import io
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import TokenKind, TokenStatus, XToken
from admin_ext import jobs
from admin_ext.models import AuditEvent, BulkJob, JobSource, TokenAction
from tests.test_admin_support import access_token_is_live, sign_in, sign_in_many, token_calls

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def site_uses_sandbox(settings, x_sandbox):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    return x_sandbox


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def x_tokens(*args: str, stderr=None) -> tuple[int, str, str]:
    out, err = io.StringIO(), stderr or io.StringIO()
    try:
        call_command("x_tokens", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def expiring_in(token: XToken, minutes: int) -> None:
    XToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() + timedelta(minutes=minutes)
    )


def test_refresh_expiring_within_refreshes_only_those_tokens(x_sandbox):
    soon = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    later = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH2, x_user_id="1000000002")
    already = sign_in(x_sandbox, "private_pat", TokenKind.OAUTH2, x_user_id="1000000003")
    sign_in(x_sandbox, "formula_fred", TokenKind.OAUTH1)
    expiring_in(soon, 10)
    expiring_in(later, 120)
    expiring_in(already, -5)

    code, out, err = x_tokens("refresh", "--expiring-within", "30")

    job = BulkJob.objects.get()
    assert code == 0, err
    assert out.strip() == f"refresh: 2 accounts, 2 ok, 0 failed (job #{job.pk})"
    assert token_calls(x_sandbox, "/2/oauth2/token") == 2
    refreshed = {t.pk for t in XToken.objects.all() if t.last_refreshed_at}
    assert refreshed == {soon.pk, already.pk}
    assert job.source == JobSource.COMMAND and job.created_by is None


def test_check_all_exits_1_and_names_each_failure(x_sandbox):
    sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    pat = sign_in(x_sandbox, "private_pat", TokenKind.OAUTH1)
    x_sandbox.revoke(pat.access_token)

    code, out, err = x_tokens("check", "--all")

    job = BulkJob.objects.get()
    assert code == 1
    assert out.strip() == f"check: 3 accounts, 2 ok, 1 failed (job #{job.pk})"
    assert "@private_pat (oauth1): verify_credentials: X answered 401" in err
    events = AuditEvent.objects.filter(job=job)
    assert events.count() == 3
    assert set(events.values_list("actor_label", flat=True)) == {"manage.py x_tokens"}
    assert LogEntry.objects.count() == 0, "LogEntry needs a user; cron's record is the audit"
    assert pat.access_token not in out + err


def test_all_leaves_revoked_tokens_alone(x_sandbox):
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    XToken.objects.filter(pk=ada.pk).update(status=TokenStatus.REVOKED)

    code, out, _ = x_tokens("check", "--all")

    assert code == 0 and "no tokens selected" in out
    assert x_sandbox.calls() == []


def test_revoke_named_users(x_sandbox):
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    grace = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    keep = sign_in(x_sandbox, "private_pat", TokenKind.OAUTH2, x_user_id="1000000003")

    code, out, _ = x_tokens("revoke", "--user", "ada_lovelace", "--user", "grace_hopper")

    assert code == 0 and ", 2 ok, 0 failed" in out
    statuses = dict(XToken.objects.values_list("pk", "status"))
    assert statuses == {
        ada.pk: TokenStatus.REVOKED,
        grace.pk: TokenStatus.REVOKED,
        keep.pk: TokenStatus.ACTIVE,
    }
    assert not access_token_is_live(x_sandbox, ada.access_token)
    assert access_token_is_live(x_sandbox, keep.access_token)


def test_a_named_user_without_a_token_counts_as_failed(x_sandbox, django_user_model):
    django_user_model.objects.create_user("never_signed_in")

    code, out, err = x_tokens("check", "--user", "never_signed_in")

    assert code == 1 and ", 0 ok, 1 failed" in out
    assert "No X token is stored" in err


def test_dry_run_lists_and_changes_nothing(x_sandbox):
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)

    code, out, _ = x_tokens("revoke", "--all", "--dry-run")

    assert code == 0
    assert f"ada_lovelace @ada_lovelace: OAuth 2.0 …{ada.access_token[-4:]}, active" in out
    assert out.strip().endswith("revoke (dry run): 1 accounts would be processed.")
    assert ada.access_token not in out
    assert x_sandbox.calls() == [] and BulkJob.objects.count() == 0
    assert XToken.objects.get(pk=ada.pk).status == TokenStatus.ACTIVE


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["check"], "Say which tokens"),
        (["check", "--all", "--user", "x"], "cannot be combined"),
        (["check", "--user", "ghost"], "No such user: ghost"),
    ],
)
def test_unclear_selections_are_refused(args, error):
    with pytest.raises(CommandError, match=error):
        call_command("x_tokens", *args)


def test_progress_bar_only_on_a_terminal(x_sandbox):
    sign_in_many(x_sandbox, 3)

    _, _, to_file = x_tokens("check", "--all")
    _, _, to_terminal = x_tokens("check", "--all", stderr=Terminal())

    assert "[" not in to_file
    assert to_terminal.rstrip().endswith("[" + "#" * 30 + "] 3/3 (0 failed)")


def test_resume_finishes_stalled_jobs_only(x_sandbox, settings):
    tokens = sign_in_many(x_sandbox, 3)
    job = jobs.create_job(
        TokenAction.REFRESH, XToken.objects.filter(pk__in=[t.pk for t in tokens])
    )
    jobs.claim_items(job, "crashed-cron-run", 3)
    BulkJob.objects.filter(pk=job.pk).update(
        started_at=job.created_at, heartbeat_at=job.created_at
    )

    code, out, _ = x_tokens("resume")
    assert (code, out.strip()) == (0, "resume: no stalled jobs.")

    settings.ADMIN_EXT_CLAIM_LEASE = 0
    code, out, _ = x_tokens("resume")

    assert code == 0
    assert out.strip() == f"refresh: 3 accounts, 3 ok, 0 failed (job #{job.pk})"
    assert token_calls(x_sandbox, "/2/oauth2/token") == 3
