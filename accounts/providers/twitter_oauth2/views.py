"""OAuth 2.0 (PKCE) sign-in views: allauth's, with X's URLs from settings.

The callback first checks the `state` against what this browser is waiting for,
so a missing, foreign or replayed state each get their own answer.
"""

from functools import partial

from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.models import SocialApp, SocialLogin, SocialToken
from allauth.socialaccount.providers.oauth2.views import (
    OAuth2Adapter,
    OAuth2CallbackView,
    OAuth2LoginView,
)
from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.http import HttpRequest, HttpResponse

from accounts import signin, x_client
from accounts.models import TokenKind


class XOAuth2Adapter(OAuth2Adapter):
    provider_id = signin.OAUTH2_PROVIDER
    # X's token endpoint wants a confidential client's credentials in HTTP Basic.
    basic_auth = True

    @property
    def access_token_url(self) -> str:
        return x_client.api_url("/2/oauth2/token")

    @property
    def authorize_url(self) -> str:
        return f"{settings.X_WEB_BASE_URL}/i/oauth2/authorize"

    def complete_login(
        self, request: HttpRequest, app: SocialApp, token: SocialToken, **kwargs
    ) -> SocialLogin:
        grant = kwargs.get("response") or {}
        return signin.complete_login(
            request, self.get_provider(), TokenKind.OAUTH2, token, scopes=grant.get("scope", "")
        )


class XOAuth2LoginView(OAuth2LoginView):
    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        provider = signin.configured_provider(self.adapter, "OAuth 2.0")
        try:
            return super().dispatch(request, *args, **kwargs)
        except UpdateError as exc:
            return signin.session_ended(request, provider, exc)


class XOAuth2CallbackView(OAuth2CallbackView):
    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        provider = signin.configured_provider(self.adapter, "OAuth 2.0")
        try:
            signin.check_oauth2_callback(request, provider.sub_id)
        except signin.SignInRefused as exc:
            return render_authentication_error(request, provider, exception=exc)
        allauths_callback = partial(super().dispatch, request, *args, **kwargs)
        try:
            response = signin.run_callback(request, provider, allauths_callback)
        except UpdateError as exc:
            return signin.session_ended(request, provider, exc)
        # allauth has used up the state whatever happened; a second visit is a replay.
        signin.mark_spent(request, provider.sub_id, request.GET.get("state", ""))
        signin.save_session_despite_error(request, response)
        return response


oauth2_login = XOAuth2LoginView.adapter_view(XOAuth2Adapter)
oauth2_callback = XOAuth2CallbackView.adapter_view(XOAuth2Adapter)
