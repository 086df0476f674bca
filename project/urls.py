from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from project.health import healthz

urlpatterns = [
    path("", account_views.home, name="home"),
    path("admin/", admin.site.urls),
    # Before allauth's: /login/, /profile/, and /accounts/login/ sent to /login/.
    path("", include("accounts.urls")),
    # Of allauth, only what signing in with X needs. With SOCIALACCOUNT_ONLY its
    # account URLs are login (sent to /login/ above), logout and the inactive-account
    # page; then each X provider's login and callback. allauth's password, email,
    # signup and connection pages are not routed at all.
    path("accounts/", include("allauth.account.urls")),
    path("accounts/", include("accounts.providers.twitter.urls")),
    path("accounts/", include("accounts.providers.twitter_oauth2.urls")),
    # set_language: the language switcher's POST target (keeps the choice in a cookie).
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", account_views.favicon),
]

handler500 = "project.errors.server_error"
