"""Two workers refreshing the same OAuth 2.0 token at once must not lose it.

X's refresh tokens are single-use: if both workers sent the same one, the second
exchange would fail and, worse, whichever answer was stored last could hold a
spent pair. accounts.tokens.refresh_token holds the row lock while it talks to X,
so the second worker waits and then finds the pair the first one stored.
"""

import threading
import time

import pytest
from django.db import connection, connections

from accounts.models import TokenKind, TokenStatus, XToken
from accounts.tokens import check_token, refresh_token, revoke_token
from tests.test_admin_support import (
    access_token_is_live,
    refresh_token_is_live,
    sandbox_report,
    sign_in,
    token_calls,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs real row locks between connections: run with DATABASE_URL=postgres://...",
)
def test_two_threads_refreshing_one_token_make_one_exchange_and_both_see_the_new_pair(
    settings, x_sandbox
):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    old_refresh = token.refresh_token
    # Slow X down so the second thread surely asks while the first is mid-exchange.
    x_sandbox.fault("/2/oauth2/token", delay_ms=500)
    start = threading.Barrier(2)
    seen: dict[str, tuple] = {}

    def worker(name: str) -> None:
        try:
            mine = XToken.objects.get(pk=token.pk)  # each worker has its own copy
            start.wait()
            outcome = refresh_token(mine)
            seen[name] = (outcome.ok, mine.access_token, mine.refresh_token)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    stored = XToken.objects.get(pk=token.pk)
    assert token_calls(x_sandbox, "/2/oauth2/token") == 1
    assert stored.refresh_token != old_refresh
    assert seen["a"] == seen["b"] == (True, stored.access_token, stored.refresh_token)
    assert refresh_token_is_live(x_sandbox, stored.refresh_token)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs real row locks between connections: run with DATABASE_URL=postgres://...",
)
def test_revoke_during_a_refresh_revokes_the_new_pair_at_x(settings, x_sandbox):
    """A revoke must not wipe the pair a concurrent refresh just stored without
    revoking it at X: that would leave a live grant nobody can revoke."""
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    x_sandbox.fault("/2/oauth2/token", delay_ms=800)
    refreshing = threading.Event()
    outcomes = {}

    def refresher() -> None:
        try:
            refreshing.set()
            mine = XToken.objects.get(pk=token.pk)
            outcomes["refresh"] = refresh_token(mine)
            outcomes["new_pair"] = (mine.access_token, mine.refresh_token)
        finally:
            connections.close_all()

    def revoker() -> None:
        try:
            mine = XToken.objects.get(pk=token.pk)  # read before the refresh commits
            refreshing.wait()
            time.sleep(0.3)  # the refresh now holds the row and is talking to X
            outcomes["revoke"] = revoke_token(mine)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refresher), threading.Thread(target=revoker)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert outcomes["refresh"].ok and outcomes["revoke"].ok
    stored = XToken.objects.get(pk=token.pk)
    assert stored.status == TokenStatus.REVOKED and stored.access_token == ""
    new_access, new_refresh = outcomes["new_pair"]
    assert new_access != token.access_token
    assert not access_token_is_live(x_sandbox, new_access), "the pair it stored is revoked"
    assert not refresh_token_is_live(x_sandbox, new_refresh)
    assert not any(
        refresh_token_is_live(x_sandbox, r["token"])
        for r in sandbox_report(x_sandbox)["oauth2_refresh_tokens"]
    ), "no refresh token of this account is left alive at X"


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs real row locks between connections: run with DATABASE_URL=postgres://...",
)
def test_a_check_finishing_after_a_refresh_keeps_the_new_pair(settings, x_sandbox):
    """A check holds a copy read before the refresh; saving that whole copy would put
    the spent pair back over the new one and lose the account."""
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    x_sandbox.fault("/2/users/me", delay_ms=800)
    checking = threading.Event()
    outcomes = {}

    def checker() -> None:
        try:
            mine = XToken.objects.select_related("profile").get(pk=token.pk)
            checking.set()
            outcomes["check"] = check_token(mine)
        finally:
            connections.close_all()

    def refresher() -> None:
        try:
            checking.wait()
            time.sleep(0.2)  # the check is now waiting for X
            outcomes["refresh"] = refresh_token(XToken.objects.get(pk=token.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=checker), threading.Thread(target=refresher)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert outcomes["check"].ok and outcomes["refresh"].ok
    stored = XToken.objects.get(pk=token.pk)
    assert stored.refresh_token != token.refresh_token
    assert refresh_token_is_live(x_sandbox, stored.refresh_token), "the account can refresh"
