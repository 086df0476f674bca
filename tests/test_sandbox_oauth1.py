"""The sandbox's OAuth 1.0a flow and v1.1 endpoints, driven by requests-oauthlib.

requests-oauthlib is an independent OAuth client: if it can complete the dance
and the sandbox rejects what X rejects, the sandbox is a fair stand-in for X.
"""

from __future__ import annotations

import re
import time

import pytest
import requests
from oauthlib.oauth1 import Client
from requests_oauthlib import OAuth1, OAuth1Session

from tests.sandbox import SandboxControl, SandboxProcess, TimeoutSession

KEY, SECRET = "sandbox-consumer-key", "sandbox-consumer-secret"
CALLBACK = "http://127.0.0.1:8000/accounts/x/callback/?next=%2Fhome"
VERIFY = "/1.1/account/verify_credentials.json"
http = TimeoutSession()
BAD_VERIFIER = "Error processing your OAuth request: Invalid oauth_verifier parameter"


def request_token(base: str) -> OAuth1Session:
    session = OAuth1Session(KEY, SECRET, callback_uri=CALLBACK)
    session.fetch_request_token(base + "/oauth/request_token")
    return session


def consent(base: str, token: str, persona: str = "ada_lovelace", decision: str = "allow") -> str:
    """Post the consent form like a browser and return the callback it redirects to."""
    response = http.post(
        f"{base}/oauth/authenticate?oauth_token={token}",
        data={"persona": persona, "decision": decision},
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def sign_in(base: str, persona: str = "ada_lovelace") -> dict[str, str]:
    session = request_token(base)
    callback = consent(base, session.token["oauth_token"], persona)
    session.parse_authorization_response(callback)
    return session.fetch_access_token(base + "/oauth/access_token")


def user_auth(tokens: dict[str, str]) -> OAuth1:
    return OAuth1(KEY, SECRET, tokens["oauth_token"], tokens["oauth_token_secret"])


def error_code(response: requests.Response) -> int:
    return response.json()["errors"][0]["code"]


def test_full_dance_returns_the_user_object(x_sandbox: SandboxControl) -> None:
    base = x_sandbox.base_url
    session = OAuth1Session(KEY, SECRET, callback_uri=CALLBACK)
    fetched = session.fetch_request_token(base + "/oauth/request_token")
    assert fetched["oauth_callback_confirmed"] == "true"
    page = http.get(f"{base}/oauth/authenticate?oauth_token={session.token['oauth_token']}")
    assert "Authorize app" in page.text and "@ada_lovelace" in page.text

    callback = consent(base, session.token["oauth_token"])
    assert callback.startswith("http://127.0.0.1:8000/accounts/x/callback/?next=%2Fhome&")
    session.parse_authorization_response(callback)
    tokens = session.fetch_access_token(base + "/oauth/access_token")
    assert tokens["oauth_token"].startswith("1000000001-")
    assert tokens["user_id"] == "1000000001" and tokens["screen_name"] == "ada_lovelace"

    response = http.get(
        base + VERIFY,
        params={"include_email": "true", "skip_status": "true"},
        auth=user_auth(tokens),
    )
    assert response.status_code == 200
    user = response.json()
    assert user["id"] == 1000000001 and user["id_str"] == "1000000001"
    assert user["screen_name"] == "ada_lovelace" and user["email"] == "ada@example.com"
    assert re.fullmatch(r"\w{3} \w{3} \d\d \d\d:\d\d:\d\d \+0000 \d{4}", user["created_at"])
    assert user["profile_image_url_https"].endswith("_normal.jpg")
    avatar = http.get(user["profile_image_url_https"])
    assert avatar.headers["Content-Type"] == "image/jpeg" and avatar.content[:2] == b"\xff\xd8"


def test_email_only_when_asked(x_sandbox: SandboxControl) -> None:
    tokens = sign_in(x_sandbox.base_url)
    user = http.get(x_sandbox.base_url + VERIFY, auth=user_auth(tokens)).json()
    assert "email" not in user


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("grace_hopper", {"location": "", "url": None}),
        ("private_pat", {"protected": True}),
    ],
)
def test_edge_case_personas(x_sandbox: SandboxControl, persona: str, expected: dict) -> None:
    tokens = sign_in(x_sandbox.base_url, persona)
    user = http.get(x_sandbox.base_url + VERIFY, auth=user_auth(tokens)).json()
    assert {name: user[name] for name in expected} == expected


def test_formula_persona_description_starts_with_equals(x_sandbox: SandboxControl) -> None:
    tokens = sign_in(x_sandbox.base_url, "formula_fred")
    user = http.get(x_sandbox.base_url + VERIFY, auth=user_auth(tokens)).json()
    assert user["description"].startswith("=")


def test_unapproved_callback_gets_403_with_code_415(x_sandbox: SandboxControl) -> None:
    auth = OAuth1(KEY, SECRET, callback_uri="https://evil.example/callback")
    response = http.post(x_sandbox.base_url + "/oauth/request_token", auth=auth)
    assert response.status_code == 403
    assert '<error code="415">Callback URL not approved' in response.text


