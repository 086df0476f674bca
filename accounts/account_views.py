"""A person's own account: see what is stored, download it, disconnect X, delete it all.

Thin views over accounts.account_data, accounts.signin.disconnect_x and
accounts.account_deletion. Every change asks first: GET shows a confirmation
page, only POST acts.
"""

import json

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import account_data, account_deletion, signin
from accounts.models import Profile, XToken


@never_cache
@login_required
def account(request: HttpRequest) -> HttpResponse:
    """What the site stores about the signed-in person and what happened to their grants."""
    return render(request, "accounts/account.html", account_data.account_overview(request.user))


@never_cache
@login_required
def download(request: HttpRequest) -> HttpResponse:
    """Everything stored about the person (no secrets) as one JSON file, made now."""
    data = account_data.personal_data(request.user)
    body = json.dumps(data, ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    stamp = timezone.now().strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="my-data-{stamp}.json"'
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def disconnect(request: HttpRequest) -> HttpResponse:
    """GET: what Disconnect X will do. POST: revoke at X, delete here, sign out."""
    profile, _created = Profile.objects.get_or_create(user=request.user)
    if request.method == "GET":
        context = {
            "profile": profile,
            "grant_count": profile.tokens.count(),
            "x_only": not request.user.has_usable_password(),
        }
        return render(request, "accounts/disconnect_confirm.html", context)
    result = signin.disconnect_x(profile)
    if not result.ok:
        messages.error(request, result.message)
        return redirect("profile")
    logout(request)
    messages.success(request, result.message)
    return redirect("home")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest) -> HttpResponse:
    """GET: what deleting removes and keeps. POST with the typed @screen name: delete."""
    user = request.user
    word = account_deletion.confirmation_word(user)
    error = ""
    if request.method == "POST":
        if account_deletion.is_confirmed(user, request.POST.get("confirm", "")):
            deletion = account_deletion.delete_account(user)
            logout(request)
            messages.success(request, _deletion_message(deletion))
            return redirect("home")
        error = _("That is not %(word)s. Type it exactly to delete your account.") % {"word": word}
    context = {
        "profile": Profile.objects.filter(user=user).first(),
        "grant_count": XToken.objects.filter(profile__user=user).count(),
        "word": word,
        "error": error,
    }
    return render(request, "accounts/delete_confirm.html", context, status=400 if error else 200)


def _deletion_message(deletion: account_deletion.Deletion) -> str:
    if deletion.grants_pending:
        return _(
            "Your account is deleted. X has not yet confirmed that it revoked our access, "
            "so we keep asking it until it does."
        )
    return _("Your account is deleted, and our access to your X account is revoked at X.")
