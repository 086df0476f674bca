from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from project.health import healthz

urlpatterns = [
    path("", account_views.home, name="home"),
    path("admin/", admin.site.urls),
    # Before allauth's: /login/, /profile/, and /accounts/login/ sent to /login/.
    path("", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", account_views.favicon),
]
