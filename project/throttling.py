"""Throttling password sign-ins (the admin login) with django-axes.

Failures are counted per username *and* client address, so a guesser is stopped
without locking a staff member out from everywhere and without blocking a whole
office or mobile network behind one address.
"""

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY
from django.http import HttpRequest

PASSWORD_BACKENDS = {"django.contrib.auth.backends.ModelBackend"}


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lockout check for web logins; calls without a request pass through.

    A login form always passes the request. `authenticate()` without one comes from
    code we run ourselves (a shell, a management command, a test's `client.login`),
    which no remote guesser can reach; axes itself would refuse it with an error.
    """

    def authenticate(self, request: HttpRequest | None, *args, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


def login_identity(request: HttpRequest, credentials: dict | None) -> str | None:
    """The username failures are counted against: the identity the login will authenticate.

    allauth's backend, which the admin login also goes through, finds a user whatever
    the case of the letters typed (`rEvoker` signs in as `revoker`). Counted as typed,
    each spelling would get its own five tries at the same account; lowercased, as the
    backend compares them, every spelling shares one count and one lock. Cut to the
    length axes can store: no account has a longer name, and a 10 kB guess must be
    counted, not fail the database insert with a 500.
    """
    field = getattr(settings, "AXES_USERNAME_FORM_FIELD", "username")
    if credentials:
        username = credentials.get(field)
    else:
        username = getattr(request, "data", request.POST).get(field)
    if not isinstance(username, str):
        return username
    return username.lower()[: AccessAttempt._meta.get_field("username").max_length]


def client_ip(request: HttpRequest) -> str:
    """The address failures are counted against.

    Behind `FORWARDED_PROXY_COUNT` trusted proxies the client is the entry that
    many places from the right of X-Forwarded-For (each proxy appends the address
    it saw); anything further left was written by the client and is not trusted.
    """
    proxies = settings.FORWARDED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")


class PasswordLoginAxesHandler(AxesDatabaseHandler):
    """Axes' bookkeeping for password logins only.

    On every successful login axes writes an access-log row and clears failed
    password attempts: five queries and two transactions. A sign-in with X uses no
    password, so there is nothing to clear; it is recorded as a SignInEvent instead.
    Skipping it takes those queries off every X sign-in.
    """

    def user_logged_in(self, sender, request, user, **kwargs):
        if request.session.get(BACKEND_SESSION_KEY) not in PASSWORD_BACKENDS:
            return None
        return super().user_logged_in(sender, request, user, **kwargs)
