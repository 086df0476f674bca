"""Every HTTP call the site makes to X, apart from allauth's own sign-in exchange.

One place owns the base URLs (settings.X_API_BASE_URL), timeouts, retries, the
rate-limit headers and the translation of X's many error shapes into a few
exceptions the rest of the code can act on without knowing X's wire format.
The sign-in callback fetches the person through the same `user_object` as a
token check does: same endpoint, fields, timeout and error handling.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests_oauthlib import OAuth1

from accounts import x_values
from accounts.models import TokenKind

logger = logging.getLogger(__name__)

# How much of an error body X sent is kept: enough to read, bounded for every column it reaches.
ERROR_TEXT_LIMIT = 200

V2_USER_FIELDS = (
    "created_at,description,location,profile_image_url,protected,public_metrics,url,verified"
)
# Everything the profile needs and nothing more: no email (we do not keep it, and an
# email clash would make allauth park a sign-in, token included, in the session).
V1_USER_PARAMS = {"include_email": "false", "skip_status": "true", "include_entities": "false"}
V2_USER_PARAMS = {"user.fields": V2_USER_FIELDS}
_RETRY_BACKOFF_SECONDS = 0.2
_local = threading.local()


class XError(Exception):
    """X refused a call or could not be reached. The message never contains a secret."""

    retryable = False

    def __init__(self, message: str, *, http_status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code


class XTokenInvalid(XError):
    """X says the token (or refresh token) is invalid, expired or revoked."""


class XRateLimited(XError):
    """X answered 429; `reset_at` is when the window reopens (x-rate-limit-reset)."""

    retryable = True

    def __init__(self, message: str, *, reset_at: datetime, **kwargs):
        super().__init__(message, **kwargs)
        self.reset_at = reset_at

    def seconds_to_wait(self) -> float:
        return max(0.0, (self.reset_at - datetime.now(UTC)).total_seconds())


class XUnavailable(XError):
    """X answered 5xx, timed out or dropped the connection: try again later."""

    retryable = True


class XAnswerLost(XUnavailable):
    """The request was sent but X's answer never came within X_HTTP_TIMEOUT.

    X may have acted on it: for a refresh, the old refresh token may be spent and a
    new pair issued that the site will never see.
    """


class XClientRefused(XError):
    """A revoke endpoint refused the app itself (401/403 without a word about the token).

    RFC 7009 answers 200 for a token the server does not know, so a refusal says
    nothing about the token: it may well still work and must be revoked again later.
    """

    retryable = True


# What X says when the token it was handed is itself dead: OAuth 1.0a's code 89
# ("Invalid or expired token") and OAuth 2.0's error codes for a bad token.
TOKEN_GONE_CODE = 89
TOKEN_GONE_ERRORS = frozenset({"invalid_token", "invalid_grant"})


@dataclass(frozen=True)
class RateLimit:
    limit: int | None
    remaining: int | None
    reset_at: datetime | None


@dataclass(frozen=True)
class XUser:
    """A person on X, the same whichever API version described them."""

    id: str
    screen_name: str
    name: str
    location: str
    url: str
    description: str
    profile_image_url: str
    followers_count: int
    following_count: int
    tweet_count: int
    listed_count: int
    protected: bool
    verified: bool
    created_at: datetime | None

    @classmethod
    def from_v1(cls, data: dict) -> "XUser":
        """X's v1.1 user object, every value normalised (accounts.x_values)."""
        data = _user_object(data)
        return cls(
            id=_user_id(data.get("id_str") or data.get("id")),
            screen_name=x_values.profile_text("screen_name", data.get("screen_name")),
            name=x_values.profile_text("name", data.get("name")),
            location=x_values.profile_text("location", data.get("location")),
            url=x_values.profile_url("url", data.get("url")),
            description=x_values.profile_text("description", data.get("description")),
            profile_image_url=x_values.profile_url(
                "profile_image_url",
                data.get("profile_image_url_https") or data.get("profile_image_url"),
            ),
            followers_count=x_values.profile_count("followers_count", data.get("followers_count")),
            following_count=x_values.profile_count("following_count", data.get("friends_count")),
            tweet_count=x_values.profile_count("tweet_count", data.get("statuses_count")),
            listed_count=x_values.profile_count("listed_count", data.get("listed_count")),
            protected=x_values.flag(data.get("protected")),
            verified=x_values.flag(data.get("verified")),
            created_at=x_values.v1_date(data.get("created_at")),
        )

    @classmethod
    def from_v2(cls, data: dict) -> "XUser":
        """X's v2 user object, every value normalised (accounts.x_values)."""
        data = _user_object(data)
        metrics = data.get("public_metrics")
        metrics = metrics if isinstance(metrics, dict) else {}
        return cls(
            id=_user_id(data.get("id")),
            screen_name=x_values.profile_text("screen_name", data.get("username")),
            name=x_values.profile_text("name", data.get("name")),
            location=x_values.profile_text("location", data.get("location")),
            url=x_values.profile_url("url", data.get("url")),
            description=x_values.profile_text("description", data.get("description")),
            profile_image_url=x_values.profile_url(
                "profile_image_url", data.get("profile_image_url")
            ),
            followers_count=x_values.profile_count(
                "followers_count", metrics.get("followers_count")
            ),
            following_count=x_values.profile_count(
                "following_count", metrics.get("following_count")
            ),
            tweet_count=x_values.profile_count("tweet_count", metrics.get("tweet_count")),
            listed_count=x_values.profile_count("listed_count", metrics.get("listed_count")),
            protected=x_values.flag(data.get("protected")),
            verified=x_values.flag(data.get("verified")),
            created_at=x_values.v2_date(data.get("created_at")),
        )


