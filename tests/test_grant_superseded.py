"""Grants a sign-in replaces or drops are ended at X (issue 14, point 3, and the sandbox's
second-grant behaviour).

Each test signs in through allauth against the sandbox over HTTP and then asks the
sandbox itself which grants still work. Transactional: the replaced grant is ended
once the new one is committed, as in production.
"""

from contextlib import contextmanager

import pytest
from django.db import connection
from django.test import Client

from accounts import x_client
from accounts.models import Profile, TokenKind, XToken
from accounts.x_client import XTokenInvalid
from tests.test_admin_support import access_token_is_live, refresh_token_is_live, sandbox_report
from tests.test_signin_flows import (
    OAUTH1,
    OAUTH2,
    consent,
    follow_callback,
    point_site_at,
    sign_in,
    signed_in_user,
    start,
)

pytestmark = pytest.mark.django_db(transaction=True)

VERIFY = "/1.1/account/verify_credentials.json"


@pytest.fixture
def x(x_sandbox, settings):
    return point_site_at(x_sandbox, settings)


def stored(kind: str) -> XToken:
    return XToken.objects.get(kind=kind)


def oauth1_works(token: XToken | dict) -> bool:
    access, secret = (
        (token.access_token, token.token_secret)
        if isinstance(token, XToken)
        else (token["token"], token["secret"])
    )
    try:
        x_client.verify_credentials(access, secret)
    except XTokenInvalid:
        return False
    return True


def live_grants_at_x(x) -> list[str]:
    """Every access or refresh token the sandbox would still honour."""
    report = sandbox_report(x)
    live = [r["token"] for r in report["oauth1_access_tokens"] if not r["revoked"]]
    live += [r["token"] for r in report["oauth2_access_tokens"] if not r["revoked"]]
    live += [
        r["token"] for r in report["oauth2_refresh_tokens"] if not (r["spent"] or r["revoked"])
    ]
    return live


# A second sign-in ---------------------------------------------------------------------


def test_oauth2_second_sign_in_ends_the_replaced_grant_at_x(x):
    sign_in(Client(), OAUTH2, "ada_lovelace")
    first = stored(TokenKind.OAUTH2)

    sign_in(Client(), OAUTH2, "ada_lovelace")

    second = stored(TokenKind.OAUTH2)
    assert second.access_token != first.access_token
    assert not access_token_is_live(x, first.access_token)
    assert not refresh_token_is_live(x, first.refresh_token)
    assert access_token_is_live(x, second.access_token)
    assert refresh_token_is_live(x, second.refresh_token)
    assert sorted(live_grants_at_x(x)) == sorted([second.access_token, second.refresh_token])


def test_oauth1_second_sign_in_with_a_new_pair_ends_the_old_pair_at_x(x):
    x.config(oauth1_reuse_tokens=False)
    sign_in(Client(), OAUTH1, "ada_lovelace")
    first = stored(TokenKind.OAUTH1)

    sign_in(Client(), OAUTH1, "ada_lovelace")

    second = stored(TokenKind.OAUTH1)
    assert second.access_token != first.access_token
    assert not oauth1_works(first)
    assert oauth1_works(second)
    assert live_grants_at_x(x) == [second.access_token]


def test_oauth1_second_sign_in_that_gets_the_same_pair_keeps_it_working(x):
    """X's own behaviour: the same pair comes back, and must not be revoked."""
    sign_in(Client(), OAUTH1, "ada_lovelace")
    first = stored(TokenKind.OAUTH1)

    sign_in(Client(), OAUTH1, "ada_lovelace")

    second = stored(TokenKind.OAUTH1)
    assert (second.access_token, second.token_secret) == (first.access_token, first.token_secret)
    assert oauth1_works(second)
    assert "/1.1/oauth/invalidate_token" not in {c["path"] for c in x.calls()}


def test_a_sign_in_with_the_other_method_keeps_both_grants(x):
    """One grant per method: OAuth 2.0 after OAuth 1.0a replaces nothing."""
    sign_in(Client(), OAUTH1, "ada_lovelace")
    sign_in(Client(), OAUTH2, "ada_lovelace")

    assert oauth1_works(stored(TokenKind.OAUTH1))
    assert access_token_is_live(x, stored(TokenKind.OAUTH2).access_token)


# Grants issued, then dropped -------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "path"), [(OAUTH2, "/2/users/me"), (OAUTH1, VERIFY)], ids=["oauth2", "oauth1"]
)
@pytest.mark.parametrize("fault", [{"status": 503}, {"drop": True}], ids=["503", "drop"])
def test_grant_issued_before_x_failed_to_say_who_signed_in_is_ended(x, provider, path, fault):
    client = Client()
    callback = consent(start(client, provider))
    x.fault(path, **fault)

    response = follow_callback(client, callback)

    assert response.status_code == 502
    assert signed_in_user(client) is None and XToken.objects.count() == 0
    # X issued a grant (the exchange succeeded) and none of it is alive any more.
    report = sandbox_report(x)
    issued = report["oauth2_access_tokens"] + report["oauth1_access_tokens"]
    assert len(issued) == 1
    assert live_grants_at_x(x) == []


def test_a_failed_re_sign_in_does_not_revoke_the_pair_x_handed_back(x):
    """Same-pair mode: the token X returned is the one the site already holds."""
    sign_in(Client(), OAUTH1, "ada_lovelace")
    held = stored(TokenKind.OAUTH1)
    client = Client()
    callback = consent(start(client, OAUTH1))
    x.fault(VERIFY, status=503)

    assert follow_callback(client, callback).status_code == 502

    assert oauth1_works(held)
    assert stored(TokenKind.OAUTH1).access_token == held.access_token


def test_connecting_a_second_x_account_ends_the_grant_x_issued_for_it(x):
    client = Client()
    sign_in(client, OAUTH2, "ada_lovelace")
    own = stored(TokenKind.OAUTH2)

    response = client.post("/accounts/twitter_oauth2/login/?process=connect")
    callback = consent(response["Location"], "grace_hopper")
    response = follow_callback(client, callback)

    assert response.status_code == 302 and response["Location"] == "/profile/"
    assert not Profile.objects.filter(screen_name="grace_hopper").exists()
    assert sorted(live_grants_at_x(x)) == sorted([own.access_token, own.refresh_token])


@contextmanager
def database_refusing_new_tokens():
    """A real database error on storing a token: a trigger, as a full disk would fail it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_token() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'could not extend file: No space left on device'; END; "
                "$$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_token BEFORE INSERT ON accounts_xtoken "
                "FOR EACH ROW EXECUTE FUNCTION refuse_token()"
            )
        else:
            cursor.execute(
                "CREATE TRIGGER refuse_token BEFORE INSERT ON accounts_xtoken BEGIN "
                "SELECT RAISE(ABORT, 'No space left on device'); END"
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("DROP TRIGGER refuse_token ON accounts_xtoken")
                cursor.execute("DROP FUNCTION refuse_token()")
            else:
                cursor.execute("DROP TRIGGER refuse_token")


@pytest.mark.parametrize("provider", [OAUTH1, OAUTH2])
def test_a_database_error_while_saving_the_sign_in_ends_the_issued_grant(x, provider):
    client = Client(raise_request_exception=False)
    callback = consent(start(client, provider))

    with database_refusing_new_tokens():
        response = follow_callback(client, callback)

    assert response.status_code == 500
    assert XToken.objects.count() == 0
    report = sandbox_report(x)
    assert len(report["oauth1_access_tokens"] + report["oauth2_access_tokens"]) == 1
    assert live_grants_at_x(x) == []
