"""Pages around signing in with X: the sign-in page and the profile (the rest of a
person's account, Disconnect X included, is in accounts.account_views)."""

from urllib.parse import urlsplit

from allauth.account.utils import get_next_redirect_url
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import redirect, render
from django.templatetags.static import static

from accounts import signin
from accounts.models import SECRET_COLUMNS, Profile


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on pages (the admin's) that name no icon.

    Resolved per request, not at import: the hashed name exists only after collectstatic.
    """
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))


def login_page(request: HttpRequest) -> HttpResponse:
    """One "Sign in with X" button per configured method (the seed's /login/)."""
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    context = {
        "methods": signin.sign_in_methods(request),
        "next_url": get_next_redirect_url(request) or "",
    }
    return render(request, "accounts/login.html", context)


def _web_link(url: str) -> str:
    """The URL if it is safe to put in an href or src (http or https only), else ""."""
    return url if urlsplit(url).scheme in ("http", "https") else ""


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    profile, _ = Profile.objects.get_or_create(user=request.user)
    context = {
        "profile": profile,
        # The page shows a token's state, never the token: leave the secrets undecrypted.
        "tokens": profile.tokens.defer(*SECRET_COLUMNS).order_by("kind"),
        "website": _web_link(profile.url),
        "avatar": _web_link(profile.profile_image_url),
    }
    return render(request, "accounts/profile.html", context)
