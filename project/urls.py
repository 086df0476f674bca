from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from accounts import views as account_views
from project.health import healthz

urlpatterns = [
    path("", account_views.home, name="home"),
    path("admin/", admin.site.urls),
    # Before allauth's: /login/, /profile/, and /accounts/login/ sent to /login/.
    path("", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages (the admin's) that name no icon.
    path("favicon.ico", RedirectView.as_view(url=static("img/favicon.svg"), permanent=True)),
]
