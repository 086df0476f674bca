"""X's OAuth 1.0a endpoints and the v1.1 resources that use them.

Signatures are verified for real with oauthlib's server-side code over the
exact method, URL and parameters the client sent, so a client that signs the
wrong URL or forgets a parameter fails here exactly as it would against X.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlencode

from oauthlib.common import Request as OAuthlibRequest
from oauthlib.oauth1.rfc5849 import signature

from x_sandbox import consent
from x_sandbox.personas import v1_user
from x_sandbox.state import NONCE_WINDOW_SECONDS, OAuth1Access, Sandbox
from x_sandbox.web import Rejected, Request, Response, json_response, text_response

REQUIRED = (
    "oauth_consumer_key",
    "oauth_signature_method",
    "oauth_signature",
    "oauth_timestamp",
    "oauth_nonce",
)
TRUE_VALUES = ("true", "t", "1")
CALLBACK_NOT_APPROVED = (
    '<?xml version="1.0" encoding="UTF-8"?><errors><error code="415">Callback URL not approved '
    "for this client application. Approved callback URLs can be adjusted in your application "
    "settings</error></errors>"
)
BAD_VERIFIER = "Error processing your OAuth request: Invalid oauth_verifier parameter"


def v1_error(status: int, code: int, message: str) -> Rejected:
    return Rejected(json_response(status, {"errors": [{"code": code, "message": message}]}))


def not_authenticated() -> Rejected:
    return v1_error(401, 32, "Could not authenticate you.")


def invalid_token() -> Rejected:
    return v1_error(401, 89, "Invalid or expired token.")


@dataclass
class Signed:
    """The parameters of a request that carries an OAuth 1.0a signature."""

    params: list[tuple[str, str]]
    oauth: dict[str, str]

    @property
    def token(self) -> str:
        return self.oauth.get("oauth_token", "")


def parse(request: Request) -> Signed:
    """Collect every signed parameter: Authorization header, query and form body."""
    if "authorization" not in request.headers and "oauth_signature" not in request.query_string:
        raise v1_error(400, 215, "Bad Authentication data.")
    body = request.body.decode("utf-8", "replace") if request.is_form else None
    try:
        params = signature.collect_parameters(
            uri_query=request.query_string,
            body=body,
            headers={"Authorization": request.headers.get("authorization", "")},
            exclude_oauth_signature=False,
        )
    except ValueError:
        raise not_authenticated() from None
    oauth = {name: value for name, value in params if name.startswith("oauth_")}
    if any(name not in oauth for name in REQUIRED):
        raise not_authenticated()
    return Signed(params=params, oauth=oauth)


def verify(sandbox: Sandbox, request: Request, signed: Signed, token_secret: str) -> None:
    """Check consumer, HMAC-SHA1 signature, timestamp and nonce, in that order."""
    config = sandbox.config
    if signed.oauth["oauth_consumer_key"] != config.consumer_key:
        raise not_authenticated()
    if signed.oauth["oauth_signature_method"] != "HMAC-SHA1":
        raise not_authenticated()
    checked = OAuthlibRequest(request.url, http_method=request.method)
    checked.params = [(k, v) for k, v in signed.params if k != "oauth_signature"]
    checked.signature = signed.oauth["oauth_signature"]
    if not signature.verify_hmac_sha1(checked, config.consumer_secret, token_secret):
        raise not_authenticated()
    # Real wall-clock time, not the sandbox clock: tests advance the sandbox clock to
    # expire OAuth 2.0 tokens, and that must not make correctly signed requests fail.
    try:
        timestamp = int(signed.oauth["oauth_timestamp"])
    except ValueError:
        raise not_authenticated() from None
    if abs(time.time() - timestamp) > NONCE_WINDOW_SECONDS:
        raise v1_error(401, 135, "Timestamp out of bounds.")
    if not sandbox.use_nonce(config.consumer_key, signed.oauth["oauth_nonce"], timestamp):
        raise not_authenticated()


def authenticate_user(sandbox: Sandbox, request: Request) -> OAuth1Access:
    """Verify a request signed with an access token and return that token."""
    signed = parse(request)
    if signed.oauth["oauth_consumer_key"] != sandbox.config.consumer_key:
        raise not_authenticated()
    access = sandbox.oauth1_access(signed.token)
    if access is None or access.revoked:
        raise invalid_token()
    verify(sandbox, request, signed, access.secret)
    return access


def request_token(sandbox: Sandbox, request: Request) -> Response:
    signed = parse(request)
    verify(sandbox, request, signed, "")
    callback = signed.oauth.get("oauth_callback", "")
    if not consent.callback_allowed(callback, sandbox.config.callbacks):
        return text_response(403, CALLBACK_NOT_APPROVED, "application/xml; charset=utf-8")
    record = sandbox.new_request_token(callback)
    body = urlencode(
        {
            "oauth_token": record.token,
            "oauth_token_secret": record.secret,
            "oauth_callback_confirmed": "true",
        }
    )
    return text_response(200, body, "text/html; charset=utf-8")


def authorize(sandbox: Sandbox, request: Request) -> Response:
    """The consent page for /oauth/authenticate and /oauth/authorize, and its answer."""
    token = request.query.get("oauth_token") or request.form.get("oauth_token", "")
    record = sandbox.request_token(token)
    if record is None or record.spent or record.verifier is not None:
        return consent.error_page(
            "This page is no longer valid", "The request token is unknown or was already used."
        )
    if request.method != "POST":
        return consent.consent_page(sandbox, request)
    form = request.form
    if form.get("decision") != "allow":
        sandbox.decide_request_token(token, None)
        return consent.redirect_with(record.callback, {"denied": token})
    persona = sandbox.persona_by_name(form.get("persona", ""))
    if persona is None:
        return consent.error_page("Unknown account", "Choose one of the listed accounts.")
    approved = sandbox.decide_request_token(token, persona.id)
    if approved is None or approved.verifier is None:
        return consent.error_page(
            "This page is no longer valid", "The request token was already used."
        )
    return consent.redirect_with(
        record.callback, {"oauth_token": token, "oauth_verifier": approved.verifier}
    )


def access_token(sandbox: Sandbox, request: Request) -> Response:
    signed = parse(request)
    record = sandbox.request_token(signed.token)
    if record is None:
        return text_response(401, BAD_VERIFIER)
    verify(sandbox, request, signed, record.secret)
    verifier = dict(signed.params).get("oauth_verifier", "")
    access = sandbox.exchange_verifier(signed.token, verifier)
    persona = sandbox.persona(access.persona_id) if access else None
    if access is None or persona is None:
        return text_response(401, BAD_VERIFIER)
    body = urlencode(
        {
            "oauth_token": access.token,
            "oauth_token_secret": access.secret,
            "user_id": persona.id,
            "screen_name": persona.screen_name,
        }
    )
    return text_response(200, body, "text/html; charset=utf-8")


def verify_credentials(sandbox: Sandbox, request: Request) -> Response:
    access = authenticate_user(sandbox, request)
    persona = sandbox.persona(access.persona_id)
    if persona is None:
        raise invalid_token()
    limit, remaining, reset, allowed = sandbox.hit_rate_limit(persona.id, "verify_credentials")
    if not allowed:
        response = json_response(429, {"errors": [{"code": 88, "message": "Rate limit exceeded"}]})
    else:
        query = request.query
        user = v1_user(persona, request.base_url, _flag(query, "include_email", default=False))
        if not _flag(query, "include_entities", default=True):
            del user["entities"]
        response = json_response(200, user)
    response.rate = (limit, remaining, reset)
    return response


def _flag(query: dict[str, str], name: str, default: bool) -> bool:
    """X's boolean query parameters accept true/t/1; anything else is false."""
    if name not in query:
        return default
    return query[name].lower() in TRUE_VALUES


def invalidate_token(sandbox: Sandbox, request: Request) -> Response:
    access = authenticate_user(sandbox, request)
    sandbox.revoke(access.token)
    return json_response(200, {"access_token": access.token})
