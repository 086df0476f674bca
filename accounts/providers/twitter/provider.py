"""allauth's `twitter` provider (OAuth 1.0a), with X's URLs taken from settings."""

from allauth.socialaccount.providers.base import AuthAction
from allauth.socialaccount.providers.twitter.provider import TwitterAccount, TwitterProvider
from django.conf import settings
from django.http import HttpRequest

from accounts import signin, x_client
from accounts.providers.twitter.views import XOAuthAdapter, request_token_session_key


class XAccount(TwitterAccount):
    def get_profile_url(self) -> str | None:
        screen_name = self.get_screen_name()
        return f"{settings.X_WEB_BASE_URL}/{screen_name}" if screen_name else None


class XOAuth1Provider(TwitterProvider):
    """Same id, name and flow as allauth's; only where X lives differs."""

    account_class = XAccount
    oauth_adapter_class = XOAuthAdapter

    def get_auth_url(self, request: HttpRequest, action) -> str:
        # /oauth/authenticate skips the consent screen for people who already
        # authorized the app; re-authentication must show it again.
        if action == AuthAction.REAUTHENTICATE:
            return x_client.api_url("/oauth/authorize")
        return x_client.api_url("/oauth/authenticate")

    def get_auth_params_from_request(self, request: HttpRequest, action) -> dict:
        # Ignore allauth's `auth_params` query: nobody outside may add to X's URL.
        return self.get_auth_params()

    def redirect(self, request: HttpRequest, process, next_url=None, data=None, **kwargs):
        """allauth's redirect to X, then its request token moved to our pending list."""
        response = super().redirect(request, process, next_url, data, **kwargs)
        signin.park_oauth1_request_token(
            request, request_token_session_key(self.get_oauth_adapter(request))
        )
        return response


provider_classes = [XOAuth1Provider]
