from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class XOAuth1Config(AppConfig):
    """Sign in with X over OAuth 1.0a (allauth's `twitter` provider id)."""

    name = "accounts.providers.twitter"
    label = "x_oauth1"
    verbose_name = _("Sign in with X (OAuth 1.0a)")