def _user_object(data: object) -> dict:
    if not isinstance(data, dict) or "id" not in data:
        raise XError("X answered without a user object")
    return data


def _user_id(value: object) -> str:
    """The person's id, which is never repaired: a wrong one refuses the answer."""
    try:
        return x_values.x_user_id(value)
    except ValueError as exc:
        raise XError(str(exc)) from exc


@dataclass(frozen=True)
class TokenGrant:
    """What X's OAuth 2.0 token endpoint returned."""

    access_token: str
    refresh_token: str
    expires_in: int | None
    scope: str


def api_url(path: str) -> str:
    return f"{settings.X_API_BASE_URL}{path}"


def configure_session(session: requests.Session) -> requests.Session:
    """Set up a requests session for calls to X: environment read once, this thread's pool.

    With `trust_env` requests re-reads every environment variable for each request;
    X's address is fixed, so its proxy, if any, can be looked up once. HTTPS_PROXY,
    NO_PROXY and REQUESTS_CA_BUNDLE still apply. Every session set up here in one
    thread shares that thread's HTTPAdapter, so all of them reuse the same kept-alive
    connections to X (requests' pooling, through urllib3).
    """
    session.proxies.update(requests.utils.get_environ_proxies(settings.X_API_BASE_URL))
    session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    session.trust_env = False
    pool = _connection_pool()
    session.mount("https://", pool)
    session.mount("http://", pool)
    return session


def _connection_pool() -> HTTPAdapter:
    """This thread's connections to X: bulk jobs call X from a thread pool."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = HTTPAdapter()
    return pool


def _session() -> requests.Session:
    """One session per thread for the calls made here."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = configure_session(requests.Session())
    return session


def _oauth1(access_token: str = "", token_secret: str = "") -> OAuth1:
    return OAuth1(
        settings.X_CONSUMER_KEY,
        client_secret=settings.X_CONSUMER_SECRET,
        resource_owner_key=access_token or None,
        resource_owner_secret=token_secret or None,
    )


def _basic_auth() -> tuple[str, str]:
    return (settings.X_CLIENT_ID, settings.X_CLIENT_SECRET)


def rate_limit_of(response: requests.Response) -> RateLimit:
    def as_int(name: str) -> int | None:
        value = response.headers.get(name, "")
        return int(value) if value.isdigit() else None

    reset = as_int("x-rate-limit-reset")
    return RateLimit(
        limit=as_int("x-rate-limit-limit"),
        remaining=as_int("x-rate-limit-remaining"),
        reset_at=datetime.fromtimestamp(reset, UTC) if reset is not None else None,
    )


