"""Issue 14: no grant left alive at X that the site no longer holds.

Each test acts the way a person, staff or a shell would, then asks the sandbox
whether the grant still works there (`access_token_is_live`, or a call to
users/me / verify_credentials with it).
"""

import io
from datetime import timedelta

import pytest
from allauth.socialaccount.models import SocialAccount
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts import x_client
from accounts.models import PendingRevocation, TokenKind, TokenStatus, XToken
from accounts.revocation import end_grant, end_token_grant, retry_due_revocations
from accounts.tasks import retry_pending_revocations as retry_pending_revocations_task
from accounts.tokens import refresh_token, revoke_token, store_token
from accounts.x_client import XTokenInvalid
from admin_ext import jobs
from admin_ext.models import AuditEvent, BulkJob, BulkJobItem, ItemStatus, TokenAction
from tests.test_admin_support import (
    access_token_is_live,
    refresh_token_is_live,
    run_queued_jobs,
    sign_in,
    staff_user,
)

User = get_user_model()
REVOKE_PATHS = {
    TokenKind.OAUTH1: "/1.1/oauth/invalidate_token",
    TokenKind.OAUTH2: "/2/oauth2/revoke",
}
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def site_uses_sandbox(settings, x_sandbox):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    settings.X_HTTP_TIMEOUT = 2
    settings.X_HTTP_RETRIES = 0
    cache.clear()
    return x_sandbox


def all_due() -> None:
    """Time has passed: every pending revocation may be tried again now."""
    PendingRevocation.objects.update(next_attempt_at=timezone.now())


def waiting() -> list[PendingRevocation]:
    return list(PendingRevocation.objects.filter(resolved_at__isnull=True))


def add_second_method(x_sandbox, token: XToken) -> XToken:
    """The same person also signed in with the other method: two grants at X."""
    issued = x_sandbox.issue_tokens(token.profile.screen_name, TokenKind.OAUTH1)[0]
    return store_token(
        token.profile,
        TokenKind.OAUTH1,
        access_token=issued["oauth_token"],
        token_secret=issued["oauth_token_secret"],
    )


# 1. A refused revoke is not "gone" ---------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [TokenKind.OAUTH1, TokenKind.OAUTH2])
def test_revoke_refused_with_401_keeps_the_token_and_queues_it_until_x_confirms(x_sandbox, kind):
    token = sign_in(x_sandbox, "ada_lovelace", kind)
    secret, refresh = token.access_token, token.refresh_token
    x_sandbox.fault(REVOKE_PATHS[kind], status=401)

    outcome = revoke_token(token)

    assert not outcome.ok and outcome.http_status == 401
    assert "refused this app" in outcome.message and "no longer knew" not in outcome.message
    stored = XToken.objects.get(pk=token.pk)
    assert stored.status == TokenStatus.ERROR and stored.access_token == secret
    assert access_token_is_live(x_sandbox, secret), "X never revoked it"
    [pending] = waiting()
    assert pending.pk == outcome.pending_revocation_id and pending.attempts == 1
    assert pending.access_token == secret and pending.last_http_status == 401

    all_due()
    summary = retry_due_revocations()

    assert (summary.revoked, summary.failed) == (1, 0)
    assert not access_token_is_live(x_sandbox, secret)
    if kind == TokenKind.OAUTH2:
        assert not refresh_token_is_live(x_sandbox, refresh)
    stored = XToken.objects.get(pk=token.pk)
    assert stored.status == TokenStatus.REVOKED and not stored.holds_grant
    pending.refresh_from_db()
    assert pending.resolved_at is not None and pending.access_token == ""


@pytest.mark.django_db
def test_end_grant_refused_with_403_is_pending_not_revoked(x_sandbox):
    token = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH2)
    x_sandbox.fault("/2/oauth2/revoke", status=403)

    outcome = end_grant(
        TokenKind.OAUTH2,
        access_token=token.access_token,
        refresh_token=token.refresh_token,
        profile=token.profile,
        reason="test: superseded grant",
    )

    assert not outcome.ok and outcome.pending_revocation_id is not None
    assert x_client.get_me(token.access_token).screen_name == "grace_hopper"
    pending = PendingRevocation.objects.get(pk=outcome.pending_revocation_id)
    assert pending.screen_name == "grace_hopper" and pending.reason == "test: superseded grant"
    event = AuditEvent.objects.get()
    assert event.outcome == "failed" and event.http_status == 403
    assert event.screen_name == "grace_hopper" and "superseded" in event.message


