"""The sandbox's consent page in real Chromium: it renders, escapes, and completes both flows."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Page, Route
from requests_oauthlib import OAuth1Session

from tests.sandbox import SandboxControl, TimeoutSession

pytestmark = pytest.mark.browser

# Nothing listens here: Playwright answers the callback itself, so the test sees
# exactly where the sandbox sent the browser.
CALLBACK = "http://localhost:9/callback"
http = TimeoutSession()


def catch_callback(page: Page) -> None:
    def answer(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body="<p>callback reached</p>")

    page.route(CALLBACK + "**", answer)


def callback_params(page: Page) -> dict[str, str]:
    assert page.url.startswith(CALLBACK)
    return {name: values[0] for name, values in parse_qs(urlsplit(page.url).query).items()}


def start_oauth1(x_sandbox: SandboxControl) -> OAuth1Session:
    session = OAuth1Session(
        "sandbox-consumer-key", "sandbox-consumer-secret", callback_uri=CALLBACK
    )
    session.fetch_request_token(x_sandbox.base_url + "/oauth/request_token")
    return session


def test_oauth1_consent_page_renders_and_authorizes(page: Page, x_sandbox: SandboxControl) -> None:
    session = start_oauth1(x_sandbox)
    catch_callback(page)
    page.goto(session.authorization_url(x_sandbox.base_url + "/oauth/authenticate"))

    assert page.get_by_text("X sandbox — not the real X").is_visible()
    assert page.get_by_text("Sandbox Sign-in App").first.is_visible()
    assert page.locator('input[name="persona"][value="ada_lovelace"]').is_checked()
    page.get_by_label("Grace Hopper").check()
    page.get_by_role("button", name="Authorize app").click()
    page.wait_for_url(CALLBACK + "**")

    session.parse_authorization_response(page.url)
    tokens = session.fetch_access_token(x_sandbox.base_url + "/oauth/access_token")
    assert tokens["screen_name"] == "grace_hopper"


def test_oauth1_cancel(page: Page, x_sandbox: SandboxControl) -> None:
    session = start_oauth1(x_sandbox)
    catch_callback(page)
    page.goto(session.authorization_url(x_sandbox.base_url + "/oauth/authorize"))
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(CALLBACK + "**")
    assert callback_params(page) == {"denied": session.token["oauth_token"]}


def test_oauth2_consent_page_in_chromium(page: Page, x_sandbox: SandboxControl) -> None:
    catch_callback(page)
    query = {
        "response_type": "code",
        "client_id": "sandbox-client-id",
        "redirect_uri": CALLBACK,
        "scope": "tweet.read users.read",
        "state": "state-123",
        "code_challenge": "challenge-that-is-plain",
        "code_challenge_method": "plain",
    }
    page.goto(x_sandbox.base_url + "/i/oauth2/authorize?" + urlencode(query))
    page.get_by_label("Pat Private").check()
    page.get_by_role("button", name="Authorize app").click()
    page.wait_for_url(CALLBACK + "**")
    params = callback_params(page)
    assert params["state"] == "state-123"

    token = http.post(
        x_sandbox.base_url + "/2/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": "challenge-that-is-plain",
        },
        auth=("sandbox-client-id", "sandbox-client-secret"),
    ).json()
    me = http.get(
        x_sandbox.base_url + "/2/users/me",
        headers={"Authorization": "Bearer " + token["access_token"]},
    )
    assert me.json()["data"]["username"] == "private_pat"


def test_consent_page_escapes_persona_text(page: Page, x_sandbox: SandboxControl) -> None:
    x_sandbox.add_personas({"screen_name": "mallory", "name": "<img src=x onerror=alert(1)>"})
    session = start_oauth1(x_sandbox)
    page.goto(session.authorization_url(x_sandbox.base_url + "/oauth/authenticate"))
    assert page.get_by_text("<img src=x onerror=alert(1)>").is_visible()
    assert page.locator("label img").count() == 0


def test_avatar_loads_in_the_browser(page: Page, x_sandbox: SandboxControl) -> None:
    avatar = x_sandbox.personas()[0]["profile_image_url"]
    page.set_content(f'<img id="a" src="{avatar}">')
    page.wait_for_function("document.getElementById('a').complete")
    assert page.evaluate("document.getElementById('a').naturalWidth") > 0
