"""A refresh X answered after X_HTTP_TIMEOUT: a pair the site never received (issue 14, point 4).

X spends the old refresh token and issues a new pair; the answer carrying it
arrives after the site gave up. Checked at the sandbox: the old refresh token is
spent there and a live pair exists that the site does not hold. The token must say
so at once ("needs a new sign-in"), on the dashboard too, and nothing may later
pretend it works or was refreshed.
"""

import re

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import TokenKind, TokenStatus, XToken
from accounts.tokens import check_token, refresh_token, revoke_token
from tests.test_admin_support import (
    access_token_is_live,
    refresh_token_is_live,
    sandbox_report,
    sign_in,
    token_calls,
)

pytestmark = pytest.mark.django_db

TOKEN_PATH = "/2/oauth2/token"


@pytest.fixture(autouse=True)
def site_uses_sandbox(settings, x_sandbox):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    settings.X_HTTP_TIMEOUT = 0.5
    cache.clear()
    return x_sandbox


def reloaded(token: XToken) -> XToken:
    return XToken.objects.select_related("profile").get(pk=token.pk)


def lose_a_refresh_answer(x_sandbox) -> tuple[XToken, str]:
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    old_refresh = token.refresh_token
    x_sandbox.fault(TOKEN_PATH, late_ms=1500)
    outcome = refresh_token(token)
    assert not outcome.ok
    assert outcome.status == TokenStatus.NEEDS_SIGN_IN
    assert "sign in again" in outcome.message
    return reloaded(token), old_refresh


def test_refresh_answered_too_late_marks_the_token_needs_sign_in(x_sandbox):
    token, old_refresh = lose_a_refresh_answer(x_sandbox)

    assert token.status == TokenStatus.NEEDS_SIGN_IN
    assert "sign in again" in token.last_error
    # The site kept what it had: the old pair, still undecided, never a blank.
    assert token.refresh_token == old_refresh
    # At X: the refresh token the site holds is spent, and a pair the site never saw lives.
    refresh_tokens = sandbox_report(x_sandbox)["oauth2_refresh_tokens"]
    spent = {r["token"]: r["spent"] for r in refresh_tokens}
    assert spent[old_refresh] is True
    unseen = [t for t, is_spent in spent.items() if not is_spent]
    assert len(unseen) == 1 and unseen[0] != token.refresh_token


def test_a_token_needing_sign_in_is_neither_refreshed_nor_checked_as_working(x_sandbox):
    token, _ = lose_a_refresh_answer(x_sandbox)
    calls_before = token_calls(x_sandbox, TOKEN_PATH)

    again = refresh_token(token)
    checked = check_token(token)

    # Today's code refreshes again (spent: "invalid"), or a check of the old access
    # token (still answering until it expires) says "active"; both hide what happened.
    assert (again.ok, again.status) == (False, TokenStatus.NEEDS_SIGN_IN)
    assert (checked.ok, checked.status) == (False, TokenStatus.NEEDS_SIGN_IN)
    assert token_calls(x_sandbox, TOKEN_PATH) == calls_before
    assert reloaded(token).status == TokenStatus.NEEDS_SIGN_IN


def test_staff_see_and_count_tokens_needing_sign_in(x_sandbox, admin_client):
    token, _ = lose_a_refresh_answer(x_sandbox)

    html = admin_client.get("/admin/").content.decode()
    match = re.search(
        r'<a href="([^"]+)">\s*<span class="dash-count">(\d+)</span>'
        r' <span class="dash-label">Needs a new sign-in<',
        html,
    )
    assert match and match.group(2) == "1"
    listing = admin_client.get(match.group(1).replace("&amp;", "&"))
    assert listing.context["cl"].result_count == 1
    change = admin_client.get(f"/admin/accounts/xtoken/{token.pk}/change/")
    assert "Needs a new sign-in" in change.content.decode()


def test_a_refresh_that_never_reached_x_is_only_an_error(x_sandbox, settings):
    """Nothing was sent (no connection to X): nothing can have been replaced."""
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    settings.X_API_BASE_URL = "http://10.255.255.1:9"  # never answers a connect

    outcome = refresh_token(token)

    assert reloaded(token).status == TokenStatus.ERROR
    assert outcome.status == TokenStatus.ERROR


def test_revoking_a_token_whose_refresh_answer_was_lost_never_says_revoked(x_sandbox):
    token, old_refresh = lose_a_refresh_answer(x_sandbox)
    old_access = token.access_token

    outcome = revoke_token(token)
    again = revoke_token(reloaded(token))

    # Everything the site held is revoked at X...
    assert not access_token_is_live(x_sandbox, old_access)
    assert not refresh_token_is_live(x_sandbox, old_refresh)
    # ...but the pair X issued in the lost answer is still alive there, so no "revoked".
    assert any(
        not (r["spent"] or r["revoked"])
        for r in sandbox_report(x_sandbox)["oauth2_refresh_tokens"]
    )
    for result in (outcome, again):
        assert result.status == TokenStatus.NEEDS_SIGN_IN
        assert "only the person can end it at X" in result.message
    stored = reloaded(token)
    assert stored.status == TokenStatus.NEEDS_SIGN_IN and not stored.access_token


def test_disconnecting_after_a_lost_refresh_tells_the_person_what_only_x_can_end(x_sandbox):
    token, _ = lose_a_refresh_answer(x_sandbox)
    client = Client()
    client.force_login(token.profile.user)

    page = client.post("/account/disconnect/", follow=True).content.decode()

    assert "Connected apps" in page
    assert "we revoked our access at X" not in page
    assert not XToken.objects.filter(pk=token.pk).exists()
