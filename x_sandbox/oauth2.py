"""X's OAuth 2.0 (authorization code + PKCE, confidential client) and `GET /2/users/me`.

Error bodies copy X's exactly, including its habit of answering a spent refresh
token with `invalid_request`, so the site's error handling is tested against
what X really sends rather than against the RFC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

from x_sandbox import consent
from x_sandbox.personas import V2_USER_FIELDS, v2_user
from x_sandbox.state import (
    ACCESS_TOKEN_LIFETIME_SECONDS,
    Grant,
    OAuth2Access,
    RefreshToken,
    Sandbox,
)
from x_sandbox.web import Rejected, Request, Response, json_response

SCOPES = frozenset(
    [
        "tweet.read",
        "tweet.write",
        "tweet.moderate.write",
        "users.email",
        "users.read",
        "follows.read",
        "follows.write",
        "offline.access",
        "space.read",
        "mute.read",
        "mute.write",
        "like.read",
        "like.write",
        "list.read",
        "list.write",
        "block.read",
        "block.write",
        "bookmark.read",
        "bookmark.write",
        "media.write",
        "dm.read",
        "dm.write",
    ]
)
USERS_ME_SCOPES = ("tweet.read", "users.read")
PROBLEM_TYPE = "application/problem+json"
BAD_CODE = "Value passed for the authorization code was invalid."
BAD_TOKEN = "Value passed for the token was invalid."


def oauth_error(status: int, error: str, description: str) -> Rejected:
    return Rejected(json_response(status, {"error": error, "error_description": description}))


def problem(status: int, title: str) -> Response:
    body = {"title": title, "type": "about:blank", "status": status, "detail": title}
    return json_response(status, body, PROBLEM_TYPE)


# Authorization ---------------------------------------------------------------


def authorize(sandbox: Sandbox, request: Request) -> Response:
    """GET shows the consent page; POST (same URL) carries the user's decision."""
    params = request.query
    config = sandbox.config
    redirect_uri = params.get("redirect_uri", "")
    if params.get("client_id") != config.client_id:
        return consent.error_page("Something went wrong", "This app is not registered with X.")
    if not consent.callback_allowed(redirect_uri, config.callbacks):
        return consent.error_page(
            "Something went wrong", "The redirect_uri is not approved for this app."
        )
    state = params.get("state", "")
    problem_found = _authorization_problem(params)
    if problem_found:
        return consent.redirect_with(redirect_uri, {"error": problem_found, "state": state})
    if request.method != "POST":
        return consent.consent_page(sandbox, request)
    form = request.form
    if form.get("decision") != "allow":
        return consent.redirect_with(redirect_uri, {"error": "access_denied", "state": state})
    persona = sandbox.persona_by_name(form.get("persona", ""))
    if persona is None:
        return consent.error_page("Unknown account", "Choose one of the listed accounts.")
    code = sandbox.new_code(
        redirect_uri=redirect_uri,
        scope=" ".join(params["scope"].split()),
        challenge=params["code_challenge"],
        challenge_method=params.get("code_challenge_method", "plain").lower(),
        persona_id=persona.id,
    )
    return consent.redirect_with(redirect_uri, {"state": state, "code": code.code})


def _authorization_problem(params: dict[str, str]) -> str | None:
    """The OAuth error code to send back to the client, or None if the request is sound."""
    if params.get("response_type") != "code":
        return "unsupported_response_type"
    if not params.get("state") or not params.get("code_challenge"):
        return "invalid_request"
    if params.get("code_challenge_method", "plain").lower() not in ("s256", "plain"):
        return "invalid_request"
    scopes = params.get("scope", "").split()
    if not scopes or not set(scopes) <= SCOPES:
        return "invalid_scope"
    return None


# Token endpoint ----------------------------------------------------------------


def _require_client(sandbox: Sandbox, request: Request) -> None:
    """Confidential clients must authenticate with HTTP Basic on every token call."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        client_id = secret = ""
    config = sandbox.config
    valid = (
        scheme.lower() == "basic"
        and secrets.compare_digest(client_id, config.client_id)
        and secrets.compare_digest(secret, config.client_secret)
    )
    if not valid:
        raise oauth_error(401, "unauthorized_client", "Missing valid authorization header")


def token(sandbox: Sandbox, request: Request) -> Response:
    _require_client(sandbox, request)
    form = request.form
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        access, refresh = _redeem_code(sandbox, form)
    elif grant_type == "refresh_token":
        rotated = sandbox.rotate_refresh(form.get("refresh_token", ""))
        if rotated is None:
            raise oauth_error(400, "invalid_request", BAD_TOKEN)
        access, refresh = rotated
    else:
        raise oauth_error(400, "unsupported_grant_type", "Unsupported grant type.")
    return json_response(200, token_body(access, refresh))


def token_body(access: OAuth2Access, refresh: RefreshToken | None) -> dict[str, object]:
    body: dict[str, object] = {
        "token_type": "bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME_SECONDS,
        "access_token": access.token,
        "scope": access.grant.scope,
    }
    if refresh is not None:
        body["refresh_token"] = refresh.token
    return body


def _redeem_code(
    sandbox: Sandbox, form: dict[str, str]
) -> tuple[OAuth2Access, RefreshToken | None]:
    record = sandbox.spend_code(form.get("code", ""))
    valid = (
        record is not None
        and form.get("redirect_uri") == record.redirect_uri
        and _pkce_matches(record.challenge, record.challenge_method, form.get("code_verifier", ""))
    )
    if not valid or record is None:
        raise oauth_error(400, "invalid_request", BAD_CODE)
    return sandbox.new_grant_tokens(Grant(record.persona_id, record.scope))


def _pkce_matches(challenge: str, method: str, verifier: str) -> bool:
    if not verifier:
        return False
    if method == "s256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        expected = verifier
    return secrets.compare_digest(expected, challenge)


def revoke(sandbox: Sandbox, request: Request) -> Response:
    _require_client(sandbox, request)
    sandbox.revoke_oauth2_token(request.form.get("token", ""))
    return json_response(200, {"revoked": True})


# Resources ---------------------------------------------------------------------


def users_me(sandbox: Sandbox, request: Request) -> Response:
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    access = sandbox.oauth2_access(bearer) if scheme.lower() == "bearer" else None
    persona = sandbox.persona(access.grant.persona_id) if access else None
    if access is None or persona is None:
        return problem(401, "Unauthorized")
    if not set(USERS_ME_SCOPES) <= set(access.grant.scope.split()):
        return problem(403, "Forbidden")
    fields = {name for name in request.query.get("user.fields", "").split(",") if name}
    unknown = sorted(fields - V2_USER_FIELDS)
    if unknown:
        return _invalid_fields(unknown)
    limit, remaining, reset, allowed = sandbox.hit_rate_limit(persona.id, "users/me")
    if allowed:
        response = json_response(200, {"data": v2_user(persona, request.base_url, fields)})
    else:
        response = problem(429, "Too Many Requests")
    response.rate = (limit, remaining, reset)
    return response


def _invalid_fields(unknown: list[str]) -> Response:
    allowed = ",".join(sorted(V2_USER_FIELDS))
    error = {
        "parameters": {"user.fields": [",".join(unknown)]},
        "message": (
            f"The `user.fields` query parameter value [{unknown[0]}] is not one of [{allowed}]"
        ),
    }
    body = {
        "errors": [error],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }
    return json_response(400, body)