# 2. Revoking an OAuth 2.0 grant revokes every token of it ----------------------------------


@pytest.mark.django_db
def test_oauth2_revoke_after_a_refresh_leaves_no_token_of_the_grant_alive(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    before_refresh = token.access_token
    assert refresh_token(token).ok
    stored = XToken.objects.get(pk=token.pk)
    current, refresh = stored.access_token, stored.refresh_token
    assert current != before_refresh
    assert x_client.get_me(before_refresh).screen_name == "ada_lovelace", "X still honours it"

    outcome = revoke_token(stored)

    assert outcome.ok
    for access in (before_refresh, current):
        assert not access_token_is_live(x_sandbox, access)
        with pytest.raises(XTokenInvalid):
            x_client.get_me(access)
    assert not refresh_token_is_live(x_sandbox, refresh)


@pytest.mark.django_db
def test_replaced_access_tokens_are_forgotten_once_expired(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    assert refresh_token(token).ok
    stored = XToken.objects.get(pk=token.pk)
    assert len(stored.live_earlier_access_tokens()) == 1

    XToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
    assert refresh_token(XToken.objects.get(pk=token.pk)).ok  # the second replaced one...
    stored = XToken.objects.get(pk=token.pk)
    # ...had expired, so it is not kept; the first is still within its two hours.
    assert len(stored.live_earlier_access_tokens()) == 1
    later = timezone.now() + timedelta(hours=3)
    assert stored.live_earlier_access_tokens(now=later) == []


# 5. Deleting users, profiles, tokens, connections -----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_superuser_deletes_a_user_in_the_admin_and_every_grant_is_revoked_at_x(x_sandbox):
    oauth2 = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    oauth1 = add_second_method(x_sandbox, oauth2)
    user = oauth2.profile.user
    for provider in ("twitter", "twitter_oauth2"):  # as a real sign-in leaves them
        SocialAccount.objects.create(user=user, provider=provider, uid="1000000001")
    boss = User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client = Client()
    client.force_login(boss)
    url = reverse("admin:auth_user_delete", args=[user.pk])

    confirm = client.get(url).content.decode()

    assert "have permission" not in confirm
    assert "2 X grants will be revoked at X" in confirm
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=user.pk).exists() and XToken.objects.count() == 0
    for secret in (oauth2.access_token, oauth1.access_token):
        assert not access_token_is_live(x_sandbox, secret)
    assert not refresh_token_is_live(x_sandbox, oauth2.refresh_token)
    revocations = PendingRevocation.objects.all()
    assert len(revocations) == 2, "each grant is queued once, however the cascade reaches it"
    assert all(r.resolved_at for r in revocations)
    assert all("deleted in the admin by boss" in r.reason for r in revocations)
    assert AuditEvent.objects.filter(action=TokenAction.REVOKE, outcome="ok").count() == 2


@pytest.mark.django_db(transaction=True)
def test_delete_selected_users_says_how_many_grants_it_revokes(x_sandbox):
    first = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    second = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    staff = staff_user(
        "deleter",
        "auth.view_user",
        "auth.delete_user",
        "accounts.delete_profile",
        "accounts.delete_xtoken",
        "socialaccount.delete_socialaccount",
    )
    client = Client()
    client.force_login(staff)
    data = {
        "action": "delete_selected",
        "_selected_action": [first.profile.user_id, second.profile.user_id],
    }

    confirm = client.post(reverse("admin:auth_user_changelist"), data).content.decode()
    assert "2 X grants will be revoked at X" in confirm
    client.post(reverse("admin:auth_user_changelist"), {**data, "post": "yes"})

    assert XToken.objects.count() == 0
    assert not access_token_is_live(x_sandbox, first.access_token)
    assert not access_token_is_live(x_sandbox, second.access_token)


@pytest.mark.django_db(transaction=True)
def test_shell_delete_while_x_is_down_keeps_the_grant_pending_then_the_retry_revokes_it(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    secret, refresh = token.access_token, token.refresh_token
    x_sandbox.fault("/2/oauth2/revoke", status=503, times=5)

    User.objects.get(pk=token.profile.user_id).delete()  # as in `manage.py shell`

    assert XToken.objects.count() == 0
    [pending] = waiting()
    assert pending.attempts == 1 and "503" in pending.last_error
    assert pending.screen_name == "ada_lovelace" and pending.access_token == secret
    assert access_token_is_live(x_sandbox, secret) and refresh_token_is_live(x_sandbox, refresh)

    x_sandbox.clear_faults()
    all_due()
    out = io.StringIO()
    call_command("x_tokens", "retry-revocations", stdout=out)

    assert "1 confirmed by X, 0 failed; 0 still pending" in out.getvalue()
    assert not access_token_is_live(x_sandbox, secret)
    assert not refresh_token_is_live(x_sandbox, refresh)
    outcomes = list(AuditEvent.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["failed", "ok"], "each attempt is in the audit trail"


@pytest.mark.django_db(transaction=True)
def test_a_deletion_that_rolls_back_revokes_nothing(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH1)

    with pytest.raises(RuntimeError), transaction.atomic():
        token.profile.user.delete()
        raise RuntimeError("the surrounding work failed")

    assert XToken.objects.filter(pk=token.pk).exists()
    assert PendingRevocation.objects.count() == 0
    assert access_token_is_live(x_sandbox, token.access_token)


@pytest.mark.django_db(transaction=True)
def test_removing_the_x_connection_revokes_that_methods_grant(x_sandbox):
    oauth2 = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    oauth1 = add_second_method(x_sandbox, oauth2)
    user = oauth2.profile.user
    connection = SocialAccount.objects.create(user=user, provider="twitter", uid="1000000001")

    connection.delete()  # allauth's "Remove" on its connections page does this

    assert list(XToken.objects.values_list("kind", flat=True)) == [TokenKind.OAUTH2]
    with pytest.raises(XTokenInvalid):
        x_client.verify_credentials(oauth1.access_token, oauth1.token_secret)
    assert access_token_is_live(x_sandbox, oauth2.access_token)


# 6. Unreadable tokens -------------------------------------------------------------------------


def unreadable_and_readable(x_sandbox, settings) -> tuple[XToken, XToken]:
    """One token stored under a key since removed, one under the current key."""
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    lost = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY]
    fine = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH2)
    return lost, fine


@pytest.mark.django_db
@pytest.mark.parametrize("action", [TokenAction.CHECK, TokenAction.REFRESH, TokenAction.REVOKE])
def test_unreadable_token_fails_its_item_clearly_and_the_job_finishes(x_sandbox, settings, action):
    lost, _ = unreadable_and_readable(x_sandbox, settings)
    job = jobs.create_job(action, XToken.objects.all(), actor_label="test")

    progress = jobs.run_job(job)

    assert (progress.state, progress.ok, progress.failed) == ("done", 1, 1)
    failed = BulkJobItem.objects.get(job=job, status=ItemStatus.FAILED)
    assert failed.token_id == lost.pk and "could not be decrypted" in failed.message
    assert "TOKEN_ENCRYPTION_KEYS" in failed.message
    assert XToken.objects.get(pk=lost.pk).status == TokenStatus.UNREADABLE
    assert jobs.run_job(job).state == "done"  # resuming it is harmless
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert XToken.objects.get(pk=lost.pk).access_token == lost.access_token, "nothing lost"


@pytest.mark.django_db
def test_disconnect_with_an_unreadable_token_keeps_the_grant_for_when_the_key_returns(
    x_sandbox, settings
):
    lost, _ = unreadable_and_readable(x_sandbox, settings)
    client = Client()
    client.force_login(lost.profile.user)

    response = client.post("/account/disconnect/", follow=True)

    assert response.status_code == 200
    assert "X has not yet confirmed" in response.content.decode()
    [pending] = waiting()
    assert "could not be decrypted" in pending.last_error
    assert access_token_is_live(x_sandbox, lost.access_token)

    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]  # the operator puts the key back
    all_due()
    assert retry_due_revocations().revoked == 1
    assert not access_token_is_live(x_sandbox, lost.access_token)


