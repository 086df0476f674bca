"""accounts.tokens against the X sandbox: every answer X can give, and nothing ever lost."""

import pytest

from accounts import x_client
from accounts.models import TokenKind, TokenStatus, XToken
from accounts.tokens import check_token, refresh_token, revoke_token
from accounts.x_client import XRateLimited
from tests.test_admin_support import (
    access_token_is_live,
    refresh_token_is_live,
    sign_in,
    token_calls,
)

pytestmark = pytest.mark.django_db

TOKEN_PATH = "/2/oauth2/token"
ME_PATH = "/2/users/me"
VERIFY_PATH = "/1.1/account/verify_credentials.json"


@pytest.fixture(autouse=True)
def site_uses_sandbox(settings, x_sandbox):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    settings.X_HTTP_TIMEOUT = 2
    return x_sandbox


def reloaded(token: XToken) -> XToken:
    return XToken.objects.select_related("profile").get(pk=token.pk)


# check ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [TokenKind.OAUTH1, TokenKind.OAUTH2])
def test_check_updates_the_profile_from_x(x_sandbox, kind):
    token = sign_in(x_sandbox, "ada_lovelace", kind)
    x_sandbox.update_persona("ada_lovelace", name="Augusta Ada King", location="London")

    outcome = check_token(token)

    assert outcome.ok and outcome.http_status == 200
    stored = reloaded(token)
    assert stored.status == TokenStatus.ACTIVE and stored.last_checked_at is not None
    assert stored.profile.name == "Augusta Ada King"
    assert stored.profile.location == "London"


def test_check_keeps_empty_fields_empty(x_sandbox):
    token = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    profile = token.profile
    profile.location, profile.url = "Stale place", "https://stale.example"
    profile.save()

    assert check_token(token).ok

    stored = reloaded(token).profile
    assert (stored.location, stored.url) == ("", "")


@pytest.mark.parametrize("kind", [TokenKind.OAUTH1, TokenKind.OAUTH2])
def test_token_the_user_revoked_at_x_is_marked_invalid_and_the_profile_kept(x_sandbox, kind):
    token = sign_in(x_sandbox, "ada_lovelace", kind)
    secret = token.access_token
    x_sandbox.revoke(secret)

    outcome = check_token(token)

    assert not outcome.ok and outcome.http_status == 401
    stored = reloaded(token)
    assert stored.status == TokenStatus.INVALID
    assert stored.access_token == secret, "an invalid token is kept; only revoke deletes it"
    assert stored.profile.screen_name == "ada_lovelace"


def test_oauth1_code_89_is_reported_in_x_words(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH1)
    x_sandbox.revoke(token.access_token)

    outcome = check_token(token)

    assert "Invalid or expired token" in outcome.message
    assert reloaded(token).last_error == outcome.message


@pytest.mark.parametrize(
    ("kind", "path"), [(TokenKind.OAUTH1, VERIFY_PATH), (TokenKind.OAUTH2, ME_PATH)]
)
def test_x_down_marks_error_and_changes_nothing_else(x_sandbox, kind, path):
    token = sign_in(x_sandbox, "ada_lovelace", kind)
    before = reloaded(token)
    x_sandbox.fault(path, status=503, times=3)  # the first try and both retries

    outcome = check_token(token)

    assert not outcome.ok and outcome.http_status == 503
    stored = reloaded(token)
    assert stored.status == TokenStatus.ERROR
    assert "503" in stored.last_error
    assert stored.access_token == before.access_token
    assert stored.profile.name == before.profile.name
    x_sandbox.clear_faults()
    assert check_token(stored).ok, "the kept token still works once X is back"


def test_timeout_and_dropped_connection_mark_error(x_sandbox, settings):
    settings.X_HTTP_TIMEOUT = 0.3
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    x_sandbox.fault(ME_PATH, delay_ms=1000, times=3)
    assert "did not answer in time" in check_token(token).message
    x_sandbox.clear_faults()
    x_sandbox.fault(ME_PATH, drop=True, times=3)
    assert "could not reach X" in check_token(token).message
    assert reloaded(token).status == TokenStatus.ERROR


