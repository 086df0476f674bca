"""OAuth 2.0 (PKCE) sign-in views: allauth's, with X's URLs from settings.

The callback first checks the `state` against what this browser is waiting for,
so a missing, foreign or replayed state each get their own answer.
"""

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.models import SocialApp, SocialLogin, SocialToken
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import (
    OAuth2Adapter,
    OAuth2CallbackView,
    OAuth2LoginView,
)
from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.http import Http404, HttpRequest, HttpResponse

from accounts import signin, x_client
from accounts.models import TokenKind
from accounts.x_client import V2_USER_FIELDS, XUser


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

    @property
    def profile_url(self) -> str:
        return x_client.api_url("/2/users/me")

    def complete_login(
        self, request: HttpRequest, app: SocialApp, token: SocialToken, **kwargs
    ) -> SocialLogin:
        grant = kwargs.get("response") or {}
        signin.note_issued(
            request,
            TokenKind.OAUTH2,
            access_token=token.token,
            refresh_token=grant.get("refresh_token", ""),
        )
        data = self.get_user_info(token)
        login = self.get_provider().sociallogin_from_response(request, data)
        return signin.attach(
            login,
            signin.XSignIn(
                kind=TokenKind.OAUTH2,
                x_user=XUser.from_v2(data),
                access_token=token.token,
                refresh_token=grant.get("refresh_token", ""),
                expires_in=_seconds(grant.get("expires_in")),
                scopes=grant.get("scope", ""),
            ),
        )

    def get_user_info(self, token: SocialToken) -> dict:
        """`users/me` with every profile field we keep."""
        with get_adapter().get_requests_session() as session:
            response = session.get(
                self.profile_url,
                params={"user.fields": V2_USER_FIELDS},
                headers={"Authorization": f"Bearer {token.token}"},
            )
        data = response.json().get("data")
        if not isinstance(data, dict) or "id" not in data:
            raise OAuth2Error("users/me answered without a user")
        return data


def _seconds(value) -> int | None:
    try:
        return int(value) if value else None
    except (TypeError, ValueError):
        return None


def _configured_provider(adapter: OAuth2Adapter):
    try:
        return adapter.get_provider()
    except SocialApp.DoesNotExist:
        raise Http404("Sign-in with X over OAuth 2.0 is not configured.") from None


class XOAuth2LoginView(OAuth2LoginView):
    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        provider = _configured_provider(self.adapter)
        try:
            return super().dispatch(request, *args, **kwargs)
        except UpdateError as exc:
            signin.forget_ended_session(request)
            return render_authentication_error(request, provider, exception=exc)


class XOAuth2CallbackView(OAuth2CallbackView):
    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        provider = _configured_provider(self.adapter)
        try:
            signin.check_oauth2_callback(request, provider.sub_id)
        except signin.SignInRefused as exc:
            return render_authentication_error(request, provider, exception=exc)
        try:
            response = super().dispatch(request, *args, **kwargs)
        except UpdateError as exc:
            signin.end_grant_not_kept(request, failed=True)
            signin.forget_ended_session(request)
            return render_authentication_error(request, provider, exception=exc)
        except BaseException:
            signin.end_grant_not_kept(request, failed=True)
            raise
        signin.end_grant_not_kept(request)
        # allauth has used up the state whatever happened; a second visit is a replay.
        signin.mark_spent(request, provider.sub_id, request.GET.get("state", ""))
        signin.save_session_despite_error(request, response)
        return response


oauth2_login = XOAuth2LoginView.adapter_view(XOAuth2Adapter)
oauth2_callback = XOAuth2CallbackView.adapter_view(XOAuth2Adapter)
