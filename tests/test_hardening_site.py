"""Doors closed: admin throttling by identity, only the sign-in pages of allauth,
no implicit sandbox in production, and the site's own error pages (issue 15)."""

import importlib.util
import re
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import URLResolver, path

from project import urls as site_urls
from tests.test_foundation import PRODUCTION_ENV, run_manage
from tests.test_signin_flows import (
    OAUTH1,
    OAUTH2,
    consent,
    follow_callback,
    point_site_at,
    sign_in,
    start,
)

User = get_user_model()
PASSWORD = "correct-horse-battery-staple-42"


# --- 1. Admin login throttling counts the identity, not the spelling --------------------


def admin_login(username: str, password: str):
    return Client(REMOTE_ADDR="203.0.113.7").post(
        "/admin/login/", {"username": username, "password": password}
    )


@pytest.fixture
def revoker(db):
    return User.objects.create_user("revoker", password=PASSWORD, is_staff=True)


def test_the_backend_signs_in_any_letter_case_of_a_username(revoker):
    """Why the throttle must count by identity: `rEvoker` is `revoker` to the backend."""
    assert admin_login("rEvoker", PASSWORD).status_code == 302


def test_a_lockout_holds_for_every_letter_case_of_the_username(settings, revoker):
    settings.AXES_FAILURE_LIMIT = 5
    for _ in range(5):
        admin_login("revoker", "wrong")

    for spelling in ("rEvoker", "REVOKER", "Revoker", "revoker"):
        response = admin_login(spelling, PASSWORD)
        assert response.status_code == 429, spelling
        assert "Too many failed sign-ins" in response.content.decode()


def test_wrong_passwords_under_different_spellings_add_up_to_one_lock(settings, revoker):
    settings.AXES_FAILURE_LIMIT = 5
    for spelling in ("revoker", "REVOKER", "rEvoker", "Revoker", "reVOKer"):
        admin_login(spelling, "wrong")

    assert admin_login("revoker", PASSWORD).status_code == 429


# --- 2. Of allauth, only what signing in with X needs -------------------------------------

# The allauth URLs this site means to offer: its login (sent on to /login/), logout,
# the page an inactive account lands on, and each X provider's login and callback.
OFFERED = {
    "account_logout",
    "account_inactive",
    *(f"{provider}_{step}" for provider in (OAUTH1, OAUTH2) for step in ("login", "callback")),
}
# allauth builds its URL list from settings; these switch on every local-account
# page it has (login and password reset by code, phone, passkey signup).
ALLAUTH_FEATURE_SETS = [
    {"SOCIALACCOUNT_ONLY": False},
    {
        "SOCIALACCOUNT_ONLY": False,
        "ACCOUNT_LOGIN_BY_CODE_ENABLED": True,
        "ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED": True,
        "ACCOUNT_SIGNUP_FIELDS": ["username*", "phone*", "password1*", "password2*"],
        "MFA_PASSKEY_SIGNUP_ENABLED": True,
    },
]
ALLAUTH_URL_MODULES = ("allauth.urls", "allauth.account.urls", "allauth.socialaccount.urls")
HOSTILE_BODY = {
    "email": "staff@example.com",
    "login": "revoker",
    "username": "mallory",
    "password": "a-long-password-1",
    "password1": "a-long-password-1",
    "password2": "a-long-password-1",
    "oldpassword": "x",
    "code": "123456",
    "phone": "+15555550100",
    "action_add": "1",
}


@pytest.fixture
def x(x_sandbox, settings):
    return point_site_at(x_sandbox, settings)