def test_rate_limit_is_raised_to_the_caller_with_the_reset_time(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    x_sandbox.config(rate_limit=1)
    assert check_token(token).ok
    with pytest.raises(XRateLimited) as raised:
        check_token(token)
    assert 0 < raised.value.seconds_to_wait() <= 15 * 60
    assert reloaded(token).status == TokenStatus.ACTIVE, "a 429 says nothing about the token"


def test_revoked_token_is_refused_without_calling_x(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    assert revoke_token(token).ok
    calls_before = len(x_sandbox.calls())

    outcome = check_token(reloaded(token))

    assert not outcome.ok and "sign in again" in outcome.message
    assert len(x_sandbox.calls()) == calls_before


# refresh ----------------------------------------------------------------------------


def test_refresh_stores_the_rotated_pair(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    old_access, old_refresh = token.access_token, token.refresh_token

    outcome = refresh_token(token)

    assert outcome.ok
    stored = reloaded(token)
    assert stored.access_token != old_access and stored.refresh_token != old_refresh
    assert stored.token_hint == stored.access_token[-4:]
    assert stored.last_refreshed_at is not None
    assert not refresh_token_is_live(x_sandbox, old_refresh)
    assert refresh_token_is_live(x_sandbox, stored.refresh_token)
    assert (token.access_token, token.refresh_token) == (stored.access_token, stored.refresh_token)


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 500}, {"drop": True}])
def test_failed_refresh_keeps_the_old_pair_usable(x_sandbox, fault):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    old_refresh = token.refresh_token
    x_sandbox.fault(TOKEN_PATH, **fault)

    outcome = refresh_token(token)

    assert not outcome.ok
    stored = reloaded(token)
    assert stored.status == TokenStatus.ERROR
    assert stored.refresh_token == old_refresh
    assert token_calls(x_sandbox, TOKEN_PATH) == 1, "a refresh grant is never retried blindly"
    assert refresh_token_is_live(x_sandbox, old_refresh)
    assert refresh_token(stored).ok, "the kept refresh token still works afterwards"


def test_spent_refresh_token_marks_invalid_and_keeps_everything(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    x_client.refresh_oauth2(token.refresh_token)  # spent elsewhere (a leaked copy, X's bug)

    outcome = refresh_token(token)

    assert not outcome.ok and outcome.http_status == 400
    stored = reloaded(token)
    assert stored.status == TokenStatus.INVALID
    assert "invalid" in stored.last_error
    assert stored.access_token == token.access_token, "the stored pair is kept as it was"
    assert stored.profile.screen_name == "ada_lovelace"


def test_refresh_without_offline_access_explains_itself(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2, scope="tweet.read users.read")

    outcome = refresh_token(token)

    assert not outcome.ok and "offline.access" in outcome.message
    assert token_calls(x_sandbox, TOKEN_PATH) == 0
    assert reloaded(token).status == TokenStatus.ACTIVE


def test_oauth1_refresh_reverifies_and_refreshes_the_profile(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH1)
    x_sandbox.update_persona("ada_lovelace", followers_count=4242)

    assert refresh_token(token).ok

    assert reloaded(token).profile.followers_count == 4242
    assert token_calls(x_sandbox, VERIFY_PATH) == 1


# revoke -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [TokenKind.OAUTH1, TokenKind.OAUTH2])
def test_revoke_kills_the_token_at_x_then_wipes_it_here(x_sandbox, kind):
    token = sign_in(x_sandbox, "ada_lovelace", kind)
    secret = token.access_token

    outcome = revoke_token(token)

    assert outcome.ok and "Revoked at X" in outcome.message
    assert not access_token_is_live(x_sandbox, secret)
    stored = reloaded(token)
    assert stored.status == TokenStatus.REVOKED
    assert (stored.access_token, stored.token_secret, stored.refresh_token) == ("", "", "")
    assert stored.profile.screen_name == "ada_lovelace"


def test_revoke_of_a_token_x_already_dropped_still_wipes_it(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH1)
    x_sandbox.revoke(token.access_token)

    outcome = revoke_token(token)

    assert outcome.ok and "no longer knew" in outcome.message
    assert reloaded(token).status == TokenStatus.REVOKED


def test_revoke_while_x_is_down_keeps_the_token_for_a_retry(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    secret = token.access_token
    x_sandbox.fault("/2/oauth2/revoke", status=503, times=3)

    outcome = revoke_token(token)

    assert not outcome.ok
    stored = reloaded(token)
    assert stored.status == TokenStatus.ERROR and stored.access_token == secret
    x_sandbox.clear_faults()
    assert revoke_token(stored).ok
    assert not access_token_is_live(x_sandbox, secret)
