"""What a person sees on the first pages, in real headless Chromium."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_home_page_in_chromium(page, live_server):
    page.goto(live_server.url + "/")
    assert page.locator("h1").inner_text() == "Your X account, signed in safely"
    assert page.get_by_role("link", name="Sign in with X").is_visible()
    assert "X Sign-in" in page.title()
    # The stylesheet was served and applied (the header is laid out as a flex row).
    assert page.locator(".header-row").evaluate("el => getComputedStyle(el).display") == "flex"


def test_home_page_fits_a_phone(mobile_page, live_server):
    mobile_page.goto(live_server.url + "/")
    width = mobile_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page scrolls sideways on a phone"


def test_admin_login_page_in_chromium(page, live_server):
    page.goto(live_server.url + "/admin/")
    assert page.url.startswith(live_server.url + "/admin/login/")
    assert page.get_by_label("Username").is_visible()
    assert page.get_by_label("Password").is_visible()
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    assert (
        "Please enter the correct username and password" in page.locator(".errornote").inner_text()
    )
