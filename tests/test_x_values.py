"""X's user objects, however odd, become XUser values that fit the profile's columns.

The shapes the sandbox cannot send (it validates its personas' types) are given
to XUser's parsers directly; an id that is not a number goes through the sandbox.
"""

from datetime import UTC, datetime

import pytest
from allauth.socialaccount.models import SocialAccount

from accounts import tokens
from accounts.models import Profile, TokenKind
from accounts.x_client import XError, XUser
from accounts.x_values import clean_text, profile_url
from tests.test_admin_support import sign_in as issue_sign_in
from tests.test_signin_flows import OAUTH2, consent, follow_callback, point_site_at, start

V1 = {"id": 1000000001, "id_str": "1000000001", "screen_name": "ada", "name": "Ada"}
V2 = {"id": "1000000001", "username": "ada", "name": "Ada"}


@pytest.mark.parametrize("count", ["many", "", [], {}, None, True, float("nan"), float("inf")])
def test_a_count_that_is_not_a_number_is_zero(count):
    v1 = XUser.from_v1({**V1, "followers_count": count, "friends_count": count})
    v2 = XUser.from_v2({**V2, "public_metrics": {"followers_count": count}})
    assert (v1.followers_count, v1.following_count, v2.followers_count) == (0, 0, 0)


def test_counts_are_clamped_to_the_column_and_digits_in_a_string_count():
    user = XUser.from_v1(
        {**V1, "followers_count": 2**64, "friends_count": -5, "statuses_count": "42"}
    )
    assert (user.followers_count, user.following_count, user.tweet_count) == (2**31 - 1, 0, 42)
    assert XUser.from_v2({**V2, "public_metrics": "lots"}).followers_count == 0


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http:no-host",
        "http://[::1",
        "ftp://example.com/",
        "https://example.com/" + "a" * 500,
        42,
    ],
)
def test_only_http_links_that_fit_are_kept(url):
    assert XUser.from_v1({**V1, "url": url}).url == ""
    assert XUser.from_v2({**V2, "profile_image_url": url}).profile_image_url == ""


def test_a_web_link_is_kept_as_it_came():
    assert profile_url("url", "https://example.com/a?b=c#d") == "https://example.com/a?b=c#d"
    assert XUser.from_v1({**V1, "url": "http://t.co/x"}).url == "http://t.co/x"


@pytest.mark.parametrize("created_at", ["yesterday", "", 1445471584, "Wed Oct 99 99:99:99 2015"])
def test_a_date_that_does_not_parse_is_none(created_at):
    assert XUser.from_v1({**V1, "created_at": created_at}).created_at is None
    assert XUser.from_v2({**V2, "created_at": created_at}).created_at is None


def test_dates_are_read_in_both_shapes():
    joined = datetime(2015, 10, 21, 23, 53, 4, tzinfo=UTC)
    assert XUser.from_v1({**V1, "created_at": "Wed Oct 21 23:53:04 +0000 2015"}).created_at == (
        joined
    )
    assert XUser.from_v2({**V2, "created_at": "2015-10-21T23:53:04.000Z"}).created_at == joined


def test_text_loses_controls_bidi_and_lone_surrogates_and_fits_its_column():
    name = "\x00A\x1b[1md\x07a\u202e \ud800Love\u2066lace\u2069\x9b\t"
    user = XUser.from_v2({**V2, "name": name, "description": "line\r\none\x0bx" + "y" * 600})
    assert user.name == "A[1mda Lovelace"
    assert user.description.startswith("line\none\nx") and len(user.description) == 500
    assert clean_text(None) == "" and clean_text(12) == ""


def test_only_json_true_is_true():
    user = XUser.from_v1({**V1, "protected": "false", "verified": 1})
    assert (user.protected, user.verified) == (False, False)


@pytest.mark.parametrize("user_id", ["12ab", "", "1" * 33, None, "-1", "1.5", True])
def test_an_id_that_is_not_a_number_refuses_the_answer(user_id):
    with pytest.raises(XError):
        XUser.from_v2({**V2, "id": user_id})
    with pytest.raises(XError):
        XUser.from_v1({"id": user_id, "screen_name": "ada"})


@pytest.mark.parametrize("answer", [None, [], "user"])
def test_an_answer_that_is_not_a_user_object_is_refused(answer):
    with pytest.raises(XError):
        XUser.from_v1(answer)


@pytest.mark.django_db
def test_a_sign_in_whose_id_is_not_a_number_is_refused_with_a_page(client, x_sandbox, settings):
    x = point_site_at(x_sandbox, settings)
    x.add_personas({"id": "12ab", "screen_name": "odd_id"})

    response = follow_callback(client, consent(start(client, OAUTH2), "odd_id"))

    assert response.status_code == 400
    assert b"The sign-in could not be completed" in response.content
    assert "_auth_user_id" not in client.session
    assert not SocialAccount.objects.exists()
    assert not Profile.objects.filter(screen_name="odd_id").exists()


@pytest.mark.django_db
def test_a_check_whose_answer_has_no_usable_id_fails_that_account_only(x_sandbox, settings):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    x_sandbox.add_personas({"id": "12ab", "screen_name": "odd_id"})
    token = issue_sign_in(x_sandbox, "odd_id", TokenKind.OAUTH2, x_user_id="1200")

    outcome = tokens.check_token(token)

    assert not outcome.ok and "not a number" in outcome.message
    assert Profile.objects.get(pk=token.profile_id).x_user_id == "1200"
