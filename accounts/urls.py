from django.urls import path
from django.views.generic import RedirectView

from accounts import views

urlpatterns = [
    path("login/", views.login_page, name="login"),
    # allauth's own sign-in page would offer a password form; everyone uses ours.
    path(
        "accounts/login/",
        RedirectView.as_view(pattern_name="login", query_string=True),
    ),
    path("profile/", views.profile, name="profile"),
    path("profile/disconnect/", views.disconnect, name="disconnect_x"),
]
