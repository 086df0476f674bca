"""Two browsers finishing the same person's first sign-in at the same moment."""

import threading

import pytest
from allauth.socialaccount.models import SocialAccount
from django.db import connection
from django.db.models.signals import pre_save
from django.test import Client

from accounts.models import Profile, TokenStatus, XToken
from tests.test_signin_flows import (
    OAUTH1,
    OAUTH2,
    User,
    consent,
    follow_callback,
    point_site_at,
    sign_in,
    start,
)

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


def test_a_sign_in_whose_x_account_another_browser_linked_meanwhile_succeeds(x_sandbox, settings):
    """Signed up with OAuth 2.0, then two browsers finish an OAuth 1.0a sign-in together.

    Both find no OAuth 1.0a account in allauth's lookup and both link one to the
    person's user; the second link must join the first, not fail with a 500. The
    other browser's link is made exactly in that window, from a pre_save hook.
    """
    point_site_at(x_sandbox, settings)
    sign_in(Client(), OAUTH2)
    profile = Profile.objects.get(screen_name="ada_lovelace")
    other_browser_linked = []

    def link_first(sender, instance, **kwargs):
        if instance.provider == OAUTH1 and instance.pk is None and not other_browser_linked:
            other_browser_linked.append(instance.uid)
            SocialAccount.objects.create(
                user=profile.user, provider=OAUTH1, uid=instance.uid, extra_data={}
            )

    browser = Client()
    pre_save.connect(link_first, sender=SocialAccount)
    try:
        sign_in(browser, OAUTH1)
    finally:
        pre_save.disconnect(link_first, sender=SocialAccount)

    assert other_browser_linked, "the other browser's link was never made"
    assert User.objects.count() == 1
    assert SocialAccount.objects.filter(user=profile.user, provider=OAUTH1).count() == 1
    assert browser.session.get("_auth_user_id") == str(profile.user.pk)
    tokens = XToken.objects.filter(profile=profile, status=TokenStatus.ACTIVE)
    assert sorted(tokens.values_list("kind", flat=True)) == ["oauth1", "oauth2"]
