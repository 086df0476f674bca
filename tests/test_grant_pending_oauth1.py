"""Pending OAuth 1.0a sign-ins in the session (issue 14, point 7).

A request token and its secret wait in the session between "Sign in with X" and
X's callback. They must leave at the callback whatever the outcome, not outlive
ten minutes, never sit there in clear, and two tabs starting a sign-in at once
must both be able to finish.
"""

import json
import time

import pytest
from django.test import Client

from accounts.signin import PENDING_OAUTH1_SESSION_KEY
from tests.sandbox import TimeoutSession
from tests.test_signin_flows import (
    OAUTH1,
    consent,
    follow_callback,
    point_site_at,
    signed_in_user,
    start,
)

http = TimeoutSession()
pytestmark = pytest.mark.django_db


@pytest.fixture
def x(x_sandbox, settings):
    return point_site_at(x_sandbox, settings)


def request_token_secrets(x) -> list[str]:
    report = x.http.get(x.base_url + "/_sandbox/tokens", timeout=30).json()
    return [record["secret"] for record in report["oauth1_request_tokens"]]


def session_text(client: Client) -> str:
    return json.dumps(dict(client.session.items()))


@pytest.mark.parametrize("finish_first", ["first tab", "second tab"])
def test_two_tabs_starting_a_sign_in_at_once_both_finish(x, finish_first):
    client = Client()
    first_tab = start(client, OAUTH1)
    second_tab = start(client, OAUTH1)
    callbacks = [consent(first_tab, "ada_lovelace"), consent(second_tab, "ada_lovelace")]
    if finish_first == "second tab":
        callbacks.reverse()

    for callback in callbacks:
        # Today the first tab back gets "The sign-in tokens do not match".
        response = follow_callback(client, callback)
        assert response.status_code == 302, response.content.decode()
        assert response["Location"] == "/profile/"

    assert signed_in_user(client).username == "ada_lovelace"
    assert PENDING_OAUTH1_SESSION_KEY not in client.session


def test_two_tabs_each_keep_their_own_next_page(x):
    client = Client()
    first = client.post("/accounts/twitter/login/?next=/first/")["Location"]
    second = client.post("/accounts/twitter/login/?next=/second/")["Location"]

    assert follow_callback(client, consent(first))["Location"] == "/first/"
    assert follow_callback(client, consent(second))["Location"] == "/second/"


def test_the_request_token_secret_is_never_in_the_session_in_clear(x):
    client = Client()
    start(client, OAUTH1)
    start(client, OAUTH1)

    secrets = request_token_secrets(x)
    assert len(secrets) == 2
    text = session_text(client)
    assert PENDING_OAUTH1_SESSION_KEY in text
    assert [secret for secret in secrets if secret in text] == []


@pytest.mark.parametrize(
    "outcome", ["signed in", "cancelled", "x refused the verifier", "x unreachable"]
)
def test_the_callback_drops_its_request_token_whatever_the_outcome(x, outcome):
    client = Client()
    authorize = start(client, OAUTH1)
    other_tab = start(client, OAUTH1)
    decision = "deny" if outcome == "cancelled" else "allow"
    callback = consent(authorize, decision=decision)
    if outcome == "x refused the verifier":
        callback = callback.replace("oauth_verifier=", "oauth_verifier=forged")
    if outcome == "x unreachable":
        x.fault("/oauth/access_token", drop=True)
    token = authorize.split("oauth_token=")[1].split("&")[0]
    assert token in client.session[PENDING_OAUTH1_SESSION_KEY]

    follow_callback(client, callback)

    pending = client.session.get(PENDING_OAUTH1_SESSION_KEY, {})
    assert token not in pending
    # The other tab's sign-in is still waiting and still finishes.
    assert len(pending) == 1
    x.clear_faults()
    assert follow_callback(client, consent(other_tab))["Location"] == "/profile/"


def test_an_abandoned_sign_in_leaves_the_session_after_ten_minutes(x):
    client = Client()
    abandoned = start(client, OAUTH1)
    session = client.session
    for entry in session[PENDING_OAUTH1_SESSION_KEY].values():
        entry["at"] -= 11 * 60
    session.save()

    start(client, OAUTH1)  # any later visit to the sign-in clears what expired

    abandoned_token = abandoned.split("oauth_token=")[1].split("&")[0]
    pending = client.session[PENDING_OAUTH1_SESSION_KEY]
    assert abandoned_token not in pending and len(pending) == 1
    response = follow_callback(client, consent(abandoned))
    assert response.status_code == 400
    assert not {c["path"] for c in x.calls()} & {"/oauth/access_token"}


def test_pending_sign_ins_are_bounded_in_number(x):
    client = Client()
    for _ in range(12):
        start(client, OAUTH1)
    pending = client.session[PENDING_OAUTH1_SESSION_KEY]
    assert len(pending) == 10
    assert all(entry["at"] <= time.time() for entry in pending.values())
