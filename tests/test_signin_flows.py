"""Signing in with X through allauth against the sandbox, at the Django test-client level.

The site's side runs in Django's test client; X's side is the real sandbox over
HTTP. The consent form is posted with `requests` the way a browser would, which
gives the callback URL X sends the person back to. Helpers here are shared with
test_signin_failures.py.
"""

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount, SocialToken
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts import x_client
from accounts.models import PendingRevocation, Profile, TokenKind, XToken
from accounts.revocation import retry_due_revocations
from accounts.x_client import XTokenInvalid
from tests.sandbox import TimeoutSession

OAUTH1, OAUTH2 = "twitter", "twitter_oauth2"
http = TimeoutSession()
User = get_user_model()


def point_site_at(sandbox, settings):
    """Point the site at the sandbox and approve the test client's host as a callback."""
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = sandbox.base_url
    settings.X_HTTP_TIMEOUT = 5
    # Django's test client calls itself http://testserver; X checks callbacks.
    sandbox.config(callbacks=["http://testserver:*"])
    return sandbox


@pytest.fixture
def x(x_sandbox, settings):
    return point_site_at(x_sandbox, settings)


def start(client: Client, provider: str = OAUTH1) -> str:
    """Press "Sign in with X": returns the X authorize URL the site redirects to."""
    response = client.post(f"/accounts/{provider}/login/")
    assert response.status_code == 302, response.content
    return response["Location"]