def _error_text(response: requests.Response) -> tuple[str, int | None]:
    """X's own error message and code, cleaned like every other value from X.

    The message ends up in a token's last_error, the audit trail and the admin; a
    NUL or an escape in it would fail PostgreSQL or reach a terminal.
    """
    message, code = _raw_error_text(response)
    text = x_values.clean_text(message)[:ERROR_TEXT_LIMIT] or "no message"
    return text, code if isinstance(code, int) and not isinstance(code, bool) else None


def _raw_error_text(response: requests.Response) -> tuple[object, object]:
    """The message and code from whichever error shape X used, unchecked."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason, None
    if isinstance(body, dict):
        errors = body.get("errors")
        if errors and isinstance(errors, list) and isinstance(errors[0], dict):
            return str(errors[0].get("message", "")), errors[0].get("code")
        if "error_description" in body or "error" in body:
            return str(body.get("error_description") or body.get("error")), None
        if "detail" in body or "title" in body:
            return str(body.get("detail") or body.get("title")), None
    return str(body), None


def _oauth_error_code(response: requests.Response) -> str:
    """The OAuth 2.0 `error` field ("invalid_token", ...), or "" for any other shape."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else ""


def _raise_for_x_error(response: requests.Response, what: str, *, revoking: bool = False) -> None:
    """Turn X's error answer into the exception its callers act on.

    `revoking` is for the revoke endpoints, where a 401/403 refuses the client, not
    the token: only X's own words about the token (code 89, invalid_token,
    invalid_grant) mean the token is gone; anything else leaves it possibly alive.
    """
    status = response.status_code
    if status < 400:
        return
    message, code = _error_text(response)
    described = f"{what}: X answered {status}: {message}"
    if status == 429:
        reset_at = rate_limit_of(response).reset_at or datetime.fromtimestamp(
            time.time() + 60, UTC
        )
        raise XRateLimited(described, reset_at=reset_at, http_status=status, code=code)
    if status >= 500:
        raise XUnavailable(described, http_status=status, code=code)
    if revoking:
        if code == TOKEN_GONE_CODE or _oauth_error_code(response) in TOKEN_GONE_ERRORS:
            raise XTokenInvalid(described, http_status=status, code=code)
        if status in (401, 403):
            raise XClientRefused(
                f"{what}: X refused this app ({status}: {message}); the token may still work",
                http_status=status,
                code=code,
            )
        raise XError(described, http_status=status, code=code)
    if status in (401, 403) or (status == 400 and "token" in message.lower()):
        raise XTokenInvalid(described, http_status=status, code=code)
    raise XError(described, http_status=status, code=code)


def _call(
    method: str, path: str, *, what: str, retry: bool, revoking: bool = False, **kwargs
) -> requests.Response:
    """Send one request to X, retrying only where repeating it cannot do harm.

    Refresh grants are never retried after they may have reached X: a refresh token
    is single-use, so a blind retry could spend it twice and lose the account.
    """
    url = api_url(path)
    attempts = 1 + (settings.X_HTTP_RETRIES if retry else 0)
    for attempt in range(1, attempts + 1):
        started = time.perf_counter()
        try:
            response = _session().request(method, url, timeout=settings.X_HTTP_TIMEOUT, **kwargs)
        except requests.ConnectionError as exc:
            _log_call(method, path, None, started)
            if attempt < attempts:
                time.sleep(_RETRY_BACKOFF_SECONDS * attempt)
                continue
            raise XUnavailable(f"{what}: could not reach X ({type(exc).__name__})") from exc
        except requests.Timeout as exc:
            _log_call(method, path, None, started)
            if attempt < attempts:
                time.sleep(_RETRY_BACKOFF_SECONDS * attempt)
                continue
            if isinstance(exc, requests.ConnectTimeout):
                raise XUnavailable(f"{what}: X did not answer in time") from exc
            raise XAnswerLost(f"{what}: X did not answer in time after the call was sent") from exc
        _log_call(method, path, response.status_code, started)
        if response.status_code >= 500 and attempt < attempts:
            time.sleep(_RETRY_BACKOFF_SECONDS * attempt)
            continue
        _raise_for_x_error(response, what, revoking=revoking)
        return response
    raise AssertionError("unreachable: the loop returns or raises")


