"""The check / refresh / revoke actions as staff use them: permissions, messages, jobs, audit."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from accounts.models import Profile, TokenKind, TokenStatus, XToken
from admin_ext import jobs
from admin_ext.models import AuditEvent, BulkJob, TokenAction
from admin_ext.permissions import TOKEN_ACTION_PERMISSIONS
from admin_ext.tasks import start_job
from tests.test_admin_support import (
    access_token_is_live,
    job_summary,
    run_queued_jobs,
    sign_in,
    sign_in_many,
    staff_user,
    token_calls,
)

pytestmark = pytest.mark.django_db

PROFILES = reverse("admin:accounts_profile_changelist")
TOKENS = reverse("admin:accounts_xtoken_changelist")
# The admin's action for each token action ("check" -> check_tokens) and its permission.
PERMISSION_OF = {f"{action}_tokens": perm for action, perm in TOKEN_ACTION_PERMISSIONS.items()}
ACTIONS = tuple(PERMISSION_OF)


@pytest.fixture(autouse=True)
def site_uses_sandbox(settings, x_sandbox):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    return x_sandbox


@pytest.fixture
def boss(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(user)
    return user


def offered_actions(client, url: str) -> set[str]:
    html = client.get(url).content.decode()
    return set(re.findall(r'<option value="(\w+)"', html)) & set(ACTIONS)


def post_action(client, url: str, action: str, pks, **extra):
    data = {"action": action, "_selected_action": [str(pk) for pk in pks], "index": "0"}
    data.update(extra)
    return client.post(url, data, follow=False)


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


# Permissions ---------------------------------------------------------------------------


@pytest.mark.parametrize("url", [PROFILES, TOKENS])
@pytest.mark.parametrize("granted", [(), ("check_tokens",), ("refresh_tokens", "revoke_tokens")])
def test_staff_see_only_the_actions_they_may_run_and_get_403_for_the_rest(
    client, x_sandbox, url, granted
):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    staff = staff_user("helper", *(PERMISSION_OF[name] for name in granted))
    client.force_login(staff)
    pk = token.profile_id if url == PROFILES else token.pk

    assert offered_actions(client, url) == set(granted)
    for action in set(ACTIONS) - set(granted):
        response = post_action(client, url, action, [pk], confirmed="yes")
        assert response.status_code == 403, action
    assert x_sandbox.calls() == [], "a refused action never reached X"
    assert AuditEvent.objects.count() == 0
    stored = XToken.objects.get(pk=token.pk)
    assert (stored.status, stored.access_token) == (TokenStatus.ACTIVE, token.access_token)


def test_superuser_has_every_action(client, boss, x_sandbox):
    sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    assert offered_actions(client, PROFILES) == set(ACTIONS)
    assert offered_actions(client, TOKENS) == set(ACTIONS)


def test_staff_without_token_permissions_cannot_read_job_progress(client, x_sandbox):
    job = jobs.create_job(TokenAction.CHECK, XToken.objects.none())
    client.force_login(staff_user("viewer"))
    url = reverse("admin:admin_ext_bulkjob_progress", args=[job.pk])

    assert client.get(url).status_code == 403
    client.logout()
    assert client.get(url).status_code == 302, "anonymous users are sent to the login page"


# Running actions ---------------------------------------------------------------------------


def test_check_goes_to_its_job_page_which_reports_ok_and_failed_with_reasons(client, x_sandbox):
    staff = staff_user("checker", "accounts.check_token", "accounts.view_profile")
    client.force_login(staff)
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    grace = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    pat = sign_in(x_sandbox, "private_pat", TokenKind.OAUTH2)
    x_sandbox.revoke(pat.access_token)
    x_sandbox.update_persona("ada_lovelace", name="Countess of Lovelace")

    response = post_action(
        client, PROFILES, "check_tokens", [ada.profile_id, grace.profile_id, pat.profile_id]
    )

    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job.get_admin_url()
    assert x_sandbox.calls() == [], "the request only queued the job"
    [message] = messages_of(client.get(response["Location"]))
    assert message == f"Check of 3 tokens started as job #{job.pk}; this page follows it."
    run_queued_jobs()
    summary = job_summary(client, job)
    assert summary.startswith("Check: 2 ok, 1 failed")
    assert "@private_pat" in summary and "X answered 401" in summary
    assert ".:" not in summary, "no doubled punctuation"
    assert Profile.objects.get(pk=ada.profile_id).name == "Countess of Lovelace"
    assert XToken.objects.get(pk=pat.pk).status == TokenStatus.INVALID
    events = AuditEvent.objects.filter(job=job)
    assert {(e.screen_name, e.outcome, e.http_status) for e in events} == {
        ("ada_lovelace", "ok", 200),
        ("grace_hopper", "ok", 200),
        ("private_pat", "failed", 401),
    }
    assert all(e.actor == staff and e.action == "check" for e in events)
    [entry] = LogEntry.objects.filter(user=staff)
    assert entry.object_repr == f"Job #{job.pk}: check 3 tokens"


def test_refresh_from_the_token_list(client, boss, x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)

    post_action(client, TOKENS, "refresh_tokens", [token.pk])
    run_queued_jobs()

    assert job_summary(client, BulkJob.objects.get()) == "Refresh: 1 ok, 0 failed."
    assert XToken.objects.get(pk=token.pk).refresh_token != token.refresh_token


def test_revoke_asks_for_confirmation_listing_the_accounts_first(client, x_sandbox):
    client.force_login(staff_user("revoker", "accounts.revoke_token"))
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    grace = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    pks = [ada.profile_id, grace.profile_id]

    confirm = post_action(client, PROFILES, "revoke_tokens", pks)

    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "@ada_lovelace" in page and "@grace_hopper" in page
    assert "Yes, revoke 2 tokens" in page
    assert ada.access_token not in page and grace.token_secret not in page
    assert x_sandbox.calls() == [] and XToken.objects.filter(status="revoked").count() == 0

    done = post_action(client, PROFILES, "revoke_tokens", pks, confirmed="yes")
    assert done["Location"] == BulkJob.objects.get().get_admin_url()
    run_queued_jobs()

    assert job_summary(client, BulkJob.objects.get()) == "Revoke: 2 ok, 0 failed."
    assert set(XToken.objects.values_list("status", flat=True)) == {TokenStatus.REVOKED}
    assert not access_token_is_live(x_sandbox, ada.access_token)
    assert not access_token_is_live(x_sandbox, grace.access_token)


def test_even_one_token_becomes_a_background_job(client, boss, x_sandbox):
    tokens = sign_in_many(x_sandbox, 1)

    response = post_action(client, TOKENS, "check_tokens", [t.pk for t in tokens])

    job = BulkJob.objects.get()
    assert response["Location"] == job.get_admin_url()
    assert job.run_in_background and job.total == 1
    assert token_calls(x_sandbox, "/2/users/me") == 0, "nothing ran in the request"
    task = DBTaskResult.objects.get(id=job.task_id)
    assert task.task_path == "admin_ext.tasks.run_bulk_job"
    assert task.args_kwargs["args"] == [job.pk], "the selection is in the items, not the task"


def test_select_all_runs_the_whole_filtered_list_in_the_background(client, boss, x_sandbox):
    tokens = sign_in_many(x_sandbox, 3)
    sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)

    response = client.post(
        PROFILES + "?token_kind=oauth2",
        {
            "action": "refresh_tokens",
            "_selected_action": [str(tokens[0].profile_id)],
            "select_across": "1",
            "index": "0",
        },
    )

    assert response.status_code == 302
    job = BulkJob.objects.get()
    assert job.run_in_background
    assert set(job.items.values_list("token_id", flat=True)) == {t.pk for t in tokens}


def test_revoking_a_whole_filtered_list_confirms_the_count_then_runs_in_the_background(
    client, boss, x_sandbox
):
    tokens = sign_in_many(x_sandbox, 3)
    grace = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    url = PROFILES + "?token_kind=oauth2"
    across = {"select_across": "1", "_selected_action": [str(tokens[0].profile_id)]}

    confirm = client.post(url, {"action": "revoke_tokens", "index": "0", **across})

    page = confirm.content.decode()
    assert "Yes, revoke 3 tokens" in page and "background job" in page
    assert "@grace_hopper" not in page
    assert x_sandbox.calls() == [] and BulkJob.objects.count() == 0

    client.post(url, {"action": "revoke_tokens", "confirmed": "yes", **across})

    job = BulkJob.objects.get()
    assert job.action == "revoke" and job.run_in_background
    assert set(job.items.values_list("token_id", flat=True)) == {t.pk for t in tokens}
    assert grace.pk not in set(job.items.values_list("token_id", flat=True))


@pytest.mark.django_db(transaction=True)
def test_job_page_shows_progress_and_each_accounts_outcome(client, x_sandbox):
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(boss)
    ok = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    bad = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH2, x_user_id="1000000002")
    x_sandbox.revoke(bad.access_token)
    job = start_job(TokenAction.CHECK, XToken.objects.all(), actor=boss)
    progress_url = reverse("admin:admin_ext_bulkjob_progress", args=[job.pk])
    assert client.get(progress_url).json()["state"] == "queued"

    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)

    answer = client.get(progress_url).json()
    rows_html, summary_html = answer.pop("items_html"), answer.pop("summary_html")
    assert answer == {
        "total": 2,
        "ok": 1,
        "failed": 1,
        "pending": 0,
        "running": 0,
        "done": 2,
        "state": "done",
    }
    assert "@ada_lovelace" in rows_html and "X answered 401" in rows_html
    assert "Running" not in rows_html and "Pending" not in rows_html
    assert summary_html.startswith("Check: 1 ok, 1 failed")
    page = client.get(job.get_admin_url()).content.decode()
    assert 'id="job-progress-bar" max="2" value="2"' in page
    assert "admin_ext/job_progress.js" in page and "<script>" not in page
    assert "@ada_lovelace" in page and "@grace_hopper" in page and "X answered 401" in page
    failed_only = client.get(job.get_admin_url(), {"status": "failed"}).content.decode()
    assert "@grace_hopper" in failed_only and "@ada_lovelace" not in failed_only
    assert ok.access_token not in page and bad.access_token not in page


def test_stalled_job_can_be_resumed_from_the_job_list(client, x_sandbox, settings):
    client.force_login(staff_user("ops", "accounts.refresh_token", "admin_ext.view_bulkjob"))
    tokens = sign_in_many(x_sandbox, 2)
    job = jobs.create_job(
        TokenAction.REFRESH, XToken.objects.filter(pk__in=[t.pk for t in tokens])
    )
    jobs.claim_items(job, "crashed-worker", 2)
    settings.ADMIN_EXT_CLAIM_LEASE = 0
    BulkJob.objects.filter(pk=job.pk).update(
        started_at=job.created_at, heartbeat_at=job.created_at
    )
    url = reverse("admin:admin_ext_bulkjob_changelist")

    response = client.post(
        url, {"action": "resume_jobs", "_selected_action": [job.pk], "index": 0}
    )

    [message] = messages_of(client.get(response["Location"]))
    assert message.startswith(f"Resumed #{job.pk}")
    assert DBTaskResult.objects.filter(args_kwargs__args=[job.pk]).exists()
    client.force_login(staff_user("viewer", "admin_ext.view_bulkjob"))
    denied = client.post(url, {"action": "resume_jobs", "_selected_action": [job.pk], "index": 0})
    assert denied.status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "/admin/accounts/profile/abc/change/",
        "/admin/accounts/xtoken/1/change/widgets.css/change/",
        "/admin/accounts/profile/99999/change/",
        "/admin/accounts/profile/abc/delete/",
        "/admin/accounts/xtoken/%00/delete/",
        "/admin/auth/user/abc/delete/",
    ],
)
def test_account_pages_with_their_action_buttons_answer_a_bad_id_without_a_500(client, boss, url):
    response = client.get(url)
    assert response.status_code in (302, 404)
