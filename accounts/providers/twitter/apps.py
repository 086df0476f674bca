from django.apps import AppConfig


class XOAuth1Config(AppConfig):
    """Sign in with X over OAuth 1.0a (allauth's `twitter` provider id)."""

    name = "accounts.providers.twitter"
    label = "x_oauth1"
    verbose_name = "Sign in with X (OAuth 1.0a)"
