from django.urls import path
from django.views.generic import RedirectView

from accounts import account_views, views

urlpatterns = [
    path("login/", views.login_page, name="login"),
    # allauth's own sign-in page would offer a password form; everyone uses ours.
    path(
        "accounts/login/",
        RedirectView.as_view(pattern_name="login", query_string=True),
    ),
    path("profile/", views.profile, name="profile"),
    path("account/", account_views.account, name="account"),
    path("account/data.json", account_views.download, name="account_download"),
    path("account/disconnect/", account_views.disconnect, name="disconnect_x"),
    path("account/delete/", account_views.delete, name="account_delete"),
]
