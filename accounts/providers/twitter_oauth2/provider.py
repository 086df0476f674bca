"""allauth's `twitter_oauth2` provider (OAuth 2.0 with PKCE), with X's URLs from settings."""

from allauth.socialaccount.providers.twitter_oauth2.provider import (
    TwitterOAuth2Account,
    TwitterOAuth2Provider,
)
from django.conf import settings
from django.http import HttpRequest

from accounts.providers.twitter_oauth2.views import XOAuth2Adapter


class XOAuth2Account(TwitterOAuth2Account):
    def get_profile_url(self) -> str | None:
        username = self.get_username()
        return f"{settings.X_WEB_BASE_URL}/{username}" if username else None


class XOAuth2Provider(TwitterOAuth2Provider):
    """Same id, name and flow as allauth's; only where X lives and the scopes differ."""

    account_class = XOAuth2Account
    oauth2_adapter_class = XOAuth2Adapter

    def get_default_scope(self) -> list[str]:
        # offline.access makes X issue a refresh token, so the token outlives its 2 hours.
        return list(settings.X_OAUTH2_SCOPES)

    def get_scope_from_request(self, request: HttpRequest) -> list[str]:
        # Ignore allauth's `scope` query: a link must not widen what we ask X for.
        return self.get_scope()

    def get_auth_params_from_request(self, request: HttpRequest, action) -> dict:
        # Ignore allauth's `auth_params` query: it could override redirect_uri.
        return self.get_auth_params()


provider_classes = [XOAuth2Provider]
