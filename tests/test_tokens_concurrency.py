"""Two workers refreshing the same OAuth 2.0 token at once must not lose it.

X's refresh tokens are single-use: if both workers sent the same one, the second
exchange would fail and, worse, whichever answer was stored last could hold a
spent pair. accounts.tokens.refresh_token holds the row lock while it talks to X,
so the second worker waits and then finds the pair the first one stored.
"""

import threading

import pytest
from django.db import connection, connections

from accounts.models import TokenKind, XToken
from accounts.tokens import refresh_token
from tests.test_admin_support import refresh_token_is_live, sign_in, token_calls

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
