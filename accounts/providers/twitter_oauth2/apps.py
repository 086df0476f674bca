from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class XOAuth2Config(AppConfig):
    """Sign in with X over OAuth 2.0 with PKCE (allauth's `twitter_oauth2` provider id)."""

    name = "accounts.providers.twitter_oauth2"
    label = "x_oauth2"
    verbose_name = _("Sign in with X (OAuth 2.0)")
