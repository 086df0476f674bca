"""Issue 15, points 4-6: who sees bulk jobs, who may post an action, no staff 500s."""

import pytest
from allauth.account.models import EmailAddress
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.models import TokenKind, XToken
from admin_ext import jobs
from admin_ext.models import TokenAction
from tests.test_admin_support import sign_in, staff_user

pytestmark = pytest.mark.django_db

PROFILES = reverse("admin:accounts_profile_changelist")


@pytest.fixture
def finished_job(settings, x_sandbox):
    """A check job over @ada_lovelace's token, run against the sandbox."""
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    job = jobs.create_job(TokenAction.CHECK, XToken.objects.filter(pk=token.pk))
    jobs.run_job(job)
    return job


def job_pages(job) -> list[str]:
    return [
        reverse("admin:admin_ext_bulkjob_changelist"),
        reverse("admin:admin_ext_bulkjob_change", args=[job.pk]),
        reverse("admin:admin_ext_bulkjob_progress", args=[job.pk]),
    ]


def only(*perms: str):
    """Staff holding exactly `perms` (staff_user also grants profile and token views)."""
    user = staff_user("only", *perms)
    user.user_permissions.remove(
        *user.user_permissions.exclude(
            codename__in=[perm.split(".")[1] for perm in perms],
        )
    )
    return get_user_model().objects.get(pk=user.pk)


# 4. Bulk jobs ---------------------------------------------------------------------------


def test_an_action_permission_alone_shows_no_job(client, finished_job):
    client.force_login(only("accounts.check_token"))

    for url in job_pages(finished_job):
        assert client.get(url).status_code == 403, url


def test_staff_who_may_run_actions_and_view_profiles_still_need_the_job_view_permission(
    client, finished_job
):
    client.force_login(staff_user("checker", "accounts.check_token"))

    for url in job_pages(finished_job):
        assert client.get(url).status_code == 403, url


def test_job_viewers_without_profile_view_follow_jobs_without_account_names(client, finished_job):
    client.force_login(only("admin_ext.view_bulkjob"))

    for url in job_pages(finished_job):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "ada_lovelace" not in response.content.decode(), url
    detail = client.get(job_pages(finished_job)[1]).content.decode()
    assert "Account names are shown to staff who may view profiles." in detail
    assert 'data-field="ok">1<' in detail, "the outcome counts are there"


def test_job_viewers_who_may_view_profiles_see_which_account_had_which_outcome(
    client, finished_job
):
    client.force_login(staff_user("watcher", "admin_ext.view_bulkjob"))

    detail = client.get(job_pages(finished_job)[1]).content.decode()
    assert "@ada_lovelace" in detail


# 5. Actions a user lacks ----------------------------------------------------------------


def test_view_only_staff_posting_the_export_action_get_403(client, x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    client.force_login(staff_user("viewer"))

    response = client.post(
        PROFILES,
        {"action": "export_profiles", "_selected_action": [token.profile_id], "index": "0"},
    )

    assert response.status_code == 403


def test_export_needs_the_profile_view_permission_too(client):
    client.force_login(only("accounts.export_profile"))

    assert client.get(reverse("admin:accounts_profile_export")).status_code == 403


def test_view_only_staff_cannot_mark_an_email_address_verified(client, x_sandbox):
    owner = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2).profile.user
    address = EmailAddress.objects.create(user=owner, email="boss@example.com", verified=False)
    client.force_login(staff_user("viewer", "account.view_emailaddress"))

    response = client.post(
        reverse("admin:account_emailaddress_changelist"),
        {"action": "make_verified", "_selected_action": [address.pk], "index": "0"},
    )

    assert response.status_code == 403
    assert not EmailAddress.objects.get(pk=address.pk).verified


def test_axes_clean_up_action_works_for_a_superuser(client):
    AccessAttempt.objects.create(
        username="someone", ip_address="127.0.0.1", failures_since_start=1
    )
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(boss)

    response = client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {
            "action": "cleanup_expired_attempts",
            "_selected_action": [AccessAttempt.objects.get().pk],
            "index": "0",
        },
    )

    assert response.status_code == 302


# 6. No 500 for staff --------------------------------------------------------------------


@pytest.fixture
def boss(client):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(user)
    return user


@pytest.mark.parametrize("page", ["progress", "change"])
@pytest.mark.parametrize("job_id", ["abc", "%00", "99999999999999999999"])
def test_a_job_id_that_is_not_a_job_is_not_found(client, boss, page, job_id):
    response = client.get(f"/admin/admin_ext/bulkjob/{job_id}/{page}/")

    assert response.status_code in (302, 404)


@pytest.mark.parametrize("value", ["%00", "%ff%fe", "A" * 10_240, "active%00"])
def test_a_token_status_filter_that_is_not_a_status_is_refused_not_sent_to_the_database(
    client, boss, value
):
    response = client.get(f"{PROFILES}?token_status={value}")

    assert response.status_code in (302, 400)
    if response.status_code == 302:
        assert response["Location"].endswith("?e=1"), "Django's 'invalid filter' page"


@pytest.mark.parametrize("query", ["q=%00", "protected__exact=%00", "x_created_at__gte=%00"])
def test_a_nul_anywhere_in_a_list_query_is_a_bad_request(client, boss, query):
    assert client.get(f"{PROFILES}?{query}").status_code == 400


def test_the_token_status_filter_still_filters(client, boss, x_sandbox):
    sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)

    active = client.get(f"{PROFILES}?token_status=active").content.decode()
    revoked = client.get(f"{PROFILES}?token_status=revoked").content.decode()

    assert "@ada_lovelace" in active
    assert "@ada_lovelace" not in revoked
