"""Signing in with X in real headless Chromium, through the sandbox's own consent page."""

import pytest

from accounts.models import XToken
from tests.sandbox import point_browser_site_at

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(live_server, x_sandbox, settings):
    point_browser_site_at(settings, x_sandbox.base_url)
    return live_server.url


@pytest.fixture
def csp_refusals(page, mobile_page):
    """What Chromium refused under the Content-Security-Policy (a style, a form, an image)."""
    refusals: list[str] = []

    def note(message) -> None:
        if "Content Security Policy" in message.text:
            refusals.append(message.text)

    for each in (page, mobile_page):
        each.on("console", note)
    return refusals


def go_to_x(page, site: str, method: str) -> None:
    page.goto(site + "/login/")
    page.get_by_role("button", name=f"Sign in with X ({method})").click()
    page.get_by_role("button", name="Authorize app").wait_for()


def sign_in_with_x(page, site: str, method: str, persona: str) -> None:
    go_to_x(page, site, method)
    page.locator(f'input[name="persona"][value="{persona}"]').check()
    page.get_by_role("button", name="Authorize app").click()
    page.wait_for_url(site + "/profile/")


def test_oauth1_sign_in_profile_and_disconnect(page, site, x_sandbox, csp_refusals):
    sign_in_with_x(page, site, "OAuth 1.0a", "ada_lovelace")

    assert "Successfully signed in as ada_lovelace" in page.locator(".messages").inner_text()
    assert page.locator("h1").inner_text() == "Ada Lovelace"
    handle = page.get_by_role("link", name="@ada_lovelace")
    assert handle.get_attribute("href") == f"{x_sandbox.base_url}/ada_lovelace"
    website = page.get_by_role("link", name="https://example.com/ada")
    assert website.get_attribute("rel") == "nofollow noopener ugc"
    facts = page.locator("main").inner_text()
    for text in ("London, England", "Poet of science", "1815", "Followers", "42", "Following"):
        assert text in facts
    connection = page.locator(".connection-card").inner_text()
    assert "OAuth 1.0a" in connection and "Active" in connection
    assert "Does not expire" in connection
    assert page.locator("img.avatar").evaluate("img => img.complete && img.naturalWidth > 0")

    page.get_by_role("link", name="Disconnect X").click()
    page.wait_for_url(site + "/account/disconnect/")
    page.get_by_role("button", name="Disconnect X").click()

    page.wait_for_url(site + "/")
    assert "Disconnected from X" in page.locator(".messages").inner_text()
    assert page.get_by_role("link", name="Sign in", exact=True).is_visible()
    assert XToken.objects.count() == 0
    page.goto(site + "/profile/")
    assert page.url == site + "/login/?next=/profile/"
    assert csp_refusals == []


def test_oauth2_sign_in_on_a_phone_and_sign_out(mobile_page, site, csp_refusals):
    page = mobile_page
    sign_in_with_x(page, site, "OAuth 2.0", "grace_hopper")

    assert page.locator("h1").inner_text() == "Grace Hopper"
    connection = page.locator(".connection-card").inner_text()
    assert "OAuth 2.0" in connection and "Expires" in connection
    assert "Website" not in page.locator(".profile-card").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.get_by_role("link", name="Disconnect X").is_visible()

    page.get_by_role("button", name="Sign out").click()

    page.wait_for_url(site + "/")
    assert page.get_by_role("link", name="Sign in", exact=True).is_visible()
    # Signing out is not disconnecting: the token stays for next time.
    assert XToken.objects.count() == 1
    assert csp_refusals == []


def test_cancel_at_x_shows_a_way_back(page, site, csp_refusals):
    go_to_x(page, site, "OAuth 1.0a")

    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Cancel").click()

    assert navigation.value.status == 403
    assert page.locator("h1").inner_text() == "You cancelled the sign-in at X"
    assert page.get_by_role("link", name="Sign in", exact=True).is_visible()
    page.get_by_role("link", name="Try again").click()
    page.wait_for_url(site + "/login/")
    assert page.get_by_role("button", name="Sign in with X (OAuth 2.0)").is_visible()
    assert csp_refusals == []
