"""The staff dashboard on the admin index: right numbers, permissions, cost, and looks."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client
from django.utils import dateformat, timezone

from accounts.models import Profile, TokenKind, TokenStatus, XToken
from admin_ext.models import AuditEvent, BulkJob, BulkJobItem, ItemStatus, SignInEvent
from tests.test_signin_flows import OAUTH1, sign_in

User = get_user_model()


@pytest.fixture(autouse=True)
def fresh_figures():
    """Each test counts its own data, not figures another test left in the cache."""
    cache.clear()


def make_account(name: str, *, method=TokenKind.OAUTH2, status=TokenStatus.ACTIVE, **token):
    user = User.objects.create_user(name)
    Profile.objects.filter(user=user).update(
        x_user_id=f"9{user.pk:09d}", screen_name=name, sign_in_method=method
    )
    XToken.objects.create(profile=user.x_profile, kind=method, status=status, **token)
    return user


@pytest.fixture
def admin(db):
    return User.objects.create_superuser("ops", "ops@example.com", "unused-password-1")


def section(html: str, element_id: str) -> str:
    match = re.search(
        rf'<div class="module dash-card[^"]*" id="{element_id}">(.*?)</div>'
        r'\s*(?=<div class="module|</section>)',
        html,
        re.S,
    )
    assert match, f"no #{element_id} on the page"
    return match.group(1)


def figure(html: str, label: str) -> int:
    match = re.search(rf"<dt>{re.escape(label)}</dt><dd>(?:<a[^>]*>)?(\d+)", html)
    assert match, label
    return int(match.group(1))


def health(html: str) -> dict[str, int]:
    rows = re.findall(
        r'<span class="dash-count">(\d+)</span> <span class="dash-label">([^<]+)</span>',
        section(html, "dash-tokens"),
    )
    return {label: int(count) for count, label in rows}


def health_links(html: str) -> dict[str, str]:
    rows = re.findall(
        r'<a href="([^"]+)">\s*<span class="dash-count">\d+</span>'
        r' <span class="dash-label">([^<]+)<',
        section(html, "dash-tokens"),
    )
    return {label: href.replace("&amp;", "&") for href, label in rows}


@pytest.mark.django_db
def test_dashboard_shows_accounts_token_health_activity_jobs_and_audit(admin_client):
    soon = timezone.now() + timedelta(hours=2)
    later = timezone.now() + timedelta(days=3)
    make_account("ada", method=TokenKind.OAUTH1)
    make_account("grace", expires_at=soon)
    make_account("pat", expires_at=later)
    make_account("fred", status=TokenStatus.INVALID)
    make_account("lin", status=TokenStatus.REVOKED)
    old = make_account("old", status=TokenStatus.EXPIRED)
    Profile.objects.filter(user=old).update(created_at=timezone.now() - timedelta(days=40))
    SignInEvent.objects.create(user=old, method=TokenKind.OAUTH2)
    SignInEvent.objects.create(user=old, method=TokenKind.OAUTH2)
    job = BulkJob.objects.create(action="refresh", created_by_label="ops", total=4)
    BulkJobItem.objects.bulk_create(
        BulkJobItem(job=job, status=status)
        for status in (ItemStatus.OK, ItemStatus.OK, ItemStatus.FAILED, ItemStatus.PENDING)
    )
    AuditEvent.objects.create(
        actor_label="ops", action="revoke", screen_name="lin", outcome="ok", token_status="revoked"
    )

    response = admin_client.get("/admin/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Task Results" not in html
    assert figure(html, "Users") == 7  # six people and the staff member
    assert figure(html, "With X") == 6
    assert figure(html, "New this week") == 5
    assert figure(html, "Last signed in with OAuth 1.0a") == 1
    assert figure(html, "Last signed in with OAuth 2.0") == 5
    assert health(html) == {
        "Active": 3,
        "Expiring within 24 h": 1,
        "Expired": 1,
        "Revoked": 1,
        "Invalid": 1,
        "Error": 0,
        "Cannot be decrypted": 0,
        "Needs a new sign-in": 0,
        "Revocations X has not confirmed yet": 0,
    }
    activity = section(html, "dash-activity")
    assert "5 sign-ups" in activity and "2 sign-ins with X" in activity
    assert activity.count('class="bar bar-up"') == 30
    assert activity.count('class="bar bar-in"') == 30
    for day in (timezone.localdate() - timedelta(days=n) for n in range(30)):
        assert f"<title>{dateformat.format(day, 'D j M')}: " in activity
    jobs = section(html, "dash-jobs")
    assert f"Job #{job.pk}: refresh 4 tokens" in jobs
    assert 'max="4" value="3"' in jobs and "1 failed" in jobs
    audit = section(html, "dash-audit")
    assert re.search(r'<li class="tone-good">\s*Revoke @lin:\s*OK\s', audit)
    assert "app-staff-accounts" in html  # the model list stays


@pytest.mark.django_db
def test_token_health_links_open_the_matching_filtered_token_list(admin_client):
    make_account("ada", method=TokenKind.OAUTH1)
    make_account("grace", expires_at=timezone.now() + timedelta(hours=2))
    make_account("pat", expires_at=timezone.now() + timedelta(days=3))
    make_account("fred", status=TokenStatus.INVALID)
    html = admin_client.get("/admin/").content.decode()
    counts, links = health(html), health_links(html)

    assert set(links) == set(counts)
    assert urlsplit(links["Invalid"]).path == "/admin/accounts/xtoken/"
    assert parse_qs(urlsplit(links["Invalid"]).query) == {"status__exact": ["invalid"]}
    for label, link in links.items():
        listing = admin_client.get(link)
        assert listing.status_code == 200, label
        assert listing.context["cl"].result_count == counts[label], label


@pytest.mark.django_db
def test_each_section_needs_its_own_view_permission(client):
    staff = User.objects.create_user("helper", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_xtoken"))
    make_account("ada", status=TokenStatus.INVALID)
    client.force_login(staff)

    html = client.get("/admin/").content.decode()

    assert health(html)["Invalid"] == 1
    for hidden in ("dash-totals", "dash-activity", "dash-jobs", "dash-audit"):
        assert f'id="{hidden}"' not in html


@pytest.mark.django_db
def test_staff_without_view_permissions_see_no_numbers(client):
    client.force_login(User.objects.create_user("newbie", is_staff=True))
    html = client.get("/admin/").content.decode()
    assert "dash-card" not in html
    assert "permission to view or edit anything" in html


@pytest.mark.django_db
def test_a_sign_in_with_x_shows_up_in_the_chart(x_sandbox, settings, admin_client):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    x_sandbox.config(callbacks=["http://testserver:*"])
    person = Client()
    sign_in(person, OAUTH1, "ada_lovelace")
    sign_in(person, OAUTH1, "ada_lovelace")

    assert SignInEvent.objects.filter(method=TokenKind.OAUTH1).count() == 2
    activity = " ".join(
        section(admin_client.get("/admin/").content.decode(), "dash-activity").split()
    )
    assert "</span> 1 sign-up <span" in activity and "2 sign-ins with X" in activity


@pytest.mark.django_db
def test_staff_password_logins_are_not_counted_as_sign_ins(client, admin):
    client.post("/admin/login/", {"username": "ops", "password": "unused-password-1"})
    assert not SignInEvent.objects.exists()


def bulk_accounts(count: int) -> None:
    """`count` people with a profile and an OAuth 2.0 token each, in a few statements."""
    now = timezone.now()
    users = User.objects.bulk_create(
        (User(username=f"p{n:06d}", password="!", date_joined=now) for n in range(count)),
        batch_size=5000,
    )
    profiles = Profile.objects.bulk_create(
        (
            Profile(user=user, x_user_id=str(3_000_000_000 + n), screen_name=f"p{n:06d}")
            for n, user in enumerate(users)
        ),
        batch_size=5000,
    )
    statuses = TokenStatus.values
    XToken.objects.bulk_create(
        (
            XToken(
                profile=profile,
                kind=TokenKind.OAUTH2,
                status=statuses[n % len(statuses)],
                expires_at=now + timedelta(hours=n % 48),
            )
            for n, profile in enumerate(profiles)
        ),
        batch_size=5000,
    )
    SignInEvent.objects.bulk_create(
        (SignInEvent(user=user, method=TokenKind.OAUTH2) for user in users[:5000]),
        batch_size=5000,
    )


@pytest.mark.django_db
def test_at_100000_profiles_the_index_takes_at_most_10_queries(
    admin_client, django_assert_max_num_queries
):
    bulk_accounts(100_000)
    # As many jobs and audit events as the dashboard lists: a column it reads one row
    # at a time would cost a query per row.
    for _ in range(5):
        job = BulkJob.objects.create(action="check", created_by_label="ops", total=1)
        BulkJobItem.objects.create(job=job)
    for _ in range(8):
        AuditEvent.objects.create(actor_label="ops", action="check", outcome="ok")

    with django_assert_max_num_queries(10):
        response = admin_client.get("/admin/")

    assert figure(response.content.decode(), "With X") == 100_000
    every_nth = len(TokenStatus.values)  # bulk_accounts gives statuses in turn
    assert health(response.content.decode())["Active"] == len(range(0, 100_000, every_nth))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_dashboard_renders_in_chromium_without_policy_violations(
    page, mobile_page, live_server, admin
):
    make_account("ada", status=TokenStatus.ERROR)
    SignInEvent.objects.create(user=admin, method=TokenKind.OAUTH2)
    for browser_page in (page, mobile_page):
        problems: list[str] = []
        browser_page.on(
            "console",
            lambda m, problems=problems: (
                problems.append(m.text)
                if m.type == "error" and "Failed to load resource" not in m.text  # the favicon
                else None
            ),
        )
        browser_page.goto(live_server.url + "/admin/login/?next=/admin/")
        browser_page.fill("#id_username", "ops")
        browser_page.fill("#id_password", "unused-password-1")
        browser_page.click("input[type=submit]")
        browser_page.wait_for_url(live_server.url + "/admin/")

        chart = browser_page.locator("svg.dash-chart")
        assert chart.is_visible()
        assert chart.bounding_box()["height"] > 50
        assert browser_page.locator("#dash-tokens").is_visible()
        assert browser_page.locator("#app-list, .app-auth").first.is_visible()
        assert problems == []
