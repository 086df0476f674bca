"""Every way a sign-in with X can fail: a clear page, a fitting status, nobody signed in.

Each case drives the real sandbox (its consent form, its fault controls) and checks
what a person and an operator would notice: the page's title and "Try again" link,
the HTTP status, that no user, session login or token appeared, and one log line
naming the case with no secret in it.
"""

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import XToken
from tests.test_signin_flows import (
    OAUTH1,
    OAUTH2,
    consent,
    follow_callback,
    leaked,
    point_site_at,
    sign_in,
    signed_in_user,
    start,
)

User = get_user_model()


def assert_refused(response, status: int, title: str) -> None:
    html = response.content.decode()
    assert response.status_code == status, html
    assert title in html
    assert 'href="/login/">Try again</a>' in html


def assert_logged(caplog, case: str, secrets: list[str]) -> None:
    lines = [r.getMessage() for r in caplog.records if r.name == "accounts.signin"]
    assert any(f"X sign-in failed: {case} " in line for line in lines), lines
    assert leaked(secrets, caplog.text) == []


def assert_nobody_signed_in(client: Client, users_before: int = 0) -> None:
    assert signed_in_user(client) is None
    assert User.objects.count() == users_before
    assert XToken.objects.count() == 0


@pytest.fixture
def x(x_sandbox, settings):
    return point_site_at(x_sandbox, settings)


@pytest.fixture(autouse=True)
def capture_signin_log(caplog):
    caplog.set_level(logging.INFO, logger="accounts.signin")


# Refused before talking to X -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("provider", [OAUTH1, OAUTH2])
def test_cancel_at_x(x, caplog, provider):
    client = Client()
    response = follow_callback(client, consent(start(client, provider), decision="deny"))

    assert_refused(response, 403, "You cancelled the sign-in at X")
    assert_nobody_signed_in(client)
    assert_logged(caplog, "denied", x.secrets())


@pytest.mark.django_db
def test_oauth1_cancel_does_not_ask_x_for_a_token(x):
    client = Client()
    follow_callback(client, consent(start(client, OAUTH1), decision="deny"))
    assert "/oauth/access_token" not in [call["path"] for call in x.calls()]


@pytest.mark.django_db
@pytest.mark.parametrize("provider", [OAUTH1, OAUTH2])
def test_callback_in_a_browser_that_never_went_to_x(x, caplog, provider):
    callback = consent(start(Client(), provider))
    stranger = Client()

    response = follow_callback(stranger, callback)

    assert_refused(response, 400, "We didn&#x27;t send you to X")
    assert_nobody_signed_in(stranger)
    assert_logged(caplog, "missing", x.secrets())


@pytest.mark.django_db
@pytest.mark.parametrize("provider", [OAUTH1, OAUTH2])
def test_callback_for_a_sign_in_started_too_long_ago(x, caplog, provider):
    client = Client()
    callback = consent(start(client, provider))
    session = client.session
    session["socialaccount_states"] = {
        state_id: [state, started - 11 * 60, provider_id]
        for state_id, (state, started, provider_id) in session["socialaccount_states"].items()
    }
    session.save()

    response = follow_callback(client, callback)

    assert_refused(response, 400, "started too long ago")
    assert_nobody_signed_in(client)
    assert_logged(caplog, "missing", x.secrets())
    assert not {"/oauth/access_token", "/2/oauth2/token"} & {c["path"] for c in x.calls()}


@pytest.mark.django_db
@pytest.mark.parametrize("provider", [OAUTH1, OAUTH2])
def test_callback_for_someone_elses_sign_in(x, caplog, provider):
    """Login CSRF: an attacker's callback delivered to a victim who also started one."""
    victim, attacker = Client(), Client()
    start(victim, provider)
    attackers_callback = consent(start(attacker, provider), persona="formula_fred")

    response = follow_callback(victim, attackers_callback)

    assert_refused(response, 400, "The sign-in tokens do not match")
    assert_nobody_signed_in(victim)
    assert_logged(caplog, "mismatch", x.secrets())