def _log_call(method: str, path: str, status: int | None, started: float) -> None:
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    logger.info(
        "X %s %s -> %s in %sms",
        method,
        path,
        status if status is not None else "no answer",
        duration_ms,
        extra={"x_method": method, "x_path": path, "x_status": status, "duration_ms": duration_ms},
    )


def user_object(
    kind: str, access_token: str, token_secret: str = "", *, retry: bool = True
) -> dict:
    """X's own user object for a token: v1.1 `verify_credentials` for OAuth 1.0a, v2
    `users/me` with every profile field we keep for OAuth 2.0.

    `retry=False` for a sign-in, where a person waits on the page: X's fault is shown
    at once with a "Try again" link instead of after the retries' back-off.
    """
    if kind == TokenKind.OAUTH1:
        what = "verify_credentials"
        response = _call(
            "GET",
            "/1.1/account/verify_credentials.json",
            what=what,
            retry=retry,
            params=V1_USER_PARAMS,
            auth=_oauth1(access_token, token_secret),
        )
        return _user_object(_json(response, what))
    what = "users/me"
    response = _call(
        "GET",
        "/2/users/me",
        what=what,
        retry=retry,
        params=V2_USER_PARAMS,
        headers={"Authorization": f"Bearer {access_token}"},
    )
    body = _json(response, what)
    return _user_object(body.get("data") if isinstance(body, dict) else None)


def parse_user(kind: str, data: dict) -> XUser:
    """The person in X's user object of the API version `kind`'s token speaks."""
    return XUser.from_v1(data) if kind == TokenKind.OAUTH1 else XUser.from_v2(data)


def fetch_user(kind: str, access_token: str, token_secret: str = "") -> XUser:
    """The user behind a token, or XTokenInvalid if X no longer honours it."""
    return parse_user(kind, user_object(kind, access_token, token_secret))


def verify_credentials(access_token: str, token_secret: str) -> XUser:
    """OAuth 1.0a: the user behind a token, or XTokenInvalid if X no longer honours it."""
    return fetch_user(TokenKind.OAUTH1, access_token, token_secret)


def get_me(access_token: str) -> XUser:
    """OAuth 2.0: the user behind a bearer token, with every profile field we keep."""
    return fetch_user(TokenKind.OAUTH2, access_token)


def _json(response: requests.Response, what: str) -> object:
    try:
        return response.json()
    except ValueError as exc:
        raise XError(f"{what}: X answered {response.status_code} without JSON") from exc


def refresh_oauth2(refresh_token: str) -> TokenGrant:
    """Exchange a refresh token for a new access/refresh pair (the old pair dies)."""
    response = _call(
        "POST",
        "/2/oauth2/token",
        what="refresh",
        retry=False,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": settings.X_CLIENT_ID,
        },
        auth=_basic_auth(),
    )
    body = response.json()
    return TokenGrant(
        access_token=body["access_token"],
        refresh_token=body.get("refresh_token", ""),
        expires_in=body.get("expires_in"),
        scope=body.get("scope", ""),
    )


def revoke_oauth1(access_token: str, token_secret: str) -> None:
    """Invalidate an OAuth 1.0a token. XTokenInvalid: X no longer knew it (code 89);
    XClientRefused: X refused the app, the token may still work."""
    _call(
        "POST",
        "/1.1/oauth/invalidate_token",
        what="invalidate_token",
        retry=True,
        revoking=True,
        auth=_oauth1(access_token, token_secret),
    )


def revoke_oauth2(token: str, token_type_hint: str = "access_token") -> None:  # noqa: S107
    """Revoke one OAuth 2.0 token (access or refresh). X answers 200 for a token it
    does not know (RFC 7009); XClientRefused: X refused the app, not the token."""
    _call(
        "POST",
        "/2/oauth2/revoke",
        what="revoke",
        retry=True,
        revoking=True,
        data={
            "token": token,
            "token_type_hint": token_type_hint,
            "client_id": settings.X_CLIENT_ID,
        },
        auth=_basic_auth(),
    )