def fresh_module(name: str):
    """A new copy of an allauth URL module, built under the settings in force now."""
    spec = importlib.util.find_spec(name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def concrete(route: str) -> str:
    """A path matching a route: each parameter becomes "1", regex anchors go."""
    route = re.sub(r"\(\?P<\w+>[^)]*\)", "1", route)
    route = re.sub(r"<[^>]+>", "1", route)
    return route.replace("^", "").replace("$", "")


def routes(patterns, modules: dict, prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            module = pattern.urlconf_module
            module = modules.get(getattr(module, "__name__", None), module)
            yield from routes(getattr(module, "urlpatterns", module), modules, route)
        else:
            yield concrete(route), pattern.name


def every_allauth_route() -> dict[str, str | None]:
    """Every path allauth's own URLconf would route under /accounts/, with its name.

    Read from allauth's URL modules, rebuilt with each of its features switched on,
    so a page a new allauth version adds is tried too.
    """
    found = {}
    for features in ALLAUTH_FEATURE_SETS:
        with override_settings(**features):
            modules = {name: fresh_module(name) for name in ALLAUTH_URL_MODULES}
        for route, name in routes(modules["allauth.urls"].urlpatterns, modules):
            found[f"/accounts/{route}"] = name
    return found


ALLAUTH_ROUTES = every_allauth_route()
# And /accounts/ itself, which allauth's middleware would send to its email page.
NOT_OFFERED = sorted(
    {"/accounts/", *(path for path, name in ALLAUTH_ROUTES.items() if name not in OFFERED)}
)


def test_the_allauth_routes_include_every_local_account_page():
    """The enumeration itself: it must find the pages the issue names, and more."""
    for page in (
        "/accounts/password/reset/",
        "/accounts/password/set/",
        "/accounts/password/change/",
        "/accounts/email/",
        "/accounts/signup/",
        "/accounts/reauthenticate/",
        "/accounts/3rdparty/",
        "/accounts/3rdparty/signup/",
        "/accounts/login/code/",
        "/accounts/password/reset/key/1-1/",
        "/accounts/social/connections/",
    ):
        assert page in NOT_OFFERED
    assert len(NOT_OFFERED) >= 20


def refused(response) -> bool:
    """404, or a redirect to /login/."""
    if response.status_code == 404:
        return True
    return response.status_code in (301, 302) and urlsplit(response["Location"]).path == "/login/"


def answers(client: Client) -> list[str]:
    """Each allauth page not offered, by GET and POST: the ones not refused."""
    wrong = []
    for page in NOT_OFFERED:
        for method in ("get", "post"):
            response = getattr(client, method)(page, HOSTILE_BODY if method == "post" else None)
            if not refused(response):
                wrong.append(f"{method.upper()} {page} -> {response.status_code}")
    return wrong


@pytest.mark.django_db
def test_no_local_account_page_answers_an_anonymous_visitor():
    client = Client(raise_request_exception=False)

    assert answers(client) == []
    assert not User.objects.filter(username="mallory").exists()


@pytest.mark.django_db
def test_no_local_account_page_answers_a_signed_in_x_user(x):
    client = Client(raise_request_exception=False)
    sign_in(client, OAUTH2)
    user = User.objects.get()

    assert answers(client) == []
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert not user.emailaddress_set.exists()
    assert client.get("/profile/").status_code == 200  # still signed in


@pytest.mark.django_db
def test_the_offered_allauth_pages_still_answer(x):
    for provider in (OAUTH1, OAUTH2):
        assert "Continue to X" in Client().get(f"/accounts/{provider}/login/").content.decode()
    assert Client().get("/accounts/login/")["Location"] == "/login/"
    client = Client()
    sign_in(client, OAUTH1)

    assert "Sign out of" in client.get("/accounts/logout/").content.decode()
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_an_inactive_account_signing_in_lands_on_the_inactive_page(x):
    sign_in(Client(), OAUTH2)
    User.objects.update(is_active=False)
    client = Client()

    response = follow_callback(client, consent(start(client, OAUTH2)))

    assert response["Location"] == "/accounts/inactive/"
    assert "This account is inactive" in client.get("/accounts/inactive/").content.decode()
    assert "_auth_user_id" not in client.session


# --- 7. Production never points at a sandbox it was not told about ------------------------

NO_X_CREDENTIALS = {
    **PRODUCTION_ENV,
    "X_CONSUMER_KEY": "",
    "X_CONSUMER_SECRET": "",
    "X_CLIENT_ID": "",
    "X_CLIENT_SECRET": "",
    "X_SANDBOX": "",
}
REFUSAL = (
    "Refusing to start: no X credentials are set and DEBUG is off; set X_CONSUMER_KEY and "
    "X_CONSUMER_SECRET and/or X_CLIENT_ID and X_CLIENT_SECRET, or X_SANDBOX=1 for the "
    "bundled X sandbox."
)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"X_SANDBOX": "0"}, {"X_CONSUMER_KEY": "ck"}, {"X_CLIENT_SECRET": "cs"}],
    ids=["nothing", "sandbox-off", "key-without-secret", "secret-without-id"],
)
def test_production_without_x_credentials_refuses_to_start(overrides):
    result = run_manage("check", env={**NO_X_CREDENTIALS, **overrides})

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [REFUSAL]


def test_production_starts_with_the_sandbox_when_told_to():
    code = "from django.conf import settings; print(settings.X_SANDBOX, settings.X_API_BASE_URL)"
    env = {**NO_X_CREDENTIALS, "X_SANDBOX": "1"}

    result = run_manage("shell", "--no-imports", "-c", code, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "http://127.0.0.1:8001"]
    assert run_manage("check", "--deploy", "--fail-level", "WARNING", env=env).returncode == 0


