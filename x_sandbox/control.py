"""The `/_sandbox/` control API: JSON endpoints for tests, demos and benchmarks.

Not part of X. It lets a test arrange what X would do (a changed profile, an
outage, a user revoking the app, time passing) and then look at what the site
actually sent.
"""

from __future__ import annotations

from typing import Any

from x_sandbox.oauth2 import token_body
from x_sandbox.state import Fault, Sandbox
from x_sandbox.web import Rejected, Request, Response, json_response

MAX_ISSUE = 100_000


def bad_request(message: str) -> Rejected:
    return Rejected(json_response(400, {"error": message}))


def _json_object(request: Request) -> dict[str, Any]:
    try:
        data = request.json()
    except ValueError:
        raise bad_request("body must be JSON") from None
    if not isinstance(data, dict):
        raise bad_request("body must be a JSON object")
    return data


def list_personas(sandbox: Sandbox, request: Request) -> Response:
    personas = [p.to_control_json(request.base_url) for p in sandbox.list_personas()]
    return json_response(200, {"personas": personas})


def add_personas(sandbox: Sandbox, request: Request) -> Response:
    try:
        data = request.json()
        items = data if isinstance(data, list) else [data]
        if not all(isinstance(item, dict) for item in items):
            raise ValueError("send a persona object or a list of them")
        added = sandbox.add_personas(items)
    except ValueError as error:
        raise bad_request(str(error)) from None
    return json_response(201, {"personas": [p.to_control_json(request.base_url) for p in added]})


def update_persona(sandbox: Sandbox, request: Request, screen_name: str) -> Response:
    try:
        persona = sandbox.update_persona(screen_name, _json_object(request))
    except ValueError as error:
        raise bad_request(str(error)) from None
    if persona is None:
        return json_response(404, {"error": f"no persona @{screen_name}"})
    return json_response(200, persona.to_control_json(request.base_url))


def add_fault(sandbox: Sandbox, request: Request) -> Response:
    data = _json_object(request)
    path, status = data.get("path"), data.get("status")
    delay_ms, drop, times = data.get("delay_ms", 0), data.get("drop", False), data.get("times", 1)
    late_ms, message = data.get("late_ms", 0), data.get("message", "")
    valid = (
        isinstance(path, str)
        and path.startswith("/")
        and (status is None or (isinstance(status, int) and 400 <= status <= 599))
        and isinstance(delay_ms, int)
        and isinstance(late_ms, int)
        and isinstance(drop, bool)
        and isinstance(message, str)
        and isinstance(times, int)
        and times > 0
        and (status is not None or delay_ms > 0 or drop or late_ms > 0)
        and not (late_ms and (status is not None or drop))
    )
    if not valid:
        raise bad_request(
            "need path and one of status (400-599), delay_ms (>0), late_ms (>0) or drop; "
            "late_ms goes with neither status nor drop; times > 0"
        )
    sandbox.add_fault(
        Fault(
            path=path,
            times=times,
            status=status,
            delay_ms=delay_ms,
            drop=drop,
            late_ms=late_ms,
            message=message,
        )
    )
    return json_response(201, {"fault": data})


def clear_faults(sandbox: Sandbox, request: Request) -> Response:
    sandbox.clear_faults()
    return json_response(200, {"faults": []})


def advance_clock(sandbox: Sandbox, request: Request) -> Response:
    seconds = _json_object(request).get("advance_seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise bad_request("advance_seconds must be a number")
    offset = sandbox.advance_clock(seconds)
    return json_response(200, {"offset_seconds": offset, "now": sandbox.now()})


def revoke(sandbox: Sandbox, request: Request) -> Response:
    token = _json_object(request).get("token")
    if not isinstance(token, str) or not sandbox.revoke(token):
        return json_response(404, {"error": "unknown access token"})
    return json_response(200, {"revoked": True})


def issue_tokens(sandbox: Sandbox, request: Request) -> Response:
    data = _json_object(request)
    persona = sandbox.persona_by_name(str(data.get("screen_name", "")))
    kind = data.get("kind", "oauth2")
    scope = data.get("scope", "tweet.read users.read offline.access")
    count = data.get("count", 1)
    if persona is None:
        raise bad_request("unknown screen_name")
    if kind not in ("oauth1", "oauth2") or not isinstance(scope, str):
        raise bad_request('kind must be "oauth1" or "oauth2" and scope a string')
    if not isinstance(count, int) or not 0 < count <= MAX_ISSUE:
        raise bad_request(f"count must be 1..{MAX_ISSUE}")
    issued = sandbox.issue_tokens(persona.id, kind, " ".join(scope.split()), count)
    if kind == "oauth1":
        tokens = [
            {
                "oauth_token": access.token,
                "oauth_token_secret": access.secret,
                "user_id": persona.id,
                "screen_name": persona.screen_name,
            }
            for access in issued
        ]
    else:
        tokens = [token_body(access, refresh) for access, refresh in issued]
    return json_response(201, {"tokens": tokens})


def list_secrets(sandbox: Sandbox, request: Request) -> Response:
    return json_response(200, sandbox.secrets_report())


def list_calls(sandbox: Sandbox, request: Request) -> Response:
    return json_response(200, {"calls": sandbox.call_log()})


def reset(sandbox: Sandbox, request: Request) -> Response:
    sandbox.reset()
    return json_response(200, {"reset": True})


def config(sandbox: Sandbox, request: Request) -> Response:
    try:
        current = sandbox.update_config(_json_object(request))
    except ValueError as error:
        raise bad_request(str(error)) from None
    return json_response(200, _public_config(current))


def show_config(sandbox: Sandbox, request: Request) -> Response:
    return json_response(200, _public_config(sandbox.config))


def _public_config(current: Any) -> dict[str, Any]:
    return {
        "app_name": current.app_name,
        "callbacks": current.callbacks,
        "rate_limit": current.rate_limit,
        "latency_ms": current.latency_ms,
        "oauth1_reuse_tokens": current.oauth1_reuse_tokens,
    }