def test_userinfo_trick_is_not_an_approved_callback(x_sandbox: SandboxControl) -> None:
    auth = OAuth1(KEY, SECRET, callback_uri="http://127.0.0.1:80@evil.example/")
    response = http.post(x_sandbox.base_url + "/oauth/request_token", auth=auth)
    assert response.status_code == 403


@pytest.mark.parametrize(("key", "secret"), [(KEY, "wrong-secret"), ("unknown-key", SECRET)])
def test_bad_signature_or_unknown_consumer_is_code_32(
    x_sandbox: SandboxControl, key: str, secret: str
) -> None:
    auth = OAuth1(key, secret, callback_uri=CALLBACK)
    response = http.post(x_sandbox.base_url + "/oauth/request_token", auth=auth)
    assert response.status_code == 401
    assert response.json() == {"errors": [{"code": 32, "message": "Could not authenticate you."}]}


def test_signature_covers_the_exact_url(x_sandbox: SandboxControl) -> None:
    tokens = sign_in(x_sandbox.base_url)
    client = Client(KEY, SECRET, tokens["oauth_token"], tokens["oauth_token_secret"])
    signed_for = x_sandbox.base_url.replace("127.0.0.1", "localhost") + VERIFY
    _, headers, _ = client.sign(signed_for)
    response = http.get(x_sandbox.base_url + VERIFY, headers=headers)
    assert response.status_code == 401 and error_code(response) == 32


def test_signature_covers_query_parameters(x_sandbox: SandboxControl) -> None:
    tokens = sign_in(x_sandbox.base_url)
    client = Client(KEY, SECRET, tokens["oauth_token"], tokens["oauth_token_secret"])
    _, headers, _ = client.sign(x_sandbox.base_url + VERIFY + "?include_email=false")
    response = http.get(x_sandbox.base_url + VERIFY + "?include_email=true", headers=headers)
    assert response.status_code == 401 and error_code(response) == 32


def test_replayed_nonce_is_rejected(x_sandbox: SandboxControl) -> None:
    tokens = sign_in(x_sandbox.base_url)
    client = Client(KEY, SECRET, tokens["oauth_token"], tokens["oauth_token_secret"])
    url, headers, _ = client.sign(x_sandbox.base_url + VERIFY)
    assert http.get(url, headers=headers).status_code == 200
    replay = http.get(url, headers=headers)
    assert replay.status_code == 401 and error_code(replay) == 32


def test_old_timestamp_is_code_135(x_sandbox: SandboxControl) -> None:
    tokens = sign_in(x_sandbox.base_url)
    client = Client(
        KEY,
        SECRET,
        tokens["oauth_token"],
        tokens["oauth_token_secret"],
        timestamp=str(int(time.time()) - 600),
    )
    url, headers, _ = client.sign(x_sandbox.base_url + VERIFY)
    response = http.get(url, headers=headers)
    assert response.status_code == 401 and error_code(response) == 135


def test_advancing_the_sandbox_clock_does_not_break_signing(x_sandbox: SandboxControl) -> None:
    tokens = sign_in(x_sandbox.base_url)
    x_sandbox.advance_clock(30 * 24 * 3600)
    response = http.get(x_sandbox.base_url + VERIFY, auth=user_auth(tokens))
    assert response.status_code == 200, "OAuth 1.0a access tokens never expire"


def test_verifier_is_single_use(x_sandbox: SandboxControl) -> None:
    base = x_sandbox.base_url
    session = request_token(base)
    session.parse_authorization_response(consent(base, session.token["oauth_token"]))
    verifier_session = OAuth1Session(
        KEY,
        SECRET,
        session.token["oauth_token"],
        session.token["oauth_token_secret"],
        verifier=session.auth.client.verifier,
    )
    session.fetch_access_token(base + "/oauth/access_token")
    reused = verifier_session.post(base + "/oauth/access_token")
    assert reused.status_code == 401 and reused.text == BAD_VERIFIER


def test_wrong_verifier_is_rejected(x_sandbox: SandboxControl) -> None:
    base = x_sandbox.base_url
    session = request_token(base)
    consent(base, session.token["oauth_token"])
    token = session.token
    forged = OAuth1Session(
        KEY, SECRET, token["oauth_token"], token["oauth_token_secret"], verifier="guessed"
    )
    response = forged.post(base + "/oauth/access_token")
    assert response.status_code == 401 and response.text == BAD_VERIFIER


def test_verifier_in_the_body_works(x_sandbox: SandboxControl) -> None:
    base = x_sandbox.base_url
    session = request_token(base)
    callback = consent(base, session.token["oauth_token"])
    verifier = re.search(r"oauth_verifier=([^&]+)", callback).group(1)
    token = session.token
    auth = OAuth1(KEY, SECRET, token["oauth_token"], token["oauth_token_secret"])
    response = http.post(
        base + "/oauth/access_token", data={"oauth_verifier": verifier}, auth=auth
    )
    assert response.status_code == 200 and "screen_name=ada_lovelace" in response.text


