"""accounts.x_client against the X sandbox over real HTTP: answers, errors, retries."""

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from accounts import x_client
from accounts.x_client import XError, XRateLimited, XTokenInvalid, XUnavailable
from tests.sandbox import SandboxControl, SandboxProcess


@pytest.fixture
def x(x_sandbox, settings):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    settings.X_CONSUMER_KEY, settings.X_CONSUMER_SECRET = (
        "sandbox-consumer-key",
        "sandbox-consumer-secret",
    )
    settings.X_CLIENT_ID, settings.X_CLIENT_SECRET = "sandbox-client-id", "sandbox-client-secret"
    settings.X_HTTP_TIMEOUT = 2
    return x_sandbox


def paths_called(sandbox) -> list[str]:
    return [call["path"] for call in sandbox.calls()]


def test_verify_credentials_returns_the_person(x):
    [token] = x.issue_tokens("ada_lovelace", "oauth1")
    user = x_client.verify_credentials(token["oauth_token"], token["oauth_token_secret"])
    assert user.id == "1000000001"
    assert user.screen_name == "ada_lovelace"
    assert user.verified is True
    assert user.profile_image_url.endswith("_normal.jpg")
    assert user.created_at is not None and user.created_at.tzinfo is not None


def test_v1_and_v2_describe_the_same_person_alike(x):
    [oauth1] = x.issue_tokens("grace_hopper", "oauth1")
    [oauth2] = x.issue_tokens("grace_hopper", "oauth2")
    v1 = x_client.verify_credentials(oauth1["oauth_token"], oauth1["oauth_token_secret"])
    v2 = x_client.get_me(oauth2["access_token"])
    assert v1.id == v2.id and v1.screen_name == v2.screen_name
    assert (v1.followers_count, v1.following_count) == (v2.followers_count, v2.following_count)
    assert v1.location == v2.location == ""
    assert v1.url == v2.url == ""
    assert v1.created_at == v2.created_at


def test_wrong_consumer_secret_is_reported_not_crashed(x, settings):
    [token] = x.issue_tokens("ada_lovelace", "oauth1")
    settings.X_CONSUMER_SECRET = "not-the-secret"
    with pytest.raises(XTokenInvalid) as caught:
        x_client.verify_credentials(token["oauth_token"], token["oauth_token_secret"])
    assert caught.value.http_status == 401
    assert caught.value.code == 32


def test_refresh_rotates_and_the_old_refresh_token_is_spent(x):
    [grant] = x.issue_tokens("ada_lovelace", "oauth2")
    new = x_client.refresh_oauth2(grant["refresh_token"])
    assert new.access_token != grant["access_token"]
    assert new.refresh_token and new.refresh_token != grant["refresh_token"]
    assert new.expires_in == 7200
    assert "offline.access" in new.scope.split()
    with pytest.raises(XTokenInvalid, match="Value passed for the token was invalid"):
        x_client.refresh_oauth2(grant["refresh_token"])


def test_revoked_tokens_are_invalid_in_both_apis(x):
    [oauth1] = x.issue_tokens("ada_lovelace", "oauth1")
    [oauth2] = x.issue_tokens("ada_lovelace", "oauth2")
    x_client.revoke_oauth1(oauth1["oauth_token"], oauth1["oauth_token_secret"])
    x_client.revoke_oauth2(oauth2["access_token"])
    with pytest.raises(XTokenInvalid) as v1_error:
        x_client.verify_credentials(oauth1["oauth_token"], oauth1["oauth_token_secret"])
    assert v1_error.value.code == 89
    with pytest.raises(XTokenInvalid) as v2_error:
        x_client.get_me(oauth2["access_token"])
    assert v2_error.value.http_status == 401


def test_server_errors_on_reads_are_retried(x):
    [grant] = x.issue_tokens("ada_lovelace", "oauth2")
    x.fault("/2/users/me", status=503, times=2)
    assert x_client.get_me(grant["access_token"]).screen_name == "ada_lovelace"
    assert paths_called(x).count("/2/users/me") == 3


def test_persistent_server_errors_raise_unavailable(x, settings):
    settings.X_HTTP_RETRIES = 1
    [grant] = x.issue_tokens("ada_lovelace", "oauth2")
    x.fault("/2/users/me", status=503, times=5)
    with pytest.raises(XUnavailable) as caught:
        x_client.get_me(grant["access_token"])
    assert caught.value.http_status == 503
    assert grant["access_token"] not in str(caught.value)


def test_refresh_is_never_retried_because_refresh_tokens_are_single_use(x):
    [grant] = x.issue_tokens("ada_lovelace", "oauth2")
    x.fault("/2/oauth2/token", status=503, times=1)
    with pytest.raises(XUnavailable):
        x_client.refresh_oauth2(grant["refresh_token"])
    assert paths_called(x).count("/2/oauth2/token") == 1
    # The fault did not spend the refresh token; it still works.
    assert x_client.refresh_oauth2(grant["refresh_token"]).access_token


def test_dropped_connection_and_timeout_are_unavailable(x, settings):
    settings.X_HTTP_RETRIES = 0
    settings.X_HTTP_TIMEOUT = 0.5
    [grant] = x.issue_tokens("ada_lovelace", "oauth2")
    x.fault("/2/users/me", drop=True)
    with pytest.raises(XUnavailable, match="could not reach X"):
        x_client.get_me(grant["access_token"])
    x.fault("/2/users/me", delay_ms=1500)
    with pytest.raises(XUnavailable, match="did not answer in time"):
        x_client.get_me(grant["access_token"])


def test_rate_limit_raises_with_the_reset_time(x):
    x.config(rate_limit=2)
    [grant] = x.issue_tokens("ada_lovelace", "oauth2")
    x_client.get_me(grant["access_token"])
    x_client.get_me(grant["access_token"])
    with pytest.raises(XRateLimited) as caught:
        x_client.get_me(grant["access_token"])
    assert caught.value.http_status == 429
    assert caught.value.reset_at > datetime.now(UTC)
    assert 0 < caught.value.seconds_to_wait() <= 15 * 60 + 5


def test_other_client_errors_are_plain_x_errors(x):
    x.fault("/2/users/me", status=400, times=1)
    with pytest.raises(XError) as caught:
        x_client.get_me("whatever")
    assert caught.value.http_status == 400
    assert not isinstance(caught.value, XTokenInvalid | XUnavailable)


def test_a_kept_alive_connection_x_closed_is_replaced_not_failed(settings, x):
    """X restarts between two calls (a deploy at X): the second call still works, sent once."""
    settings.X_HTTP_RETRIES = 0
    first = SandboxProcess(rate_limit=10**6).start()
    port = urlsplit(first.base_url).port
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = first.base_url
    try:
        [token] = SandboxControl(first.base_url).issue_tokens("ada_lovelace", "oauth1")
        assert x_client.verify_credentials(token["oauth_token"], token["oauth_token_secret"])
    finally:
        first.stop()
    with SandboxProcess(rate_limit=10**6, port=port) as second:
        control = SandboxControl(second.base_url)
        [token] = control.issue_tokens("ada_lovelace", "oauth1")
        calls_before = len(control.calls())
        user = x_client.verify_credentials(token["oauth_token"], token["oauth_token_secret"])
        assert user.screen_name == "ada_lovelace"
        assert len(control.calls()) == calls_before + 1
