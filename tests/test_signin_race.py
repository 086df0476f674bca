"""Two browsers finishing the same person's first sign-in at the same moment."""

import threading

import pytest
from allauth.socialaccount.models import SocialAccount
from django.db import connection
from django.test import Client

from accounts.models import Profile, TokenStatus, XToken
from tests.test_signin_flows import OAUTH1, User, consent, follow_callback, point_site_at, start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="the in-memory SQLite test database (shared cache) fails a second concurrent "
    "writer with 'table is locked' instead of waiting as a file database does",
)
@pytest.mark.parametrize("persona", ["ada_lovelace", "grace_hopper", "private_pat"])
def test_simultaneous_first_sign_ins_make_one_user_and_both_succeed(x_sandbox, settings, persona):
    point_site_at(x_sandbox, settings)
    browsers = [Client(), Client()]
    callbacks = [consent(start(browser, OAUTH1), persona) for browser in browsers]
    barrier = threading.Barrier(len(browsers))
    answers: list = [None, None]

    def finish(index: int) -> None:
        try:
            barrier.wait()
            answers[index] = follow_callback(browsers[index], callbacks[index])
        finally:
            connection.close()

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(len(browsers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [answer.status_code for answer in answers] == [302, 302]
    assert [answer["Location"] for answer in answers] == ["/profile/", "/profile/"]
    profile = Profile.objects.get(screen_name=persona)
    assert User.objects.count() == 1
    assert SocialAccount.objects.filter(user=profile.user).count() == 1
    assert XToken.objects.get(profile=profile).status == TokenStatus.ACTIVE
    signed_in = {browser.session.get("_auth_user_id") for browser in browsers}
    assert signed_in == {str(profile.user.pk)}
