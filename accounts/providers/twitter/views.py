"""OAuth 1.0a sign-in views: allauth's, with X's URLs from settings and the seed's checks.

Four things allauth's OAuth 1.0a client does not do and we need:
- compare the callback's oauth_token with the request token this browser got;
- keep the access token out of the session (allauth parks it there for its API
  helper, and the session is a database row);
- keep each pending request token apart (two tabs can sign in at once), its
  secret encrypted and for ten minutes at most (accounts.signin);
- drop the request token once the callback has been handled, whatever happened.
"""

import requests
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.models import SocialApp, SocialLogin, SocialToken
from allauth.socialaccount.providers.oauth.client import OAuthClient, get_token_prefix
from allauth.socialaccount.providers.oauth.views import (
    OAuthAdapter,
    OAuthCallbackView,
    OAuthLoginView,
)
from django.contrib.sessions.backends.base import UpdateError
from django.http import HttpRequest, HttpResponse

from accounts import signin, x_client
from accounts.models import TokenKind


def request_token_session_key(adapter: OAuthAdapter) -> str:
    return f"oauth_{get_token_prefix(adapter.request_token_url)}_request_token"


def access_token_session_key(adapter: OAuthAdapter) -> str:
    return f"oauth_{get_token_prefix(adapter.request_token_url)}_access_token"


class XOAuthClient(OAuthClient):
    def get_access_token(self) -> dict:
        prefix = get_token_prefix(self.request_token_url)
        try:
            access_token = super().get_access_token()
        finally:
            # The request token is spent by this exchange, whatever X answered.
            self.request.session.pop(f"oauth_{prefix}_request_token", None)
        # allauth stores the access token in the session for its own API helper; we
        # hand it to complete_login directly, so it never reaches django_session.
        self.request.session.pop(f"oauth_{prefix}_access_token", None)
        return access_token


class XOAuthAdapter(OAuthAdapter):
    provider_id = signin.OAUTH1_PROVIDER
    client_class = XOAuthClient

    @property
    def request_token_url(self) -> str:
        return x_client.api_url("/oauth/request_token")

    @property
    def access_token_url(self) -> str:
        return x_client.api_url("/oauth/access_token")

    @property
    def authorize_url(self) -> str:
        return x_client.api_url("/oauth/authenticate")

    def complete_login(
        self, request: HttpRequest, app: SocialApp, token: SocialToken, **kwargs
    ) -> SocialLogin:
        return signin.complete_login(request, self.get_provider(), TokenKind.OAUTH1, token)


class XOAuthLoginView(OAuthLoginView):
    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        provider = signin.configured_provider(self.adapter, "OAuth 1.0a")
        try:
            return super().dispatch(request, *args, **kwargs)
        except requests.RequestException as exc:
            # Getting the request token is the one call to X before the redirect.
            return render_authentication_error(request, provider, exception=exc)
        except UpdateError as exc:
            return signin.session_ended(request, provider, exc)


class XOAuthCallbackView(OAuthCallbackView):
    def dispatch(self, request: HttpRequest) -> HttpResponse:
        provider = signin.configured_provider(self.adapter, "OAuth 1.0a")
        token_key = request_token_session_key(self.adapter)
        started, others_pending = signin.take_oauth1_request_token(request)
        allauths_callback = super().dispatch

        def callback() -> HttpResponse:
            signin.check_oauth1_callback(request, started, others_pending)
            signin.resume_oauth1_sign_in(request, started, token_key)
            return allauths_callback(request)

        try:
            response = signin.run_callback(request, provider, callback)
        except UpdateError as exc:
            return signin.session_ended(request, provider, exc)
        self._forget_request_token(request, token_key, started)
        signin.save_session_despite_error(request, response)
        return response

    def _forget_request_token(
        self, request: HttpRequest, token_key: str, started: signin.PendingOAuth1 | None
    ) -> None:
        """A request token is good for one callback: drop it and remember it was used."""
        request.session.pop(token_key, None)
        request.session.pop(access_token_session_key(self.adapter), None)
        if started is not None:
            signin.mark_spent(request, signin.OAUTH1_PROVIDER, started.oauth_token)


oauth_login = XOAuthLoginView.adapter_view(XOAuthAdapter)
oauth_callback = XOAuthCallbackView.adapter_view(XOAuthAdapter)