def test_cancel_redirects_with_denied_and_kills_the_request_token(
    x_sandbox: SandboxControl,
) -> None:
    base = x_sandbox.base_url
    session = request_token(base)
    token = session.token["oauth_token"]
    callback = consent(base, token, decision="deny")
    assert callback.endswith(f"&denied={token}")
    again = http.get(f"{base}/oauth/authenticate?oauth_token={token}")
    assert again.status_code == 400


def test_invalidate_token_then_code_89(x_sandbox: SandboxControl) -> None:
    tokens = sign_in(x_sandbox.base_url)
    auth = user_auth(tokens)
    response = http.post(x_sandbox.base_url + "/1.1/oauth/invalidate_token.json", auth=auth)
    assert response.json() == {"access_token": tokens["oauth_token"]}
    after = http.get(x_sandbox.base_url + VERIFY, auth=auth)
    assert after.status_code == 401
    assert after.json() == {"errors": [{"code": 89, "message": "Invalid or expired token."}]}


def test_user_revoking_the_app_gives_code_89(x_sandbox: SandboxControl) -> None:
    tokens = sign_in(x_sandbox.base_url)
    x_sandbox.revoke(tokens["oauth_token"])
    response = http.get(x_sandbox.base_url + VERIFY, auth=user_auth(tokens))
    assert response.status_code == 401 and error_code(response) == 89


def test_rate_limit_is_75_per_window_with_headers(x_sandbox: SandboxControl) -> None:
    tokens = sign_in(x_sandbox.base_url)
    signed = TimeoutSession()
    signed.auth = user_auth(tokens)
    remaining = [
        int(signed.get(x_sandbox.base_url + VERIFY).headers["x-rate-limit-remaining"])
        for _ in range(75)
    ]
    assert remaining == list(range(74, -1, -1))
    limited = signed.get(x_sandbox.base_url + VERIFY)
    assert limited.status_code == 429 and error_code(limited) == 88
    assert limited.headers["x-rate-limit-limit"] == "75"
    assert int(limited.headers["x-rate-limit-reset"]) > time.time()

    x_sandbox.advance_clock(15 * 60)
    assert signed.get(x_sandbox.base_url + VERIFY).status_code == 200


def test_profile_changes_show_up_on_next_call(x_sandbox: SandboxControl) -> None:
    tokens = sign_in(x_sandbox.base_url)
    x_sandbox.update_persona("ada_lovelace", name="Countess Lovelace", location="")
    user = http.get(x_sandbox.base_url + VERIFY, auth=user_auth(tokens)).json()
    assert user["name"] == "Countess Lovelace" and user["location"] == ""


# A second grant ----------------------------------------------------------------------


def test_a_second_sign_in_gets_the_same_pair_as_at_x(x_sandbox: SandboxControl) -> None:
    first = sign_in(x_sandbox.base_url)
    second = sign_in(x_sandbox.base_url)
    assert (second["oauth_token"], second["oauth_token_secret"]) == (
        first["oauth_token"],
        first["oauth_token_secret"],
    )
    assert http.get(x_sandbox.base_url + VERIFY, auth=user_auth(second)).ok
    # Someone else signing in gets their own pair.
    other = sign_in(x_sandbox.base_url, "grace_hopper")
    assert other["oauth_token"] != first["oauth_token"]


def test_a_sign_in_after_the_pair_was_revoked_gets_a_new_one(x_sandbox: SandboxControl) -> None:
    first = sign_in(x_sandbox.base_url)
    http.post(x_sandbox.base_url + "/1.1/oauth/invalidate_token", auth=user_auth(first))
    second = sign_in(x_sandbox.base_url)
    assert second["oauth_token"] != first["oauth_token"]
    assert http.get(x_sandbox.base_url + VERIFY, auth=user_auth(second)).ok
    assert http.get(x_sandbox.base_url + VERIFY, auth=user_auth(first)).status_code == 401


def test_switch_to_a_new_pair_on_every_sign_in(x_sandbox: SandboxControl) -> None:
    assert x_sandbox.config()["oauth1_reuse_tokens"] is True
    assert x_sandbox.config(oauth1_reuse_tokens=False)["oauth1_reuse_tokens"] is False
    first = sign_in(x_sandbox.base_url)
    second = sign_in(x_sandbox.base_url)
    assert first["oauth_token"] != second["oauth_token"]
    # Both grants stay alive at X until each is revoked.
    assert http.get(x_sandbox.base_url + VERIFY, auth=user_auth(first)).ok
    assert http.get(x_sandbox.base_url + VERIFY, auth=user_auth(second)).ok
    x_sandbox.reset()
    assert x_sandbox.config()["oauth1_reuse_tokens"] is True


def test_command_line_switch_for_a_new_pair_on_every_sign_in() -> None:
    with SandboxProcess(oauth1_new_token_each_sign_in=True) as process:
        control = SandboxControl(process.base_url)
        assert control.config()["oauth1_reuse_tokens"] is False
        first, second = sign_in(process.base_url), sign_in(process.base_url)
        assert first["oauth_token"] != second["oauth_token"]
        control.reset()
        assert control.config()["oauth1_reuse_tokens"] is False