def consent(authorize_url: str, persona: str = "ada_lovelace", decision: str = "allow") -> str:
    """Answer X's consent page like a browser; returns the callback URL X redirects to."""
    response = http.post(
        authorize_url, data={"persona": persona, "decision": decision}, allow_redirects=False
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def follow_callback(client: Client, callback_url: str):
    parts = urlsplit(callback_url)
    assert parts.netloc == "testserver"
    return client.get(f"{parts.path}?{parts.query}")


def sign_in(client: Client, provider: str = OAUTH1, persona: str = "ada_lovelace") -> str:
    """A complete sign-in; returns the callback URL (for replay tests)."""
    callback = consent(start(client, provider), persona)
    response = follow_callback(client, callback)
    assert response.status_code == 302, response.content
    assert response["Location"] == "/profile/"
    return callback


def signed_in_user(client: Client):
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def all_database_text() -> str:
    """Every row of every table as text, sessions decoded as well as raw."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            chunks.extend(repr(row) for row in cursor.fetchall())
    chunks.extend(json.dumps(session.get_decoded()) for session in Session.objects.all())
    return "\n".join(chunks)


def leaked(secrets: list[str], text: str) -> list[str]:
    return [secret for secret in secrets if secret and secret in text]


# OAuth 1.0a ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_oauth1_sign_in_creates_user_profile_and_working_token(x):
    client = Client()
    sign_in(client, OAUTH1, "ada_lovelace")

    user = signed_in_user(client)
    assert user.username == "ada_lovelace"
    profile = user.x_profile
    assert profile.x_user_id == "1000000001"
    assert (profile.screen_name, profile.name) == ("ada_lovelace", "Ada Lovelace")
    assert profile.location == "London, England"
    assert profile.url == "https://example.com/ada"
    assert profile.description.startswith("Poet of science")
    assert (profile.followers_count, profile.following_count) == (1815, 42)
    assert profile.verified and not profile.protected
    assert profile.x_created_at.year == 2015
    assert profile.profile_image_url.endswith("_normal.jpg")
    assert profile.sign_in_method == TokenKind.OAUTH1
    assert profile.last_synced_at > timezone.now() - timedelta(minutes=1)

    token = XToken.objects.get(profile=profile)
    assert (token.kind, token.status, token.expires_at) == (TokenKind.OAUTH1, "active", None)
    # The stored pair is the one X issued, and X still honours it.
    assert x_client.verify_credentials(token.access_token, token.token_secret).id == "1000000001"
    assert SocialToken.objects.count() == 0


@pytest.mark.django_db
def test_oauth1_asks_x_for_the_profile_without_email(x):
    sign_in(Client(), OAUTH1)
    calls = [(call["method"], call["path"]) for call in x.calls()]
    assert calls == [
        ("POST", "/oauth/request_token"),
        ("POST", "/oauth/authenticate"),
        ("POST", "/oauth/access_token"),
        ("GET", "/1.1/account/verify_credentials.json"),
    ]
    assert SocialAccount.objects.get().extra_data.get("email") is None


# OAuth 2.0 ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_oauth2_asks_for_offline_access_with_pkce_s256(x):
    authorize = urlsplit(start(Client(), OAUTH2))
    query = parse_qs(authorize.query)
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == (
        f"{x.base_url}/i/oauth2/authorize"
    )
    assert set(query["scope"][0].split()) == {"tweet.read", "users.read", "offline.access"}
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == ["http://testserver/accounts/twitter_oauth2/login/callback/"]


@pytest.mark.django_db
def test_oauth2_sign_in_stores_refresh_token_scopes_and_expiry(x):
    client = Client()
    sign_in(client, OAUTH2, "grace_hopper")

    profile = signed_in_user(client).x_profile
    assert (profile.x_user_id, profile.screen_name) == ("1000000002", "grace_hopper")
    assert profile.location == "" and profile.url == ""
    assert (profile.followers_count, profile.following_count) == (1906, 7)
    assert profile.sign_in_method == TokenKind.OAUTH2
    token = XToken.objects.get(profile=profile)
    assert token.kind == TokenKind.OAUTH2
    assert set(token.scopes.split()) == {"tweet.read", "users.read", "offline.access"}
    expected_expiry = timezone.now() + timedelta(seconds=7200)
    assert abs(token.expires_at - expected_expiry) < timedelta(minutes=1)
    assert token.refresh_token in x.secrets()
    assert x_client.get_me(token.access_token).screen_name == "grace_hopper"


# One user per X account ---------------------------------------------------------------


@pytest.mark.django_db
def test_oauth2_after_oauth1_signs_in_the_same_user(x):
    first, second = Client(), Client()
    sign_in(first, OAUTH1, "ada_lovelace")
    sign_in(second, OAUTH2, "ada_lovelace")

    assert signed_in_user(first) == signed_in_user(second)
    assert User.objects.count() == 1
    profile = Profile.objects.get()
    assert profile.sign_in_method == TokenKind.OAUTH2
    assert sorted(profile.tokens.values_list("kind", flat=True)) == ["oauth1", "oauth2"]
    assert SocialAccount.objects.filter(user=profile.user).count() == 2


@pytest.mark.django_db
def test_screen_name_taken_by_another_user_gets_a_unique_username(x):
    staff = User.objects.create_user("ada_lovelace", password="a-staff-password-1")
    client = Client()
    sign_in(client, OAUTH1, "ada_lovelace")

    user = signed_in_user(client)
    assert user != staff
    assert user.username.startswith("ada_lovelace") and user.username != "ada_lovelace"
    assert user.x_profile.screen_name == "ada_lovelace"
    staff.refresh_from_db()
    assert staff.x_profile.x_user_id is None and staff.check_password("a-staff-password-1")


@pytest.mark.django_db
def test_every_sign_in_refreshes_the_profile_from_x(x):
    sign_in(Client(), OAUTH1, "ada_lovelace")
    first_sync = Profile.objects.get().last_synced_at
    x.update_persona(
        "ada_lovelace",
        name="Ada King",
        location="",
        description="Countess of Lovelace.",
        followers_count=2000,
    )

    sign_in(Client(), OAUTH2, "ada_lovelace")

    profile = Profile.objects.get()
    assert (profile.name, profile.location) == ("Ada King", "")
    assert profile.description == "Countess of Lovelace."
    assert profile.followers_count == 2000
    assert profile.last_synced_at > first_sync


# Tokens at rest -----------------------------------------------------------------------


@pytest.mark.django_db
def test_no_token_x_issued_is_anywhere_in_the_database_in_clear(x):
    sign_in(Client(), OAUTH1, "ada_lovelace")
    sign_in(Client(), OAUTH2, "grace_hopper")

    secrets = x.secrets()
    stored = XToken.objects.all()
    assert len(stored) == 2
    # The test can see the tokens (so it is looking for the right strings)...
    for token in stored:
        assert token.access_token in secrets
    assert leaked(secrets, all_database_text()) == []


@pytest.mark.django_db
def test_session_keeps_no_request_or_access_token_after_the_callback(x):
    client = Client()
    sign_in(client, OAUTH1)

    session = dict(client.session.items())
    assert not [key for key in session if key.startswith("oauth_")]
    assert leaked(x.secrets(), json.dumps(session)) == []


# Pages --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_login_page_offers_one_button_per_configured_method(client, settings):
    response = client.get("/login/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'action="/accounts/twitter/login/"' in html
    assert 'action="/accounts/twitter_oauth2/login/"' in html
    # Each sign-in form carries its CSRF token (the footer's language switcher has its own).
    methods = html.split('class="signin-methods"')[1].split("</div>")[0]
    assert methods.count("csrfmiddlewaretoken") == 2

    settings.SOCIALACCOUNT_PROVIDERS = {
        "twitter_oauth2": settings.SOCIALACCOUNT_PROVIDERS["twitter_oauth2"]
    }
    html = client.get("/login/").content.decode()
    assert 'action="/accounts/twitter/login/"' not in html
    assert 'action="/accounts/twitter_oauth2/login/"' in html
    assert client.post("/accounts/twitter/login/").status_code == 404


@pytest.mark.django_db
def test_allauth_login_page_and_anonymous_profile_lead_to_login(client):
    assert client.get("/accounts/login/?next=/profile/")["Location"] == "/login/?next=/profile/"
    response = client.get("/profile/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/profile/"


@pytest.mark.django_db
def test_profile_page_shows_the_profile_and_token_state_but_no_secret(x):
    client = Client()
    sign_in(client, OAUTH2, "ada_lovelace")

    html = client.get("/profile/").content.decode()
    assert "Ada Lovelace" in html
    assert f'href="{x.base_url}/ada_lovelace"' in html
    assert "London, England" in html
    assert '<a href="https://example.com/ada" rel="nofollow noopener ugc">' in html
    assert "Poet of science" in html
    assert ">1815<" in html and ">42<" in html
    assert "OAuth 2.0" in html and "Active" in html and "Expires" in html
    assert "Last synced from X" in html
    assert leaked(x.secrets(), html) == []


@pytest.mark.django_db
def test_profile_page_never_links_a_non_web_url(x):
    x.update_persona("grace_hopper", url="javascript:alert(document.cookie)")
    client = Client()
    sign_in(client, OAUTH1, "grace_hopper")

    html = client.get("/profile/").content.decode()
    assert "javascript:" not in html
    assert "Website" not in html


# Disconnect X -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("provider", "revoke_paths"),
    [
        (OAUTH1, ["/1.1/oauth/invalidate_token"]),
        (OAUTH2, ["/2/oauth2/revoke", "/2/oauth2/revoke"]),
    ],
)
def test_disconnect_revokes_at_x_deletes_here_and_signs_out(x, provider, revoke_paths):
    client = Client()
    sign_in(client, provider)
    token = XToken.objects.get()
    access_token, token_secret = token.access_token, token.token_secret

    response = client.post("/account/disconnect/", follow=True)

    assert response.redirect_chain == [("/", 302)]
    assert "Disconnected from X" in response.content.decode()
    assert signed_in_user(client) is None
    assert XToken.objects.count() == 0
    assert [
        c["path"] for c in x.calls() if "revoke" in c["path"] or "invalidate" in c["path"]
    ] == (revoke_paths)
    with pytest.raises(XTokenInvalid):
        if provider == OAUTH1:
            x_client.verify_credentials(access_token, token_secret)
        else:
            x_client.get_me(access_token)


@pytest.mark.django_db
def test_disconnect_while_x_is_down_keeps_the_grant_pending_until_x_confirms(x, settings):
    settings.X_HTTP_RETRIES = 0
    client = Client()
    sign_in(client, OAUTH1)
    token = XToken.objects.get()
    access_token, token_secret = token.access_token, token.token_secret
    x.fault("/1.1/oauth/invalidate_token", status=503)

    response = client.post("/account/disconnect/", follow=True)

    assert response.redirect_chain == [("/", 302)]
    page = response.content.decode()
    assert "X has not yet confirmed" in page and "revoked our access at X" not in page
    assert signed_in_user(client) is None and XToken.objects.count() == 0
    pending = PendingRevocation.objects.get()
    assert pending.resolved_at is None and pending.access_token == access_token
    assert x_client.verify_credentials(access_token, token_secret).screen_name == "ada_lovelace"

    pending.next_attempt_at = timezone.now()
    pending.save()
    assert retry_due_revocations().revoked == 1
    with pytest.raises(XTokenInvalid):
        x_client.verify_credentials(access_token, token_secret)


@pytest.mark.django_db
def test_signing_in_after_disconnect_lands_on_the_same_user(x):
    client = Client()
    sign_in(client, OAUTH1, "private_pat")
    user = signed_in_user(client)
    client.post("/account/disconnect/")

    sign_in(client, OAUTH2, "private_pat")

    assert signed_in_user(client) == user
    assert User.objects.count() == 1
    assert Profile.objects.get().protected is True
    assert XToken.objects.get().kind == TokenKind.OAUTH2


@pytest.mark.django_db
def test_connecting_a_second_x_account_is_refused(x):
    client = Client()
    sign_in(client, OAUTH1, "ada_lovelace")
    user = signed_in_user(client)

    authorize = client.post("/accounts/twitter_oauth2/login/", {"process": "connect"})
    callback = urlsplit(consent(authorize["Location"], "grace_hopper"))
    response = client.get(f"{callback.path}?{callback.query}", follow=True)

    assert response.redirect_chain[-1][0] == "/profile/"
    assert "linked to exactly one X account" in response.content.decode()
    assert signed_in_user(client) == user
    assert Profile.objects.get(user=user).screen_name == "ada_lovelace"
    assert not SocialAccount.objects.filter(uid="1000000002").exists()


@pytest.mark.django_db
def test_local_signup_is_closed(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "mallory",
            "password1": "a-long-password-1",
            "password2": "a-long-password-1",
        },
    )
    assert response.status_code == 404  # allauth's signup page is not routed at all
    assert not User.objects.filter(username="mallory").exists()
