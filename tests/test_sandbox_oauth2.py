"""The sandbox's OAuth 2.0 (PKCE, confidential client) flow and `GET /2/users/me`.

Driven by requests-oauthlib's OAuth2Session, an independent client, so the
sandbox is checked against someone else's reading of the protocol.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from tests.sandbox import SandboxControl, TimeoutSession

CLIENT_ID, CLIENT_SECRET = "sandbox-client-id", "sandbox-client-secret"
REDIRECT = "http://127.0.0.1:8000/accounts/x/callback/"
SCOPE = ["tweet.read", "users.read", "offline.access"]
ALL_FIELDS = (
    "created_at,description,location,profile_image_url,protected,public_metrics,url,verified"
)
BASIC = HTTPBasicAuth(CLIENT_ID, CLIENT_SECRET)
http = TimeoutSession()


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox speaks plain HTTP on loopback; oauthlib insists on HTTPS unless told."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def start(base: str, scope: list[str] = SCOPE) -> tuple[OAuth2Session, str]:
    """An OAuth2Session with PKCE S256 and the authorization URL it would send the user to."""
    session = OAuth2Session(CLIENT_ID, redirect_uri=REDIRECT, scope=scope, pkce="S256")
    url, _ = session.authorization_url(base + "/i/oauth2/authorize")
    return session, url


def decide(url: str, persona: str = "ada_lovelace", decision: str = "allow") -> str:
    response = http.post(
        url, data={"persona": persona, "decision": decision}, allow_redirects=False
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def sign_in(base: str, persona: str = "ada_lovelace", scope: list[str] = SCOPE) -> dict:
    session, url = start(base, scope)
    callback = decide(url, persona)
    return session.fetch_token(
        base + "/2/oauth2/token", authorization_response=callback, client_secret=CLIENT_SECRET
    )


def me(base: str, access_token: str, fields: str = ALL_FIELDS):
    return http.get(
        base + "/2/users/me",
        params={"user.fields": fields},
        headers={"Authorization": f"Bearer {access_token}"},
    )


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_full_dance_and_users_me(x_sandbox: SandboxControl) -> None:
    base = x_sandbox.base_url
    session, url = start(base)
    page = http.get(url)
    assert page.status_code == 200 and "Authorize app" in page.text

    callback = decide(url)
    assert callback.startswith(REDIRECT + "?")
    params = query_of(callback)
    assert params["state"] == query_of(url)["state"]
    token = session.fetch_token(
        base + "/2/oauth2/token", authorization_response=callback, client_secret=CLIENT_SECRET
    )
    assert token["token_type"] == "bearer" and token["expires_in"] == 7200
    assert token["scope"] == ["tweet.read", "users.read", "offline.access"]
    assert token["refresh_token"]

    response = me(base, token["access_token"])
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == "1000000001" and data["username"] == "ada_lovelace"
    assert data["created_at"].endswith("Z") and data["created_at"].startswith("2015-10-21T")
    assert set(data["public_metrics"]) == {
        "followers_count",
        "following_count",
        "tweet_count",
        "listed_count",
    }
    assert data["profile_image_url"].endswith("_normal.jpg")
    assert data["verified"] is True and data["location"] == "London, England"


def test_users_me_returns_only_the_fields_asked_for(x_sandbox: SandboxControl) -> None:
    token = sign_in(x_sandbox.base_url)
    assert set(me(x_sandbox.base_url, token["access_token"], "").json()["data"]) == {
        "id",
        "name",
        "username",
    }
    data = me(x_sandbox.base_url, token["access_token"], "protected").json()["data"]
    assert set(data) == {"id", "name", "username", "protected"}


def test_unknown_user_field_is_rejected(x_sandbox: SandboxControl) -> None:
    token = sign_in(x_sandbox.base_url)
    response = me(x_sandbox.base_url, token["access_token"], "pinned_tweet_idd")
    assert response.status_code == 400 and response.json()["title"] == "Invalid Request"


def test_empty_location_and_null_url_persona(x_sandbox: SandboxControl) -> None:
    token = sign_in(x_sandbox.base_url, "grace_hopper")
    data = me(x_sandbox.base_url, token["access_token"]).json()["data"]
    assert "location" not in data and data["url"] == ""


def test_no_refresh_token_without_offline_access(x_sandbox: SandboxControl) -> None:
    token = sign_in(x_sandbox.base_url, scope=["tweet.read", "users.read"])
    assert "refresh_token" not in token


def test_refresh_tokens_rotate_and_are_single_use(x_sandbox: SandboxControl) -> None:
    base = x_sandbox.base_url
    first = sign_in(base)
    session = OAuth2Session(CLIENT_ID, token=first)
    second = session.refresh_token(base + "/2/oauth2/token", auth=BASIC)
    assert second["refresh_token"] != first["refresh_token"]
    assert me(base, second["access_token"]).status_code == 200

    spent = http.post(
        base + "/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=BASIC,
    )
    assert spent.status_code == 400
    assert spent.json() == {
        "error": "invalid_request",
        "error_description": "Value passed for the token was invalid.",
    }


def exchange(base: str, **fields: str):
    data = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, **fields}
    return http.post(base + "/2/oauth2/token", data=data, auth=BASIC)


BAD_CODE = {
    "error": "invalid_request",
    "error_description": "Value passed for the authorization code was invalid.",
}


def test_pkce_mismatch_is_rejected(x_sandbox: SandboxControl) -> None:
    _, url = start(x_sandbox.base_url)
    code = query_of(decide(url))["code"]
    response = exchange(x_sandbox.base_url, code=code, code_verifier="not-the-verifier" * 3)
    assert response.status_code == 400 and response.json() == BAD_CODE


def test_code_is_single_use(x_sandbox: SandboxControl) -> None:
    session, url = start(x_sandbox.base_url)
    code = query_of(decide(url))["code"]
    verifier = session._code_verifier
    assert exchange(x_sandbox.base_url, code=code, code_verifier=verifier).status_code == 200
    again = exchange(x_sandbox.base_url, code=code, code_verifier=verifier)
    assert again.status_code == 400 and again.json() == BAD_CODE


def test_code_expires_after_30_seconds(x_sandbox: SandboxControl) -> None:
    session, url = start(x_sandbox.base_url)
    code = query_of(decide(url))["code"]
    x_sandbox.advance_clock(31)
    response = exchange(x_sandbox.base_url, code=code, code_verifier=session._code_verifier)
    assert response.status_code == 400 and response.json() == BAD_CODE


def test_redirect_uri_must_match_at_exchange(x_sandbox: SandboxControl) -> None:
    session, url = start(x_sandbox.base_url)
    code = query_of(decide(url))["code"]
    response = exchange(
        x_sandbox.base_url,
        code=code,
        code_verifier=session._code_verifier,
        redirect_uri="http://127.0.0.1:8000/other/",
    )
    assert response.status_code == 400


@pytest.mark.parametrize("method", ["plain", "s256"])
def test_plain_and_lowercase_challenge_methods(x_sandbox: SandboxControl, method: str) -> None:
    verifier = "v" * 50
    challenge = verifier
    if method == "s256":
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    session = OAuth2Session(CLIENT_ID, redirect_uri=REDIRECT, scope=SCOPE)
    url, _ = session.authorization_url(
        x_sandbox.base_url + "/i/oauth2/authorize",
        code_challenge=challenge,
        code_challenge_method=method,
    )
    code = query_of(decide(url))["code"]
    assert exchange(x_sandbox.base_url, code=code, code_verifier=verifier).status_code == 200


def test_token_endpoint_needs_basic_auth(x_sandbox: SandboxControl) -> None:
    response = http.post(
        x_sandbox.base_url + "/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": CLIENT_ID},
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": "Missing valid authorization header",
    }


def test_cancel_redirects_with_access_denied(x_sandbox: SandboxControl) -> None:
    _, url = start(x_sandbox.base_url)
    callback = decide(url, decision="deny")
    assert query_of(callback) == {"error": "access_denied", "state": query_of(url)["state"]}


@pytest.mark.parametrize(
    ("name", "value"),
    [("client_id", "someone-else"), ("redirect_uri", "https://evil.example/callback")],
)
def test_bad_client_or_redirect_shows_an_error_page(
    x_sandbox: SandboxControl, name: str, value: str
) -> None:
    _, url = start(x_sandbox.base_url)
    parts = urlsplit(url)
    params = query_of(url) | {name: value}
    response = http.get(f"{x_sandbox.base_url}{parts.path}", params=params, allow_redirects=False)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "text/html" in response.headers["Content-Type"]


def test_access_token_expires_after_two_hours(x_sandbox: SandboxControl) -> None:
    token = sign_in(x_sandbox.base_url)
    x_sandbox.advance_clock(7201)
    response = me(x_sandbox.base_url, token["access_token"])
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json() == {
        "title": "Unauthorized",
        "type": "about:blank",
        "status": 401,
        "detail": "Unauthorized",
    }


def test_revoke_endpoint(x_sandbox: SandboxControl) -> None:
    token = sign_in(x_sandbox.base_url)
    response = http.post(
        x_sandbox.base_url + "/2/oauth2/revoke",
        data={"token": token["access_token"], "token_type_hint": "access_token"},
        auth=BASIC,
    )
    assert response.json() == {"revoked": True}
    assert me(x_sandbox.base_url, token["access_token"]).status_code == 401


def test_user_revoking_the_app_kills_the_refresh_token_too(x_sandbox: SandboxControl) -> None:
    token = sign_in(x_sandbox.base_url)
    x_sandbox.revoke(token["access_token"])
    assert me(x_sandbox.base_url, token["access_token"]).status_code == 401
    refresh = http.post(
        x_sandbox.base_url + "/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=BASIC,
    )
    assert refresh.status_code == 400


def test_users_me_rate_limit(x_sandbox: SandboxControl) -> None:
    token = sign_in(x_sandbox.base_url)
    for _ in range(75):
        assert me(x_sandbox.base_url, token["access_token"]).status_code == 200
    limited = me(x_sandbox.base_url, token["access_token"])
    assert limited.status_code == 429
    assert limited.json()["title"] == "Too Many Requests"
    assert limited.headers["x-rate-limit-remaining"] == "0"


def test_profile_changes_show_up_on_next_call(x_sandbox: SandboxControl) -> None:
    token = sign_in(x_sandbox.base_url)
    x_sandbox.update_persona("ada_lovelace", description="Updated", followers_count=7)
    data = me(x_sandbox.base_url, token["access_token"]).json()["data"]
    assert data["description"] == "Updated" and data["public_metrics"]["followers_count"] == 7
