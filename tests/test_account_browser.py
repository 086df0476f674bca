"""A person's own account in real Chromium against the sandbox: see, download, disconnect, delete
(in English, and in Spanish for a browser that asks for it).

Each walk checks its effect at the sandbox: the grant the site held no longer
works at X afterwards.
"""

import json

import pytest

from tests.sandbox import point_browser_site_at
from tests.test_account_self_service import ADA, grants_alive, held_tokens, traces_of
from tests.test_signin_browser import sign_in_with_x
from tests.test_translations import english_on

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


def test_sign_in_and_delete_my_account_in_spanish(browser, site):
    """A Spanish browser (Accept-Language: es) signs in, opens its account and deletes it:
    every page of ours is in Spanish, and the grant no longer works at X afterwards."""
    context = browser.new_context(locale="es-ES", extra_http_headers={"Accept-Language": "es"})
    context.set_default_timeout(15_000)
    page = context.new_page()

    def ours_in_spanish(*spanish: str) -> None:
        assert page.locator("html").get_attribute("lang") == "es"
        text = page.locator("body").inner_text()
        for phrase in spanish:
            assert phrase in text
        assert english_on(" ".join(text.split())) == []

    page.goto(site + "/")
    ours_in_spanish("Su cuenta de X, con un inicio de sesión seguro", "Idioma")
    page.get_by_role("link", name="Iniciar sesión con X").click()
    page.wait_for_url(site + "/login/")
    ours_in_spanish("Leemos su perfil público y nunca publicamos en su nombre.")
    page.get_by_role("button", name="Iniciar sesión con X (OAuth 2.0)").click()
    page.locator('input[name="persona"][value="ada_lovelace"]').check()  # the sandbox: X's page
    page.get_by_role("button", name="Authorize app").click()
    page.wait_for_url(site + "/profile/")
    ours_in_spanish("Su conexión con X", "Seguidores", "Sesión iniciada como")
    held = held_tokens()

    page.get_by_role("link", name="Su cuenta").click()
    page.wait_for_url(site + "/account/")
    ours_in_spanish("Su perfil tal como lo guardamos", "Acceso a su cuenta de X", "Activo")
    page.get_by_role("link", name="Eliminar mi cuenta").click()
    page.wait_for_url(site + "/account/delete/")
    ours_in_spanish("¿Eliminar su cuenta?", "(1 acceso)")
    page.get_by_label("Escriba @ada_lovelace para confirmar").fill("@grace_hopper")
    page.get_by_role("button", name="Eliminar mi cuenta").click()
    assert "Eso no es @ada_lovelace" in page.get_by_role("alert").inner_text()
    ours_in_spanish("¿Eliminar su cuenta?")
    assert grants_alive(held) == [True]
    page.get_by_label("Escriba @ada_lovelace para confirmar").fill("@ada_lovelace")
    page.get_by_role("button", name="Eliminar mi cuenta").click()

    page.wait_for_url(site + "/")
    assert "Su cuenta está eliminada" in page.locator(".messages").inner_text()
    ours_in_spanish("Iniciar sesión con X")
    assert grants_alive(held) == [False]
    context.close()


def test_every_page_a_person_meets_passes_axe(page, site):
    """Issue 18 point 6 for people's pages: home, a failed sign-in, the account page and
    both confirmations, our own 404, in English and in Spanish."""
    from tests.test_signin_browser import go_to_x
    from tests.test_staff_ux_browser import axe_violations, serious

    problems: dict[str, list[str]] = {}

    def audit(name: str) -> None:
        page.wait_for_load_state("networkidle")
        found = serious(axe_violations(page))
        if found:
            problems[name] = found

    page.goto(site + "/")
    audit("home")
    go_to_x(page, site, "OAuth 1.0a")
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_selector("h1")
    audit("sign-in cancelled at X")
    page.goto(site + "/no-such-page/")
    audit("404")
    sign_in_with_x(page, site, "OAuth 2.0", "ada_lovelace")
    for language in ("en", "es"):
        page.context.set_extra_http_headers({"Accept-Language": language})
        for path in ("/profile/", "/account/", "/account/disconnect/", "/account/delete/"):
            page.goto(site + path)
            assert page.locator("html").get_attribute("lang") == language
            audit(f"{path} ({language})")

    assert problems == {}