@pytest.mark.django_db
@pytest.mark.parametrize("provider", [OAUTH1, OAUTH2])
def test_replayed_callback(x, caplog, provider):
    client = Client()
    callback = sign_in(client, provider)
    user = signed_in_user(client)
    token = XToken.objects.get()
    calls_before = len(x.calls())

    response = follow_callback(client, callback)

    assert_refused(response, 400, "This sign-in link was already used")
    assert signed_in_user(client) == user
    assert User.objects.count() == 1
    assert XToken.objects.get().access_token == token.access_token
    assert len(x.calls()) == calls_before
    assert_logged(caplog, "replayed", x.secrets())

    elsewhere = Client()
    assert_refused(follow_callback(elsewhere, callback), 400, "t send you to X")
    assert signed_in_user(elsewhere) is None


@pytest.mark.django_db
def test_oauth1_callback_with_a_forged_verifier_is_refused_by_x(x, caplog):
    client = Client()
    callback = consent(start(client, OAUTH1))
    forged = callback.replace("oauth_verifier=", "oauth_verifier=forged")

    response = follow_callback(client, forged)

    assert_refused(response, 502, "X could not complete the sign-in")
    assert_nobody_signed_in(client)
    assert_logged(caplog, "x_error", x.secrets())


@pytest.mark.django_db
def test_oauth2_authorization_error_from_x(x, caplog):
    """X can send the person back with an OAuth error instead of a code."""
    client = Client()
    state = parse_qs(urlsplit(start(client, OAUTH2)).query)["state"][0]

    response = client.get(
        "/accounts/twitter_oauth2/login/callback/", {"state": state, "error": "server_error"}
    )

    assert_refused(response, 502, "X could not complete the sign-in")
    assert_nobody_signed_in(client)
    assert_logged(caplog, "x_error", x.secrets())


# X failing -----------------------------------------------------------------------------

# (provider, path, fault, status, title, logged case); a fault on the request token
# shows up on the "Sign in with X" press, every other on the callback.
X_FAILURES = [
    (OAUTH1, "/oauth/request_token", {"status": 503}, 502, "X could not complete", "x_error"),
    (OAUTH1, "/oauth/access_token", {"status": 500}, 502, "X could not complete", "x_error"),
    (
        OAUTH1,
        "/1.1/account/verify_credentials.json",
        {"status": 503},
        502,
        "X could not complete",
        "x_error",
    ),
    (
        OAUTH1,
        "/1.1/account/verify_credentials.json",
        {"status": 429},
        503,
        "X asked us to slow down",
        "x_rate_limited",
    ),
    (OAUTH1, "/oauth/access_token", {"drop": True}, 502, "We could not reach X", "x_unreachable"),
    (OAUTH1, "/oauth/access_token", {"delay_ms": 1500}, 504, "X took too long", "x_timeout"),
    (OAUTH1, "/oauth/request_token", {"delay_ms": 1500}, 504, "X took too long", "x_timeout"),
    (OAUTH2, "/2/oauth2/token", {"status": 503}, 502, "X could not complete", "x_error"),
    (OAUTH2, "/2/oauth2/token", {"status": 400}, 502, "X could not complete", "x_error"),
    (OAUTH2, "/2/users/me", {"status": 429}, 503, "X asked us to slow down", "x_rate_limited"),
    (OAUTH2, "/2/users/me", {"drop": True}, 502, "We could not reach X", "x_unreachable"),
    (OAUTH2, "/2/oauth2/token", {"delay_ms": 1500}, 504, "X took too long", "x_timeout"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("provider", "path", "fault", "status", "title", "case"),
    X_FAILURES,
    ids=[f"{p}-{path}-{next(iter(f))}" for p, path, f, *_ in X_FAILURES],
)
def test_x_failing(x, caplog, settings, provider, path, fault, status, title, case):
    settings.X_HTTP_TIMEOUT = 0.5
    client = Client()
    x.fault(path, **fault)

    if path == "/oauth/request_token":
        response = client.post(f"/accounts/{provider}/login/")
    else:
        response = follow_callback(client, consent(start(client, provider)))

    assert_refused(response, status, title)
    assert_nobody_signed_in(client)
    assert_logged(caplog, case, x.secrets())
    assert not [key for key in dict(client.session.items()) if key.startswith("oauth_")]


@pytest.mark.django_db
def test_trying_again_after_x_failed_works(x):
    client = Client()
    x.fault("/oauth/access_token", status=503)
    follow_callback(client, consent(start(client, OAUTH1)))

    sign_in(client, OAUTH1)

    assert signed_in_user(client).x_profile.screen_name == "ada_lovelace"
