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
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.models import SocialApp, SocialLogin, SocialToken
from allauth.socialaccount.providers.oauth.client import OAuthClient, get_token_prefix
from allauth.socialaccount.providers.oauth.oauth1_auth import OAuth1
from allauth.socialaccount.providers.oauth.views import (
    OAuthAdapter,
    OAuthCallbackView,
    OAuthLoginView,
)
from django.contrib.sessions.backends.base import UpdateError
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from accounts import signin, x_client
from accounts.models import TokenKind
from accounts.x_client import XUser

VERIFY_CREDENTIALS_PATH = "/1.1/account/verify_credentials.json"
# Everything the profile needs and nothing more: no email (we do not keep it, and
# an email clash would make allauth park the sign-in, token included, in the session).
VERIFY_CREDENTIALS_PARAMS = {
    "include_email": "false",
    "skip_status": "true",
    "include_entities": "false",
}


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
        signin.note_issued(
            request,
            TokenKind.OAUTH1,
            access_token=token.token,
            token_secret=token.token_secret,
        )
        data = self.verify_credentials(app, token)
        login = self.get_provider().sociallogin_from_response(request, data)
        return signin.attach(
            login,
            signin.XSignIn(
                kind=TokenKind.OAUTH1,
                x_user=XUser.from_v1(data),
                access_token=token.token,
                token_secret=token.token_secret,
            ),
        )

    def verify_credentials(self, app: SocialApp, token: SocialToken) -> dict:
        """X's v1.1 user object for the token X just issued."""
        auth = OAuth1(
            app.client_id,
            client_secret=app.secret,
            resource_owner_key=token.token,
            resource_owner_secret=token.token_secret,
        )
        with get_adapter().get_requests_session() as session:
            response = session.get(
                x_client.api_url(VERIFY_CREDENTIALS_PATH),
                params=VERIFY_CREDENTIALS_PARAMS,
                auth=auth,
            )
        return response.json()


def _configured_provider(adapter: OAuthAdapter):
    try:
        return adapter.get_provider()
    except SocialApp.DoesNotExist:
        raise Http404("Sign-in with X over OAuth 1.0a is not configured.") from None


class XOAuthLoginView(OAuthLoginView):
    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        provider = _configured_provider(self.adapter)
        try:
            return super().dispatch(request, *args, **kwargs)
        except requests.RequestException as exc:
            # Getting the request token is the one call to X before the redirect.
            return render_authentication_error(request, provider, exception=exc)
        except UpdateError as exc:
            signin.forget_ended_session(request)
            return render_authentication_error(request, provider, exception=exc)


class XOAuthCallbackView(OAuthCallbackView):
    def dispatch(self, request: HttpRequest) -> HttpResponse:
        provider = _configured_provider(self.adapter)
        token_key = request_token_session_key(self.adapter)
        started, others_pending = signin.take_oauth1_request_token(request)
        try:
            signin.check_oauth1_callback(request, started, others_pending)
            signin.resume_oauth1_sign_in(request, started, token_key)
            response = super().dispatch(request)
        except (signin.SignInRefused, requests.RequestException, PermissionDenied) as exc:
            signin.end_grant_not_kept(request, failed=True)
            response = render_authentication_error(request, provider, exception=exc)
        except UpdateError as exc:
            signin.end_grant_not_kept(request, failed=True)
            signin.forget_ended_session(request)
            return render_authentication_error(request, provider, exception=exc)
        except BaseException:
            signin.end_grant_not_kept(request, failed=True)
            raise
        signin.end_grant_not_kept(request)
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
