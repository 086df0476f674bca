"""Security headers, cookies, the Content-Security-Policy in a real browser, and admin
login throttling (django-axes, per username and address)."""

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from project.csp import content_security_policy
from project.throttling import client_ip

PASSWORD = "correct-horse-battery-staple-42"


def csp_directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("ops", "ops@example.com", PASSWORD)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/login/", "/admin/login/", "/healthz"])
def test_pages_carry_a_strict_policy_and_the_usual_headers(client, path):
    response = client.get(path)

    policy = response["Content-Security-Policy"]
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    directives = csp_directives(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_sign_in_form_may_redirect_to_x_and_nowhere_else(client, settings):
    """With real X the sign-in redirect may go to api.x.com (OAuth 1.0a) and x.com (2.0)."""
    settings.CONTENT_SECURITY_POLICY = content_security_policy(
        "https://api.x.com", "https://x.com", x_sandbox=False
    )

    directives = csp_directives(client.get("/login/"))

    assert sorted(directives["form-action"]) == ["'self'", "https://api.x.com", "https://x.com"]
    assert "https://api.x.com" not in directives["img-src"]


@pytest.mark.django_db
def test_the_configured_x_is_allowed_by_the_policy_the_site_starts_with(client, settings):
    """The settings put X's origins (here the sandbox, as on a laptop) into the policy."""
    sandbox = urlsplit(settings.X_WEB_BASE_URL)

    directives = csp_directives(client.get("/login/"))

    assert settings.X_SANDBOX
    assert f"{sandbox.scheme}://{sandbox.netloc}" in directives["form-action"]
    assert f"{sandbox.scheme}://{sandbox.netloc}" in directives["img-src"]


@pytest.mark.django_db
def test_session_and_csrf_cookies_are_secure_httponly_and_lax(settings, staff):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True  # as with DEBUG=0
    client = Client(enforce_csrf_checks=True)

    client.get("/admin/login/", secure=True)
    csrf = client.cookies["csrftoken"]
    response = client.post(
        "/admin/login/",
        {"username": "ops", "password": PASSWORD, "csrfmiddlewaretoken": csrf.value},
        secure=True,
        HTTP_REFERER="https://testserver/admin/login/",
    )

    assert response.status_code == 302
    for name in ("sessionid", "csrftoken"):
        cookie = client.cookies[name]
        assert cookie["secure"] is True, name
        assert cookie["httponly"] is True, name
        assert cookie["samesite"] == "Lax", name


def attempt(password: str, *, username: str = "ops", address: str = "203.0.113.7"):
    return Client(REMOTE_ADDR=address).post(
        "/admin/login/", {"username": username, "password": password}
    )


@pytest.mark.django_db
def test_repeated_wrong_passwords_lock_that_username_from_that_address(settings, staff):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert attempt("wrong").status_code == 200  # the form again, with its error
    assert attempt("wrong").status_code == 429

    locked = attempt(PASSWORD)  # even the right password waits out the lock

    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed sign-ins" in page
    assert "<strong>ops</strong>" in page and "after 3 wrong passwords" in page
    assert "Try again in" in page


@pytest.mark.django_db
def test_a_lockout_spares_other_addresses_and_other_usernames(settings, staff):
    settings.AXES_FAILURE_LIMIT = 3
    get_user_model().objects.create_superuser("colleague", "c@example.com", PASSWORD)
    for _ in range(3):
        attempt("wrong")

    assert attempt(PASSWORD, address="198.51.100.9").status_code == 302
    assert attempt(PASSWORD, username="colleague").status_code == 302
    assert attempt(PASSWORD).status_code == 429


@pytest.mark.django_db
def test_a_success_before_the_limit_starts_the_count_again(settings, staff):
    settings.AXES_FAILURE_LIMIT = 3
    attempt("wrong")
    attempt("wrong")
    assert attempt(PASSWORD).status_code == 302
    attempt("wrong")
    attempt("wrong")
    assert attempt(PASSWORD).status_code == 302


def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(rf, settings):
    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7", REMOTE_ADDR="10.0.0.2")
    settings.FORWARDED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"
    settings.FORWARDED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.7"  # never the client-written 6.6.6.6


def browser_problems(page) -> list[str]:
    """Console errors and warnings (CSP violations land there), script errors, and
    failed loads other than the favicon Chromium asks for on its own."""
    problems: list[str] = []

    def on_console(message) -> None:
        if message.type in {"error", "warning"} and "Failed to load resource" not in message.text:
            problems.append(message.text)

    def on_response(response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            problems.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_and_site_pages_raise_no_policy_violation_in_chromium(page, live_server, staff):
    problems = browser_problems(page)

    page.goto(live_server.url + "/")
    page.goto(live_server.url + "/login/")
    page.goto(live_server.url + "/admin/login/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(live_server.url + "/admin/")
    page.goto(live_server.url + "/admin/auth/user/")
    page.click("#result_list tbody input.action-select")  # the changelist's own JS runs
    assert page.locator(".action-counter").inner_text().startswith("1 of 1")
    page.goto(live_server.url + "/admin/auth/user/add/")

    assert [p for p in problems if "Content Security Policy" in p] == []
    assert problems == []


@pytest.mark.django_db
def test_password_logins_are_logged_by_axes_and_x_sign_ins_are_not(x_sandbox, settings, staff):
    from axes.models import AccessLog

    from tests.test_signin_flows import point_site_at, sign_in

    point_site_at(x_sandbox, settings)
    assert attempt(PASSWORD).status_code == 302
    assert list(AccessLog.objects.values_list("username", flat=True)) == ["ops"]

    sign_in(Client(), persona="grace_hopper")
    assert list(AccessLog.objects.values_list("username", flat=True)) == ["ops"]