@pytest.mark.parametrize(
    "credentials",
    [
        {"X_CONSUMER_KEY": "ck", "X_CONSUMER_SECRET": "cs"},
        {"X_CLIENT_ID": "ci", "X_CLIENT_SECRET": "cs"},
    ],
    ids=["oauth1", "oauth2"],
)
def test_production_with_one_pair_of_credentials_talks_to_x(credentials):
    code = "from django.conf import settings; print(settings.X_SANDBOX, settings.X_API_BASE_URL)"

    result = run_manage(
        "shell", "--no-imports", "-c", code, env={**NO_X_CREDENTIALS, **credentials}
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "https://api.x.com"]


def test_a_laptop_without_credentials_still_uses_the_sandbox():
    code = "from django.conf import settings; print(settings.X_SANDBOX)"
    env = {**NO_X_CREDENTIALS, "DEBUG": "1", "SECRET_KEY": "", "TOKEN_ENCRYPTION_KEYS": ""}

    result = run_manage("shell", "--no-imports", "-c", code, env=env)

    assert result.stdout.split() == ["True"], result.stderr


# --- 8. The site's own error pages ---------------------------------------------------------


def forbidden(request):
    raise PermissionDenied


def broken(request):
    raise RuntimeError("a bug in a view")


# A URLconf of the site plus two views that fail, with the site's own error handlers.
urlpatterns = [
    path("test-forbidden/", forbidden),
    path("test-broken/", broken),
    *site_urls.urlpatterns,
]
# The site's 500 handler, or Django's default when the site names none.
handler500 = getattr(site_urls, "handler500", "django.views.defaults.server_error")


def looks_like_the_site(html: str) -> bool:
    return (
        'class="site-header"' in html
        and re.search(r'<link rel="stylesheet" href="/static/css/site\.[0-9a-f]{12}\.css">', html)
        is not None
        and f"{settings.SITE_NAME}</a>" in html
        and 'class="card narrow auth-card failure"' in html
    )


@pytest.fixture
def production(settings, tmp_path):
    """DEBUG off and hashed static files, as with DEBUG=0."""
    from django.core.management import call_command

    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    call_command("collectstatic", "--noinput", verbosity=0)
    return settings


@pytest.mark.django_db
def test_a_missing_page_is_the_sites_404(production):
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert looks_like_the_site(html)
    assert "There is no page here" in html


@pytest.mark.django_db
def test_a_bad_host_is_the_sites_400(production):
    response = Client(HTTP_HOST="evil.example").get("/")

    assert response.status_code == 400
    html = response.content.decode()
    assert looks_like_the_site(html)
    assert "That request could not be understood" in html


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_refusal_is_the_sites_403(production):
    response = Client().get("/test-forbidden/")

    assert response.status_code == 403
    html = response.content.decode()
    assert looks_like_the_site(html)
    assert "You are not allowed to do that" in html


@pytest.mark.django_db
def test_a_form_without_its_csrf_token_is_the_sites_403(production):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/logout/")

    assert response.status_code == 403
    html = response.content.decode()
    assert looks_like_the_site(html)
    assert "That form could not be accepted" in html


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_bug_in_a_view_is_the_sites_static_500(production):
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_user("someone_signed_in"))

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/test-broken/")

    assert response.status_code == 500
    html = response.content.decode()
    assert looks_like_the_site(html)
    assert "Something went wrong" in html
    assert "a bug in a view" not in html and "Traceback" not in html
    # Signed in, yet the page loads no user and reads nothing from the database (the
    # request log's own read of the session id is all there is).
    assert "someone_signed_in" not in html
    assert [q["sql"] for q in queries if "django_session" not in q["sql"]] == []


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_the_500_page_survives_a_missing_static_manifest(production, tmp_path):
    (tmp_path / "staticfiles.json").unlink()
    production.STORAGES = {**production.STORAGES}  # a fresh storage reads the manifest again
    client = Client(raise_request_exception=False)

    response = client.get("/test-broken/")

    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html
    assert '<link rel="stylesheet" href="/static/css/site.css">' in html


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("path", "status", "heading"),
    [
        ("/no-such-page/", 404, "There is no page here"),
        ("/test-forbidden/", 403, "You are not allowed to do that"),
        ("/test-broken/", 500, "Something went wrong"),
    ],
)
def test_error_pages_look_like_the_site_in_chromium(page, live_server, path, status, heading):
    response = page.goto(live_server.url + path)

    assert response.status == status
    assert page.locator("h1").inner_text() == heading
    assert settings.SITE_NAME in page.title()
    # Both stylesheets were served and applied: the header row is a flex row
    # (site.css) and the card is centred (accounts.css).
    assert page.locator(".header-row").evaluate("el => getComputedStyle(el).display") == "flex"
    assert page.locator(".auth-card").evaluate("el => getComputedStyle(el).textAlign") == "center"
    assert page.get_by_role("link", name="Home").is_visible()
