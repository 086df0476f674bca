"""Sign in with X: the rules around allauth's OAuth exchange that allauth does not know.

allauth runs the OAuth 1.0a and OAuth 2.0 (PKCE) dances. This module decides the
rest, in plain functions the provider views and the allauth adapter call:

- a callback is checked against what this browser started before anyone talks to
  X: no pending request token or state ("we didn't redirect you to X"), a token or
  state that does not match ("tokens do not match"), a callback that was already
  used, or a person who pressed Cancel at X;
- every failure becomes one friendly page with a status that fits and one log line
  naming the case -- never a token, verifier, code or state;
- one X account is one local user, whichever method signed it in; each sign-in
  refreshes the profile from X and keeps the token only in XToken, encrypted.
"""

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import requests
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.socialaccount.adapter import get_adapter as get_social_adapter
from allauth.socialaccount.helpers import render_authentication_error
from allauth.socialaccount.internal import statekit
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialLogin, SocialToken
from allauth.socialaccount.providers.base.constants import AuthError
from allauth.socialaccount.providers.oauth.client import OAuthError
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django.contrib.sessions.backends.base import UpdateError
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import revocation, x_client
from accounts.crypto import TokenDecryptionError, decrypt, encrypt
from accounts.models import Profile, TokenKind, TokenStatus, XToken
from accounts.profiles import upsert_from_x
from accounts.secret_columns import SECRET_COLUMNS, hint_of
from accounts.tokens import store_token
from accounts.x_client import XError, XRateLimited, XUser

logger = logging.getLogger(__name__)

OAUTH1_PROVIDER = "twitter"
OAUTH2_PROVIDER = "twitter_oauth2"
KIND_BY_PROVIDER = {OAUTH1_PROVIDER: TokenKind.OAUTH1, OAUTH2_PROVIDER: TokenKind.OAUTH2}
# Callbacks already handled in this session, as fingerprints: enough to recognise a
# replay without keeping the request token or state itself.
SPENT_SESSION_KEY = "x_signin_spent_callbacks"
SPENT_REMEMBERED = 10
# OAuth 1.0a sign-ins started in this session, by request token (see below).
PENDING_OAUTH1_SESSION_KEY = "x_signin_oauth1_pending"
_ISSUED_ATTRIBUTE = "x_signin_issued"
SUPERSEDED_REASON = "replaced by a new sign-in"
ABANDONED_REASON = "sign-in abandoned after X issued a token"


@dataclass(frozen=True)
class Failure:
    """One way a sign-in can fail: what the person sees and what the log calls it."""

    case: str
    status: int
    title: str
    message: str


DENIED = Failure(
    "denied",
    403,
    gettext_lazy("You cancelled the sign-in at X"),
    gettext_lazy(
        "X did not share your account with us, so you are not signed in. Nothing was stored."
    ),
)
MISSING = Failure(
    "missing",
    400,
    gettext_lazy("We didn't send you to X"),
    gettext_lazy(
        "This sign-in did not start in this browser, or it started too long ago. "
        "Start again from our sign-in page."
    ),
)
MISMATCH = Failure(
    "mismatch",
    400,
    gettext_lazy("The sign-in tokens do not match"),
    gettext_lazy(
        "X sent back a different sign-in than the one this browser started, so we stopped "
        "to keep your account safe."
    ),
)
REPLAYED = Failure(
    "replayed",
    400,
    gettext_lazy("This sign-in link was already used"),
    gettext_lazy("Each trip back from X works once. Start a new sign-in instead."),
)
X_ERROR = Failure(
    "x_error",
    502,
    gettext_lazy("X could not complete the sign-in"),
    gettext_lazy("X answered with an error. Nothing was stored; please try again in a moment."),
)
X_RATE_LIMITED = Failure(
    "x_rate_limited",
    503,
    gettext_lazy("X asked us to slow down"),
    gettext_lazy(
        "X is limiting how often we can look up your account. Please try again in a few minutes."
    ),
)
X_UNREACHABLE = Failure(
    "x_unreachable",
    502,
    gettext_lazy("We could not reach X"),
    gettext_lazy("The connection to X failed. Nothing was stored; please try again in a moment."),
)
X_TIMEOUT = Failure(
    "x_timeout",
    504,
    gettext_lazy("X took too long to answer"),
    gettext_lazy("We gave up waiting for X. Nothing was stored; please try again in a moment."),
)
SESSION_ENDED = Failure(
    "session_ended",
    400,
    gettext_lazy("Your session ended during the sign-in"),
    gettext_lazy(
        "This browser was signed out while the sign-in was under way, for example from "
        "another tab. Nothing was stored; start again from our sign-in page."
    ),
)
FAILED = Failure(
    "failed",
    400,
    gettext_lazy("The sign-in could not be completed"),
    gettext_lazy("Something in the answer from X did not add up, so we did not sign you in."),
)


