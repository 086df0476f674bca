"""A person's own account in real Chromium against the sandbox: see, download, disconnect, delete.

Each walk checks its effect at the sandbox: the grant the site held no longer
works at X afterwards.
"""

import json

import pytest

from tests.sandbox import point_browser_site_at
from tests.test_account_self_service import ADA, grants_alive, held_tokens, traces_of
from tests.test_signin_browser import sign_in_with_x

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(live_server, x_sandbox, settings):
    point_browser_site_at(settings, x_sandbox.base_url)
    settings.X_HTTP_RETRIES = 0
    return live_server.url


def open_account(page, site: str) -> None:
    page.get_by_role("link", name="Your account").click()
    page.wait_for_url(site + "/account/")


def test_see_and_download_my_data(page, site, x_sandbox):
    sign_in_with_x(page, site, "OAuth 2.0", "ada_lovelace")
    open_account(page, site)

    stored = page.locator(".stored-facts").inner_text()
    assert "ada_lovelace" in stored and "1000000001" in stored and "London, England" in stored
    grant = page.locator("tr.grant").inner_text()
    assert "OAuth 2.0" in grant and "Active" in grant and "users.read" in grant
    assert "OAuth 2.0" in page.locator(".sign-ins").inner_text()

    with page.expect_download() as download:
        page.get_by_role("link", name="Download my data").click()
    body = download.value.path().read_text(encoding="utf-8")

    assert download.value.suggested_filename.startswith("my-data-")
    assert [secret for secret in x_sandbox.secrets() if secret in body] == []
    data = json.loads(body)
    assert data["schema_version"] == 1
    assert data["profile"]["followers_count"] == 1815
    assert data["x_grants"][0]["status"] == "active"
    assert grants_alive(held_tokens()) == [True]  # looking and downloading change nothing


def test_disconnect_x_after_a_confirmation(page, site):
    sign_in_with_x(page, site, "OAuth 1.0a", "ada_lovelace")
    held = held_tokens()
    open_account(page, site)

    page.get_by_role("link", name="Disconnect X").click()
    page.wait_for_url(site + "/account/disconnect/")
    assert "X is your only way to sign in here" in page.locator("main").inner_text()
    assert grants_alive(held) == [True]
    page.get_by_role("button", name="Disconnect X").click()

    page.wait_for_url(site + "/")
    assert "Disconnected from X" in page.locator(".messages").inner_text()
    assert grants_alive(held) == [False]


def test_delete_my_account_from_two_devices(page, browser, site):
    sign_in_with_x(page, site, "OAuth 1.0a", "ada_lovelace")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(site + "/")
    sign_in_with_x(page, site, "OAuth 2.0", "ada_lovelace")
    phone = browser.new_context().new_page()
    sign_in_with_x(phone, site, "OAuth 1.0a", "ada_lovelace")
    held = held_tokens()
    bio = page.locator(".bio").inner_text()
    open_account(page, site)

    page.get_by_role("link", name="Delete my account").click()
    page.wait_for_url(site + "/account/delete/")
    assert "2 grants" in page.locator("main").inner_text()
    page.get_by_label("Type @ada_lovelace to confirm").fill("@grace_hopper")
    page.get_by_role("button", name="Delete my account").click()
    assert "That is not @ada_lovelace" in page.get_by_role("alert").inner_text()
    assert grants_alive(held) == [True, True]
    page.get_by_label("Type @ada_lovelace to confirm").fill("@ada_lovelace")
    page.get_by_role("button", name="Delete my account").click()

    page.wait_for_url(site + "/")
    assert "Your account is deleted" in page.locator(".messages").inner_text()
    assert grants_alive(held) == [False, False]
    phone.goto(site + "/account/")
    assert phone.url == site + "/login/?next=/account/"
    phone.context.close()
    assert traces_of([ADA["screen_name"], ADA["x_user_id"], ADA["name"], bio]) == []
