"""Staff in a real browser: revoke through the confirmation page, watch a job's progress live."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from accounts.models import TokenKind, TokenStatus, XToken
from tests.test_admin_support import access_token_is_live, sign_in, sign_in_many, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "irrelevant-pw-123"


@pytest.fixture(autouse=True)
def site_uses_sandbox(settings, x_sandbox):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    return x_sandbox


def log_in(page, live_server, username: str, next_url: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_staff_revokes_two_accounts_through_the_confirmation_page(page, live_server, x_sandbox):
    staff_user(
        "revoker", "accounts.revoke_token", "accounts.check_token", "admin_ext.view_bulkjob"
    )
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    grace = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    pat = sign_in(x_sandbox, "private_pat", TokenKind.OAUTH2)
    log_in(page, live_server, "revoker", "/admin/accounts/profile/")

    for profile_id in (ada.profile_id, grace.profile_id):
        page.locator(f'input.action-select[value="{profile_id}"]').check()
    page.locator('select[name="action"]').select_option("revoke_tokens")
    page.get_by_role("button", name="Go").click()

    assert page.get_by_role("heading", name="Revoke X tokens?").is_visible()
    listed = page.locator("#revoke-list tbody").inner_text()
    assert "@ada_lovelace" in listed and "@grace_hopper" in listed
    assert "@private_pat" not in listed
    assert XToken.objects.filter(status=TokenStatus.REVOKED).count() == 0
    page.get_by_role("button", name="Yes, revoke 2 tokens").click()

    message = page.locator(".messagelist li").inner_text()
    assert message.startswith("Revoke: 2 ok, 0 failed")
    assert not access_token_is_live(x_sandbox, ada.access_token)
    assert not access_token_is_live(x_sandbox, grace.access_token)
    assert XToken.objects.get(pk=pat.pk).status == TokenStatus.ACTIVE
    assert access_token_is_live(x_sandbox, pat.access_token)

    page.locator(".messagelist li a").click()
    assert page.locator("#job-progress-bar").get_attribute("value") == "2"
    outcomes = page.locator("#job-items tbody").inner_text()
    assert outcomes.count("Revoked at X and deleted here.") == 2


def test_job_page_progress_bar_moves_without_a_reload(page, live_server, x_sandbox, settings):
    settings.ADMIN_EXT_SYNC_LIMIT = 2
    staff_user("checker", "accounts.check_token", "admin_ext.view_bulkjob")
    tokens = sign_in_many(x_sandbox, 4)
    log_in(page, live_server, "checker", "/admin/accounts/xtoken/")
    page.locator("#action-toggle").check()
    page.locator('select[name="action"]').select_option("check_tokens")
    page.get_by_role("button", name="Go").click()
    assert "runs in the background" in page.locator(".messagelist li").inner_text()
    page.locator(".messagelist li a").click()
    assert page.locator("#job-progress-bar").get_attribute("value") == "0"
    assert page.locator('[data-field="state"]').inner_text() == "queued"
    page.evaluate("window.notReloaded = true")

    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)

    expect(page.locator('[data-field="state"]')).to_have_text("done", timeout=10_000)
    expect(page.locator("#job-progress-bar")).to_have_js_property("value", 4)
    assert page.locator('[data-field="ok"]').inner_text() == str(len(tokens))
    assert page.locator("#job-finished-note").is_visible()
    assert page.evaluate("window.notReloaded") is True
