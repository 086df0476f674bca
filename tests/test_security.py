"""Security headers, cookies, the Content-Security-Policy in a real browser, and admin
login throttling (django-axes, per username and address)."""

import pytest
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import Client

from project.middleware import ContentSecurityPolicyMiddleware
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
    settings.X_API_BASE_URL = "https://api.x.com"
    settings.X_WEB_BASE_URL = "https://x.com"
    settings.X_SANDBOX = False

    directives = csp_directives(client.get("/login/"))

    assert sorted(directives["form-action"]) == ["'self'", "https://api.x.com", "https://x.com"]
    assert "https://api.x.com" not in directives["img-src"]


@pytest.mark.parametrize("sandbox", [False, True])
def test_the_policy_built_once_is_the_one_django_csp_builds_each_time(rf, settings, sandbox):
    settings.X_SANDBOX = sandbox
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = (
        "http://127.0.0.1:8001" if sandbox else "https://api.x.com"
    )
    middleware = ContentSecurityPolicyMiddleware(lambda request: HttpResponse())

    reused = middleware.process_response(rf.get("/"), HttpResponse())
    built = CSPMiddleware.process_response(middleware, rf.get("/"), HttpResponse())

    assert reused["Content-Security-Policy"] == built["Content-Security-Policy"]
    assert ("http://127.0.0.1:8001" in csp_directives(reused)["img-src"]) is sandbox


def test_a_nonce_asked_for_after_the_policy_was_written_is_an_error(rf):
    """A nonce the header no longer carries would make the browser refuse the script."""
    middleware = ContentSecurityPolicyMiddleware(lambda request: HttpResponse())
    request = rf.get("/")
    middleware.process_request(request)

    middleware.process_response(request, HttpResponse())

    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)


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
