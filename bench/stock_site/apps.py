"""The one change to stock allauth: its `twitter` provider talks to the X sandbox.

allauth's provider has X's real URLs as class attributes, with no setting to
change them, so they are set here once at start-up: the smallest
change that points it elsewhere, the way a hosts-file entry would (the sandbox
speaks plain HTTP, so X's host name cannot simply be resolved to it).
"""

from django.apps import AppConfig
from django.conf import settings


class StockSiteConfig(AppConfig):
    name = "bench.stock_site"

    def ready(self) -> None:
        from allauth.socialaccount.providers.twitter import provider, views

        sandbox = settings.X_SANDBOX_URL
        adapter = views.TwitterOAuthAdapter
        adapter.request_token_url = f"{sandbox}/oauth/request_token"
        adapter.access_token_url = f"{sandbox}/oauth/access_token"
        adapter.authorize_url = f"{sandbox}/oauth/authenticate"
        views.TwitterAPI.url = f"{sandbox}/1.1/account/verify_credentials.json"
        provider.TwitterProvider.get_auth_url = lambda self, request, action: None