class SignInRefused(Exception):
    """A callback we refuse before talking to X; carries the failure to show."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.case)
        self.failure = failure


class XAnswered(requests.HTTPError):
    """X answered a sign-in call with an error status.

    The message names the status and path only: the query of a sign-in call can
    hold the verifier or code.
    """

    def __init__(self, response: requests.Response) -> None:
        path = urlsplit(response.url).path
        super().__init__(f"X answered {response.status_code} on {path}", response=response)
        self.status_code = response.status_code


def raise_for_x_status(response: requests.Response, *args, **kwargs) -> None:
    """requests response hook for allauth's sign-in calls to X.

    allauth turns every X error into one generic exception; raising our own first
    keeps the status, so the person sees whether X failed, throttled or refused.
    """
    if response.status_code >= 400:
        raise XAnswered(response)


@dataclass(frozen=True)
class SignInMethod:
    """One "Sign in with X" button on the sign-in page."""

    provider_id: str
    detail: str
    login_url: str
    primary: bool


def sign_in_methods(request: HttpRequest) -> list[SignInMethod]:
    """The methods with credentials configured, OAuth 2.0 (X's current default) first."""
    configured = {
        provider.id: provider
        for provider in get_social_adapter(request).list_providers(request)
        if provider.id in KIND_BY_PROVIDER
    }
    methods = []
    for provider_id in (OAUTH2_PROVIDER, OAUTH1_PROVIDER):
        if provider_id in configured:
            methods.append(
                SignInMethod(
                    provider_id=provider_id,
                    detail=KIND_BY_PROVIDER[provider_id].label,
                    login_url=configured[provider_id].get_login_url(request),
                    primary=not methods,
                )
            )
    return methods


# Callback checks -----------------------------------------------------------------


def _fingerprint(provider_id: str, value: str) -> str:
    return hashlib.sha256(f"{provider_id}\x00{value}".encode()).hexdigest()[:32]


def _was_spent(request: HttpRequest, provider_id: str, value: str) -> bool:
    return _fingerprint(provider_id, value) in request.session.get(SPENT_SESSION_KEY, [])


def mark_spent(request: HttpRequest, provider_id: str, value: str) -> None:
    """Remember that this request token or state has been used up in this session."""
    if not value:
        return
    spent = list(request.session.get(SPENT_SESSION_KEY, []))
    spent.append(_fingerprint(provider_id, value))
    request.session[SPENT_SESSION_KEY] = spent[-SPENT_REMEMBERED:]


def forget_ended_session(request: HttpRequest) -> None:
    """Start this browser afresh after its session row vanished mid-request.

    allauth saves the session in the middle of a sign-in (to stash or use up its
    state); when another request deleted that session meanwhile (a sign-out in
    another tab), the save raises UpdateError. Left alone, the same error would
    come back when SessionMiddleware saves at the end: dropping the session here
    lets the failure page be shown and its cookie be cleared.
    """
    request.session.flush()


def session_ended(request: HttpRequest, provider, exception: UpdateError) -> HttpResponse:
    """The failure page for a sign-in whose session another request deleted meanwhile."""
    forget_ended_session(request)
    return render_authentication_error(request, provider, exception=exception)


def save_session_despite_error(request: HttpRequest, response: HttpResponse) -> None:
    """Keep what a callback took out of the session even when X failed.

    Django's SessionMiddleware skips saving on 5xx answers, and our 502/503/504 pages
    are such answers: without this the used request token would stay in the session.
    """
    if response.status_code >= 500 and request.session.modified:
        request.session.save()


def _pending_states(request: HttpRequest, provider_id: str) -> set[str]:
    """The ids of the sign-ins this browser started with the provider and may still finish.

    allauth keeps them in the session for STATE_TTL seconds and refuses older ones.
    """
    now = time.time()
    return {
        state_id
        for state_id, stashed in statekit.get_states(request).items()
        if len(stashed) == 3
        and stashed[2] == provider_id
        and now - stashed[1] <= statekit.STATE_TTL
    }


# Pending OAuth 1.0a sign-ins -----------------------------------------------------------
#
# allauth keeps one request token per session, in clear, until the session ends: a
# second tab's sign-in overwrites the first's ("tokens do not match" when the first
# comes back) and an abandoned sign-in leaves its secret behind for weeks. Ours are
# kept per request token, the secret encrypted, for allauth's STATE_TTL at most, and
# each is taken out by its own callback whatever happens next.


@dataclass(frozen=True)
class PendingOAuth1:
    """One OAuth 1.0a sign-in this browser started and has not finished."""

    oauth_token: str
    oauth_token_secret: str = field(repr=False)
    state_id: str


def _live_pending(request: HttpRequest) -> dict[str, dict]:
    """The pending request tokens younger than STATE_TTL, the newest MAX_STATES of them."""
    pending = request.session.get(PENDING_OAUTH1_SESSION_KEY)
    if not isinstance(pending, dict):
        return {}
    oldest_allowed = time.time() - statekit.STATE_TTL
    live = [
        (token, entry)
        for token, entry in pending.items()
        if isinstance(entry, dict) and entry.get("at", 0) >= oldest_allowed
    ]
    live.sort(key=lambda item: item[1]["at"])
    return dict(live[-statekit.MAX_STATES :])


def _save_pending(request: HttpRequest, pending: dict[str, dict]) -> None:
    if pending:
        request.session[PENDING_OAUTH1_SESSION_KEY] = pending
    else:
        request.session.pop(PENDING_OAUTH1_SESSION_KEY, None)


def park_oauth1_request_token(request: HttpRequest, allauth_session_key: str) -> None:
    """Move the request token allauth just got from its one session slot into our list.

    Called right after allauth's redirect to X, when the newest OAuth 1.0a state in
    the session is the one stashed for this very request token.
    """
    request_token = request.session.pop(allauth_session_key, None)
    if not isinstance(request_token, dict) or not request_token.get("oauth_token"):
        return
    states = statekit.get_states(request)
    state_id = statekit.get_oldest_state(states, rev=True, provider_id=OAUTH1_PROVIDER)
    if state_id is None:
        return
    pending = _live_pending(request)
    pending[request_token["oauth_token"]] = {
        "secret": encrypt(request_token.get("oauth_token_secret", "")),
        "state": state_id,
        "at": time.time(),
    }
    _save_pending(request, _trimmed(pending))


def _trimmed(pending: dict[str, dict]) -> dict[str, dict]:
    newest = sorted(pending.items(), key=lambda item: item[1]["at"])[-statekit.MAX_STATES :]
    return dict(newest)


def take_oauth1_request_token(request: HttpRequest) -> tuple[PendingOAuth1 | None, bool]:
    """Take the callback's own pending sign-in out of the session, whatever happens next.

    Returns it (None if this browser has no live one for the callback's token) and
    whether the browser has any other sign-in pending (which tells "not started
    here" from "not the one started here").
    """
    returned = request.GET.get("oauth_token") or request.GET.get("denied") or ""
    pending = _live_pending(request)
    entry = pending.pop(returned, None) if returned else None
    _save_pending(request, pending)
    if entry is None:
        return None, bool(pending)
    try:
        secret = decrypt(entry["secret"])
    except TokenDecryptionError:
        return None, bool(pending)
    return PendingOAuth1(returned, secret, entry["state"]), bool(pending)


def check_oauth1_callback(
    request: HttpRequest, started: PendingOAuth1 | None, others_pending: bool
) -> None:
    """Refuse an OAuth 1.0a callback that is not the answer to this browser's request.

    allauth exchanges whatever verifier arrives for the request token in the session
    without comparing the callback's oauth_token to it; the seed did, and so do we.
    Checking allauth's pending state here too means a sign-in started too long ago
    is refused before X issues a token nobody would keep.
    """
    params = request.GET
    returned = params.get("oauth_token") or params.get("denied") or ""
    if returned and _was_spent(request, OAUTH1_PROVIDER, returned):
        raise SignInRefused(REPLAYED)
    if "denied" in params:
        raise SignInRefused(DENIED)
    if started is None:
        raise SignInRefused(MISMATCH if others_pending else MISSING)
    if not constant_time_compare(returned, started.oauth_token):
        raise SignInRefused(MISMATCH)
    if started.state_id not in _pending_states(request, OAUTH1_PROVIDER):
        raise SignInRefused(MISSING)


def resume_oauth1_sign_in(
    request: HttpRequest, started: PendingOAuth1, allauth_session_key: str
) -> None:
    """Hand allauth's callback this sign-in's request token and state, not the newest.

    allauth reads the request token from its one session slot and takes the newest
    OAuth 1.0a state; with two tabs that is the other tab's. Putting this sign-in's
    back in the slot and making its state the newest lets allauth finish the right one.
    """
    request.session[allauth_session_key] = {
        "oauth_token": started.oauth_token,
        "oauth_token_secret": started.oauth_token_secret,
    }
    states = statekit.get_states(request)
    state, _, provider_id = states[started.state_id]
    states[started.state_id] = (state, time.time(), provider_id)
    request.session[statekit.STATES_SESSION_KEY] = states


def check_oauth2_callback(request: HttpRequest, provider_id: str) -> None:
    """Refuse an OAuth 2.0 callback whose state this browser is not waiting for.

    allauth answers all three cases with one generic error; telling them apart
    gives the person (and the log) the real reason.
    """
    state_id = request.GET.get("state", "")
    if state_id and _was_spent(request, provider_id, state_id):
        raise SignInRefused(REPLAYED)
    pending = _pending_states(request, provider_id)
    if not pending:
        raise SignInRefused(MISSING)
    if state_id not in pending:
        raise SignInRefused(MISMATCH)


# Failures --------------------------------------------------------------------------


def failure_for(
    request: HttpRequest, error: str | None, exception: BaseException | None
) -> Failure:
    """Which failure an allauth authentication error is, from its code and exception."""
    if isinstance(exception, SignInRefused):
        return exception.failure
    if error == AuthError.CANCELLED:
        return DENIED
    if isinstance(exception, XError) and isinstance(
        exception.__cause__, requests.RequestException
    ):
        # accounts.x_client could not get an answer: the connection's story is the cause's.
        exception = exception.__cause__
    if isinstance(exception, XRateLimited):
        return X_RATE_LIMITED
    if isinstance(exception, XAnswered):
        return X_RATE_LIMITED if exception.status_code == 429 else X_ERROR
    # ConnectTimeout is both a Timeout and a ConnectionError: waiting is the story.
    if isinstance(exception, requests.Timeout):
        return X_TIMEOUT
    if isinstance(exception, requests.ConnectionError):
        return X_UNREACHABLE
    if isinstance(exception, requests.RequestException | OAuthError | OAuth2Error | XError):
        return X_ERROR
    if isinstance(exception, PermissionDenied):
        return MISSING
    if isinstance(exception, UpdateError):
        return SESSION_ENDED
    if exception is None and request.GET.get("error"):
        # X refused the authorization request itself (invalid_scope and the like).
        return X_ERROR
    return FAILED


def describe(exception: BaseException | None, request: HttpRequest) -> str:
    """A log-safe detail: a status and path, an exception class, or X's error code.

    Never the exception's message: allauth's include X's response bodies.
    """
    if isinstance(exception, XAnswered):
        return str(exception)
    if isinstance(exception, XError) and exception.http_status:
        return f"{type(exception).__name__}: X answered {exception.http_status}"
    if exception is not None and not isinstance(exception, SignInRefused):
        return type(exception).__name__
    if error := request.GET.get("error"):
        return f"X error {error[:40]!r}"
    return "-"


def log_failure(provider_id: str, failure: Failure, detail: str) -> None:
    logger.warning(
        "X sign-in failed: %s (provider %s; %s)",
        failure.case,
        provider_id,
        detail,
        extra={"signin_case": failure.case, "provider": provider_id},
    )


# Successful sign-ins ---------------------------------------------------------------


@dataclass(frozen=True)
class XSignIn:
    """What X said during one sign-in: who the person is and the token it issued."""

    kind: str
    x_user: XUser
    access_token: str = field(repr=False)
    token_secret: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    expires_at: datetime | None = None
    scopes: str = ""


def complete_login(
    request: HttpRequest, provider, kind: str, token: SocialToken, *, scopes: str = ""
) -> SocialLogin:
    """Both providers' `complete_login`: note the grant X just issued, then hand allauth
    X's user object, fetched by accounts.x_client like every other look-up of a person."""
    note_issued(request, kind, token, scopes=scopes)
    data = x_client.user_object(kind, token.token, token.token_secret, retry=False)
    return provider.sociallogin_from_response(request, data)


def sign_in_of(request: HttpRequest, sociallogin: SocialLogin) -> XSignIn:
    """The sign-in as allauth hands it to the adapter: the person from X's answer
    (allauth's `account.extra_data`), the token from `sociallogin.token`.

    allauth's OAuth 2.0 token keeps the refresh token as its `token_secret` and has no
    place for the scopes X granted: those come from the grant noted in this callback.
    """
    kind = KIND_BY_PROVIDER[sociallogin.account.provider]
    token = sociallogin.token
    issued = getattr(request, _ISSUED_ATTRIBUTE, None)
    oauth1 = kind == TokenKind.OAUTH1
    return XSignIn(
        kind=kind,
        x_user=x_client.parse_user(kind, sociallogin.account.extra_data),
        access_token=token.token,
        token_secret=token.token_secret if oauth1 else "",
        refresh_token="" if oauth1 else token.token_secret,
        expires_at=token.expires_at,
        scopes=issued.scopes if issued is not None else "",
    )


def is_known(sociallogin: SocialLogin) -> bool:
    """Whether the sign-in is for a saved user (allauth's is_existing, minus its query)."""
    return sociallogin.user is not None and sociallogin.user.pk is not None


def link_to_existing_user(
    request: HttpRequest, sociallogin: SocialLogin, sign_in: XSignIn
) -> None:
    """Sign a returning person in as their existing user, whichever method they use.

    allauth keys accounts by (provider, uid), so OAuth 2.0 after OAuth 1.0a would
    otherwise make a second user; the X user id on the profile is the real key.
    Another browser of the same person may link this X account between allauth's
    lookup and ours (two tabs finishing the same sign-in); then its link is used.
    """
    if is_known(sociallogin):
        return
    x_user_id = sign_in.x_user.id
    profile = Profile.objects.select_related("user").filter(x_user_id=x_user_id).first()
    if profile is None:
        return
    try:
        with transaction.atomic():
            sociallogin.connect(request, profile.user)
    except IntegrityError:
        logger.info("X sign-in joined a simultaneous link of profile %s", profile.pk)
        _adopt(sociallogin, profile.user)


def sign_up(sociallogin: SocialLogin, sign_in: XSignIn, save_user: Callable[[], Any]) -> Any:
    """Create the user for a first sign-in, surviving a simultaneous first sign-in.

    Two browsers can finish a person's very first sign-in at the same moment: both
    found no user in pre_social_login, both try to create one, and the database's
    unique constraints (username, provider + X id, profile X id) stop the second.
    The user, its X account, profile and token are written in one transaction, so
    by the time the second sees the conflict the first has committed all of it and
    the second person is simply signed in as that user.
    """
    try:
        with transaction.atomic():
            user = save_user()
            record_sign_in(user, sign_in)
            return user
    except IntegrityError:
        existing = Profile.objects.select_related("user").filter(x_user_id=sign_in.x_user.id)
        profile = existing.first()
        if profile is None:
            raise
    logger.info("X sign-in joined a simultaneous first sign-in of profile %s", profile.pk)
    _adopt(sociallogin, profile.user)
    record_sign_in(profile.user, sign_in)
    return profile.user


def _adopt(sociallogin: SocialLogin, user) -> None:
    """Point a sign-in whose own sign-up or link lost a race at the account that won it."""
    account = sociallogin.account
    SocialAccount.objects.get_or_create(
        provider=account.provider,
        uid=account.uid,
        defaults={"user": user, "extra_data": account.extra_data},
    )
    sociallogin.user = user
    sociallogin.account = SocialAccount.objects.get(provider=account.provider, uid=account.uid)


def username_for(screen_name: str) -> str:
    """The screen name, or a unique variant of it when another user already has it."""
    adapter = get_account_adapter()
    try:
        return adapter.clean_username(screen_name)
    except ValidationError:
        return adapter.generate_unique_username([screen_name, "x_user"])


@transaction.atomic
def record_sign_in(user, sign_in: XSignIn) -> Profile:
    """Refresh the profile from X and keep the new token, encrypted, in XToken.

    The token this one replaces is a grant the site stops holding: once the new
    one is committed, it is ended at X (or queued until X answers). Not when X
    handed back the very pair we hold, as it does for OAuth 1.0a re-sign-ins.
    """
    profile = upsert_from_x(user, sign_in.x_user, sign_in.kind)
    replaced = (
        XToken.objects.select_for_update().filter(profile=profile, kind=sign_in.kind).first()
    )
    if replaced is not None and replaced.access_token != sign_in.access_token:
        end_replaced_grant_after_commit(replaced)
    store_token(
        profile,
        sign_in.kind,
        access_token=sign_in.access_token,
        token_secret=sign_in.token_secret,
        refresh_token=sign_in.refresh_token,
        expires_at=sign_in.expires_at,
        scopes=sign_in.scopes,
    )
    return profile


def end_replaced_grant_after_commit(replaced: XToken) -> None:
    """Queue the replaced token's grant inside this transaction; try X once it commits.

    Queued first, so a process that dies between the commit and the call to X
    leaves the grant on the pending list for the workers, never forgotten.
    """
    grant = revocation.grant_of(replaced)
    if grant.is_empty:
        return
    pending = revocation.queue_revocation(
        grant, reason=SUPERSEDED_REASON, profile=replaced.profile
    )
    transaction.on_commit(partial(revocation.attempt_pending, pending.pk))


# Grants issued during a sign-in that the site does not keep --------------------------


@dataclass
class IssuedGrant:
    """The token X issued during this callback, before the site knows whether it keeps it."""

    kind: str
    access_token: str = field(repr=False)
    token_secret: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    scopes: str = ""
    kept: bool = False


def note_issued(request: HttpRequest, kind: str, token: SocialToken, *, scopes: str = "") -> None:
    """Remember, for the end of the callback, a token X just issued (before any other call).

    Kept on our request, not on allauth's objects: a grant must be ended even when the
    callback fails before allauth has a SocialLogin to carry it.
    """
    secret = token.token_secret
    oauth1 = kind == TokenKind.OAUTH1
    issued = IssuedGrant(
        kind,
        token.token,
        token_secret=secret if oauth1 else "",
        refresh_token="" if oauth1 else secret,
        scopes=scopes,
    )
    setattr(request, _ISSUED_ATTRIBUTE, issued)


def note_kept(request: HttpRequest) -> None:
    """The issued token is now stored in XToken: the site holds it."""
    issued = getattr(request, _ISSUED_ATTRIBUTE, None)
    if issued is not None:
        issued.kept = True


# What a callback turns into a failure page rather than a 500: our refusals, X's
# answers through accounts.x_client, allauth's exchange failing, a lost state.
CALLBACK_FAILURES = (SignInRefused, XError, requests.RequestException, PermissionDenied)


def configured_provider(adapter, method: str):
    """The adapter's provider, or 404 when its credentials are not configured."""
    try:
        return adapter.get_provider()
    except SocialApp.DoesNotExist:
        raise Http404(f"Sign-in with X over {method} is not configured.") from None


def run_callback(
    request: HttpRequest, provider, callback: Callable[[], HttpResponse]
) -> HttpResponse:
    """Run a provider's callback; whatever happens, end a grant X issued that we did not keep.

    Anything but CALLBACK_FAILURES (UpdateError: the session ended, see
    `session_ended`) is raised on once the grant is ended.
    """
    try:
        response = callback()
    except CALLBACK_FAILURES as exc:
        end_grant_not_kept(request, failed=True)
        response = render_authentication_error(request, provider, exception=exc)
    except BaseException:
        end_grant_not_kept(request, failed=True)
        raise
    end_grant_not_kept(request)
    return response


def end_grant_not_kept(request: HttpRequest, *, failed: bool = False) -> None:
    """End at X a grant issued during this callback that the site did not keep.

    X answered the token exchange, then something stopped the sign-in: users/me or
    verify_credentials failed, a "connect" of a second X account was refused, the
    account is inactive, the database failed. Nobody could revoke that grant later.
    After a failure (an exception) even a token marked kept may have been rolled
    back, so the database is asked. A token the site already held (X hands the same
    OAuth 1.0a pair back on every sign-in) is left alone.
    """
    issued = getattr(request, _ISSUED_ATTRIBUTE, None)
    if issued is None or (issued.kept and not failed):
        return
    delattr(request, _ISSUED_ATTRIBUTE)
    if _is_held(issued.kind, issued.access_token):
        return
    outcome = revocation.end_grant(
        issued.kind,
        access_token=issued.access_token,
        token_secret=issued.token_secret,
        refresh_token=issued.refresh_token,
        reason=ABANDONED_REASON,
    )
    logger.info("X sign-in ended a grant it did not keep: %s", outcome.status)


def _is_held(kind: str, access_token: str) -> bool:
    """Whether an XToken holds this access token (found by its hint, compared decrypted)."""
    try:
        candidates = list(XToken.objects.filter(kind=kind, token_hint=hint_of(access_token)))
    except DatabaseError:
        # The database that failed the sign-in cannot say; the token is surely not kept.
        return False
    return any(constant_time_compare(token.access_token, access_token) for token in candidates)


# Disconnect X ----------------------------------------------------------------------


@dataclass(frozen=True)
class Disconnection:
    ok: bool
    message: str


def disconnect_x(profile: Profile) -> Disconnection:
    """End every grant at X, then delete the tokens here and let the person go.

    A grant X does not confirm revoked (unreachable, rate-limited, refusing the
    app) is not dropped: revocation.end_token_grant keeps it on the encrypted
    pending-revocations list, which the workers retry until X confirms. The person
    is told plainly which of the two happened; "revoked" only when X confirmed.
    """
    tokens = list(profile.tokens.all())
    unconfirmed = 0
    maybe_unseen_pair = any(token.status == TokenStatus.NEEDS_SIGN_IN for token in tokens)
    for token in tokens:
        outcome = revocation.end_token_grant(token, "Disconnect X")
        if not outcome.ok:
            unconfirmed += 1
            logger.warning(
                "Disconnect X: X did not confirm revoking the %s token of profile %s (%s); "
                "pending revocation %s",
                token.kind,
                profile.pk,
                outcome.status,
                outcome.pending_revocation_id,
            )
        token.wipe_secrets()
        token.save(update_fields=[*SECRET_COLUMNS, "token_hint"])
    XToken.objects.filter(pk__in=[token.pk for token in tokens]).delete()
    logger.info("Disconnect X: profile %s deleted %s token(s)", profile.pk, len(tokens))
    if unconfirmed:
        return Disconnection(
            True,
            _(
                "Disconnected: we deleted our access to your X account here and signed you out. "
                "X has not yet confirmed that it revoked that access, so we keep asking it until "
                "it does."
            ),
        )
    if maybe_unseen_pair:
        # A refresh X answered too late: X may honour a pair we never received.
        return Disconnection(
            True,
            _(
                "Disconnected: we revoked at X every access we held, deleted it here and signed "
                "you out. X may still honour one access it issued but never delivered to us; to "
                "end it, remove this app at X (Settings, Security, Connected apps)."
            ),
        )
    return Disconnection(
        True,
        _("Disconnected from X: we revoked our access at X, deleted it here and signed you out."),
    )