@pytest.mark.django_db
def test_admin_action_on_an_unreadable_token_answers_a_message(x_sandbox, settings):
    lost, _ = unreadable_and_readable(x_sandbox, settings)
    boss = User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client = Client()
    client.force_login(boss)

    client.post(
        reverse("admin:accounts_xtoken_changelist"),
        {"action": "check_tokens", "_selected_action": [lost.pk], "index": "0"},
    )
    run_queued_jobs()
    response = client.get(BulkJob.objects.get().get_admin_url())

    assert response.status_code == 200
    assert "could not be decrypted" in response.content.decode()


@pytest.mark.django_db
def test_staff_see_how_many_tokens_cannot_be_read(x_sandbox, settings, admin_client):
    unreadable_and_readable(x_sandbox, settings)
    err = io.StringIO()

    call_command("rotate_token_keys", stdout=io.StringIO(), stderr=err)

    assert "1 rows could not be decrypted" in err.getvalue()
    html = admin_client.get("/admin/").content.decode()
    assert '<span class="dash-count">1</span> <span class="dash-label">Cannot be decrypted' in html
    listing = admin_client.get(
        reverse("admin:accounts_xtoken_changelist"), {"status__exact": "unreadable"}
    ).content.decode()
    assert listing.count('class="action-select"') == 1


