"""The WSGI app: routing plus what X does around every call.

Around each handler it applies the injected faults and fixed latency, stamps
the `x-rate-limit-*` headers X sends on every response, and records the call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from x_sandbox import control, oauth1, oauth2
from x_sandbox.personas import AVATAR_JPEG
from x_sandbox.server import DropConnection
from x_sandbox.state import RATE_WINDOW_SECONDS, Fault, Sandbox
from x_sandbox.web import Rejected, Request, Response, json_response

Handler = Callable[[Sandbox, Request], Response]
CONTROL_PREFIX = "/_sandbox/"
PERSONA_PREFIX = CONTROL_PREFIX + "personas/"
IMAGE_PREFIX = "/profile_images/"
# What unmetered endpoints report: X sends the headers everywhere, with a big budget.
UNMETERED_LIMIT = 15_000

ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "/oauth/request_token"): oauth1.request_token,
    ("GET", "/oauth/authenticate"): oauth1.authorize,
    ("POST", "/oauth/authenticate"): oauth1.authorize,
    ("GET", "/oauth/authorize"): oauth1.authorize,
    ("POST", "/oauth/authorize"): oauth1.authorize,
    ("POST", "/oauth/access_token"): oauth1.access_token,
    ("GET", "/1.1/account/verify_credentials.json"): oauth1.verify_credentials,
    ("POST", "/1.1/oauth/invalidate_token"): oauth1.invalidate_token,
    ("POST", "/1.1/oauth/invalidate_token.json"): oauth1.invalidate_token,
    ("GET", "/i/oauth2/authorize"): oauth2.authorize,
    ("POST", "/i/oauth2/authorize"): oauth2.authorize,
    ("POST", "/2/oauth2/token"): oauth2.token,
    ("POST", "/2/oauth2/revoke"): oauth2.revoke,
    ("GET", "/2/users/me"): oauth2.users_me,
    ("GET", "/_sandbox/personas"): control.list_personas,
    ("POST", "/_sandbox/personas"): control.add_personas,
    ("POST", "/_sandbox/faults"): control.add_fault,
    ("DELETE", "/_sandbox/faults"): control.clear_faults,
    ("POST", "/_sandbox/clock"): control.advance_clock,
    ("POST", "/_sandbox/revoke"): control.revoke,
    ("GET", "/_sandbox/tokens"): control.list_secrets,
    ("POST", "/_sandbox/tokens"): control.issue_tokens,
    ("GET", "/_sandbox/calls"): control.list_calls,
    ("POST", "/_sandbox/reset"): control.reset,
    ("GET", "/_sandbox/config"): control.show_config,
    ("POST", "/_sandbox/config"): control.config,
}


class SandboxApp:
    """WSGI callable wrapping one Sandbox state."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request.from_environ(environ)
        is_control = request.path.startswith(CONTROL_PREFIX)
        if is_control:
            response = self._handle(request)
        else:
            arrived_in = self.sandbox.generation
            started = time.perf_counter()
            response = self._handle_like_x(request, arrived_in)
            duration_ms = round((time.perf_counter() - started) * 1000, 3)
            self.sandbox.record_call(
                request.method, request.path, response.status, arrived_in, duration_ms
            )
        self._add_rate_headers(response)
        headers = [("Content-Type", response.content_type), *response.headers]
        start_response(response.status_line(), headers)
        return [response.body]

    def _handle_like_x(self, request: Request, arrived_in: int) -> Response:
        """An X call: latency (not for avatars), any armed fault, the handler, a late answer."""
        latency_ms = self.sandbox.config.latency_ms
        if latency_ms and not request.path.startswith(IMAGE_PREFIX):
            time.sleep(latency_ms / 1000)
        fault = self.sandbox.take_fault(request.path)
        injected = self._apply_fault(request, fault, arrived_in) if fault else None
        response = injected or self._handle(request)
        if fault and fault.late_ms:
            # The call has done its work (a refresh token is spent, a new pair issued);
            # only the answer is late, as when X answers after the client's timeout.
            time.sleep(fault.late_ms / 1000)
        return response

    def _handle(self, request: Request) -> Response:
        try:
            return self._dispatch(request)
        except Rejected as rejected:
            return rejected.response

    def _apply_fault(self, request: Request, fault: Fault, arrived_in: int) -> Response | None:
        """Sleep, drop the connection, or answer with the injected error status."""
        if fault.delay_ms:
            time.sleep(fault.delay_ms / 1000)
        if fault.drop:
            self.sandbox.record_call(request.method, request.path, None, arrived_in)
            raise DropConnection
        if fault.status is None:
            return None
        if request.path.startswith("/2/"):
            return oauth2.problem(
                fault.status,
                fault.message or ("Service Unavailable" if fault.status == 503 else "Error"),
            )
        code, message = (130, "Over capacity") if fault.status == 503 else (131, "Internal error")
        message = fault.message or message
        return json_response(fault.status, {"errors": [{"code": code, "message": message}]})

    def _dispatch(self, request: Request) -> Response:
        handler = ROUTES.get((request.method, request.path))
        if handler is not None:
            return handler(self.sandbox, request)
        if request.method == "PATCH" and request.path.startswith(PERSONA_PREFIX):
            return control.update_persona(
                self.sandbox, request, request.path[len(PERSONA_PREFIX) :]
            )
        if request.method == "GET" and request.path.startswith(IMAGE_PREFIX):
            return self._avatar(request)
        if any(path == request.path for _, path in ROUTES):
            return json_response(
                405,
                {
                    "errors": [
                        {"code": 86, "message": "This method requires a different HTTP method."}
                    ]
                },
            )
        return json_response(
            404, {"errors": [{"code": 34, "message": "Sorry, that page does not exist."}]}
        )

    def _avatar(self, request: Request) -> Response:
        persona_id = request.path[len(IMAGE_PREFIX) :].split("/")[0]
        if self.sandbox.persona(persona_id) is None or not request.path.endswith("_normal.jpg"):
            return json_response(
                404, {"errors": [{"code": 34, "message": "Sorry, that page does not exist."}]}
            )
        return Response(200, AVATAR_JPEG, "image/jpeg", [("Cache-Control", "max-age=86400")])

    def _add_rate_headers(self, response: Response) -> None:
        if response.rate is None:
            reset = int(self.sandbox.now()) + RATE_WINDOW_SECONDS
            response.rate = (UNMETERED_LIMIT, UNMETERED_LIMIT, reset)
        limit, remaining, reset = response.rate
        response.headers += [
            ("x-rate-limit-limit", str(limit)),
            ("x-rate-limit-remaining", str(remaining)),
            ("x-rate-limit-reset", str(reset)),
        ]
