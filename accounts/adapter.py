"""django-allauth adapters: where allauth's sign-in flow meets our rules.

People sign in with X only; local accounts with passwords are for staff and are
made with `createsuperuser` or in the admin, so allauth's own signup is closed.
The social adapter ties each sign-in to one user per X account, keeps the token
in XToken (encrypted) rather than allauth's SocialToken (clear text), and turns
every failure into a page that says what happened.
"""

import threading
from functools import partial
from http.cookiejar import DefaultCookiePolicy

import requests
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.utils import user_username
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount import app_settings
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp, SocialLogin
from allauth.socialaccount.providers.base import AuthProcess
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts import signin, x_client, x_values

_thread = threading.local()


class XSignInSession(requests.Session):
    """The HTTP session for allauth's sign-in calls to X, one per thread.

    allauth opens and closes a session around every call; keeping one per thread
    saves a session setup on each, and it shares the thread's connection pool with
    accounts.x_client (see `configure_session`), so a sign-in reuses a kept-alive
    connection to X. It stores no cookies, so nothing X sets for one person's
    sign-in rides along with the next.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.hooks["response"].append(signin.raise_for_x_status)
        x_client.configure_session(self)

    def request(self, *args, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", settings.X_HTTP_TIMEOUT)
        return super().request(*args, **kwargs)

    def close(self) -> None:
        """Ignored: allauth's `with session:` must not close the thread's shared pool."""


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return True

    def is_auto_signup_allowed(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        # Never park a sign-in on allauth's signup form: that would serialize the
        # token into the session (a database row) in clear.
        return True

    def list_apps(self, request: HttpRequest, provider=None, client_id=None) -> list[SocialApp]:
        """The X apps configured from the environment (settings.SOCIALACCOUNT_PROVIDERS).

        Credentials come from the environment only, so allauth's SocialApp table is
        never read: that saves a query on every provider lookup (several per sign-in)
        and means no stray admin row can shadow or duplicate the configured app.
        """
        apps = []
        for provider_id, config in app_settings.PROVIDERS.items():
            app_config = config.get("APP")
            if not app_config or provider not in (None, provider_id):
                continue
            app = SocialApp(provider=provider_id, **app_config)
            if client_id in (None, app.client_id):
                apps.append(app)
        return apps

    def populate_user(self, request: HttpRequest, sociallogin: SocialLogin, data: dict):
        """allauth's user fields and its copy of X's answer, cleaned as the profile is.

        allauth has just copied X's answer into the SocialAccount it will save (and
        update on every sign-in): a NUL in it fails that save on PostgreSQL, after X
        issued a grant. An id that is not X's kind of id is refused, never repaired.
        """
        account = sociallogin.account
        try:
            x_values.x_user_id(account.uid)
        except ValueError as exc:
            self.on_authentication_error(request, account.get_provider(request), exception=exc)
        account.extra_data = x_values.clean_json(account.extra_data)
        fields = {name: x_values.clean_text(value) for name, value in data.items()}
        return super().populate_user(request, sociallogin, fields)

    def get_requests_session(self) -> requests.Session:
        """The session allauth's sign-in calls to X use: kept alive, our timeout, X's statuses."""
        session = getattr(_thread, "x_session", None)
        if session is None:
            session = _thread.x_session = XSignInSession()
        return session

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        if sociallogin.state.get("process") == AuthProcess.CONNECT:
            # One X account per user: attaching a second one would split the profile.
            messages.error(request, _("Each account here is linked to exactly one X account."))
            raise ImmediateHttpResponse(redirect("profile"))
        sign_in = signin.sign_in_of(request, sociallogin)
        signin.link_to_existing_user(request, sociallogin, sign_in)
        if signin.is_known(sociallogin) and sociallogin.user.is_active:
            signin.record_sign_in(sociallogin.user, sign_in)
            signin.note_kept(request)

    def save_user(self, request: HttpRequest, sociallogin: SocialLogin, form=None):
        sign_in = signin.sign_in_of(request, sociallogin)
        user_username(sociallogin.user, signin.username_for(sign_in.x_user.screen_name))
        create_user = partial(super().save_user, request, sociallogin, form)
        user = signin.sign_up(sociallogin, sign_in, create_user)
        signin.note_kept(request)
        return user

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider,
        error=None,
        exception=None,
        extra_context=None,
    ) -> None:
        failure = signin.failure_for(request, error, exception)
        signin.log_failure(provider.id, failure, signin.describe(exception, request))
        response = render(
            request,
            "accounts/signin_failed.html",
            {"failure": failure},
            status=failure.status,
        )
        raise ImmediateHttpResponse(response)