@pytest.mark.django_db
def test_pending_revocations_are_counted_on_the_dashboard_and_listed_masked(
    x_sandbox, admin_client
):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    x_sandbox.fault("/2/oauth2/revoke", status=401)
    assert not end_token_grant(token, "test").ok

    html = admin_client.get("/admin/").content.decode()
    assert (
        '<span class="dash-count">1</span> <span class="dash-label">'
        "Revocations X has not confirmed yet" in html
    )
    listing = admin_client.get(
        reverse("admin:accounts_pendingrevocation_changelist"), {"resolved": "no"}
    ).content.decode()
    pending = PendingRevocation.objects.get()
    detail = admin_client.get(
        reverse("admin:accounts_pendingrevocation_change", args=[pending.pk])
    ).content.decode()
    assert f"OAuth 2.0 …{token.access_token[-4:]}" in listing
    for secret in (token.access_token, token.refresh_token):
        assert secret not in listing + detail


@pytest.mark.django_db(transaction=True)
def test_the_job_workers_retry_pending_revocations_with_backoff(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH1)
    x_sandbox.fault("/1.1/oauth/invalidate_token", status=401, times=2)
    assert not end_token_grant(token, "test").ok
    [pending] = waiting()
    first_wait = pending.next_attempt_at - timezone.now()
    assert timedelta(seconds=50) < first_wait <= timedelta(minutes=1)
    scheduled = DBTaskResult.objects.filter(task_path=retry_pending_revocations_task.module_path)
    assert scheduled.filter(status="READY").count() == 1

    def worker_runs_when_due() -> None:
        all_due()
        scheduled.filter(status="READY").update(run_after=timezone.now())
        call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)

    worker_runs_when_due()  # X still refuses: the wait doubles, a next run is scheduled
    pending.refresh_from_db()
    assert pending.resolved_at is None and pending.attempts == 2
    assert pending.next_attempt_at - timezone.now() > timedelta(seconds=110)
    assert access_token_is_live(x_sandbox, token.access_token)

    worker_runs_when_due()
    pending.refresh_from_db()
    assert pending.resolved_at is not None
    assert not access_token_is_live(x_sandbox, token.access_token)
    assert not scheduled.filter(status="READY").exists(), "nothing left to retry"
