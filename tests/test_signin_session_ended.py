"""A browser signed out (its session deleted) in another tab while a sign-in is under way.

allauth saves the session in the middle of a sign-in, to stash its state on the way
to X and to use it up on the way back. When another request deleted that session
meanwhile, the save fails; the person must get a clear page, not a 500, nobody may
be signed in, and a grant X issued during that callback must be ended at X.
"""

from contextlib import contextmanager

import pytest
from django.contrib.sessions.models import Session
from django.db.models.signals import pre_save
from django.test import Client

from accounts.signin import SESSION_ENDED
from tests.test_signin_flows import (
    OAUTH1,
    OAUTH2,
    User,
    consent,
    follow_callback,
    point_site_at,
    sign_in,
    signed_in_user,
    start,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def x(x_sandbox, settings):
    return point_site_at(x_sandbox, settings)


@contextmanager
def signed_out_elsewhere_at_next_session_save():
    """Delete the session row just before this request's first save of it, once."""
    fired = []

    def delete_row(sender, instance, **kwargs):
        if not fired:
            fired.append(instance.session_key)
            Session.objects.filter(session_key=instance.session_key).delete()

    pre_save.connect(delete_row, sender=Session, weak=False)
    try:
        yield fired
    finally:
        pre_save.disconnect(delete_row, sender=Session)


def assert_session_ended_page(response) -> None:
    assert response.status_code == 400
    page = response.content.decode()
    assert str(SESSION_ENDED.title) in page  # a lazy translation: English here
    assert "Server Error" not in page


@pytest.mark.parametrize("provider", [OAUTH1, OAUTH2])
def test_starting_a_sign_in_while_signed_out_elsewhere_shows_a_page(x, provider):
    client = Client()
    sign_in(client, OAUTH1, "ada_lovelace")
    assert signed_in_user(client) is not None

    with signed_out_elsewhere_at_next_session_save() as fired:
        response = client.post(f"/accounts/{provider}/login/")

    assert fired, "the sign-in never saved its session mid-request"
    assert_session_ended_page(response)
    assert signed_in_user(client) is None
    assert not Session.objects.exists()


def return_from_x_signed_out_elsewhere(x, provider: str) -> list[str]:
    """A new person's trip back from X while another tab signs this browser out.

    Checks what the person sees and that nobody was signed in; returns the paths
    of the calls X received, for the grant checks.
    """
    client = Client()
    callback = consent(start(client, provider), "grace_hopper")

    with signed_out_elsewhere_at_next_session_save() as fired:
        response = follow_callback(client, callback)

    assert fired
    assert_session_ended_page(response)
    assert signed_in_user(client) is None
    assert not User.objects.filter(username="grace_hopper").exists()
    return [call["path"] for call in x.calls()]


def test_returning_from_x_over_oauth1_while_signed_out_elsewhere_ends_the_new_grant(x):
    paths = return_from_x_signed_out_elsewhere(x, OAUTH1)
    # allauth uses up its state after X issued the access token: that grant is ended.
    assert "/oauth/access_token" in paths
    assert paths[-1] == "/1.1/oauth/invalidate_token"


def test_returning_from_x_over_oauth2_while_signed_out_elsewhere_gets_no_grant(x):
    paths = return_from_x_signed_out_elsewhere(x, OAUTH2)
    # allauth uses up its state before the code exchange: X is never asked for a token.
    assert "/2/oauth2/token" not in paths
