"""Site-wide middleware: one log line per request, and the Content-Security-Policy."""

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import cache
from urllib.parse import urlsplit

from csp.constants import HEADER
from csp.middleware import CheckableLazyObject, CSPMiddleware, PolicyParts
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

request_logger = logging.getLogger("project.request")


def _user_id(request: HttpRequest) -> str | None:
    """Who made the request, without loading a user the view never needed."""
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "_wrapped", None) is not empty:
        return str(user.pk) if user.is_authenticated else None
    session = getattr(request, "session", None)
    if session is None or not request.COOKIES.get(settings.SESSION_COOKIE_NAME):
        return None
    return session.get(SESSION_KEY)


class RequestLogMiddleware:
    """Log method, path (never the query string), status, duration and user id.

    Outermost, so the duration covers every other middleware too. The query string
    is left out on purpose: OAuth callbacks carry `oauth_verifier`, `code` and
    `state` there.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        request_logger.info(
            "%s %s %s in %sms",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "user_id": _user_id(request),
            },
        )
        return response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# Set by django-csp's view decorators: such a response has a policy of its own.
_PER_RESPONSE_POLICY = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_exempt",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt_ro",
)


@cache
def _policy_from_settings(x_api_base_url: str, x_web_base_url: str, x_sandbox: bool) -> str:
    """The header for every ordinary response, built once per X configuration."""
    parts = ContentSecurityPolicyMiddleware.add_x_origins(
        PolicyParts(), x_api_base_url, x_web_base_url, x_sandbox
    )
    return build_policy(**asdict(parts))


@receiver(setting_changed)
def _forget_built_policy(setting: str, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _policy_from_settings.cache_clear()


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's policy from settings, plus X's origins read at request time.

    The sign-in button posts a form whose answer redirects to X, and browsers apply
    `form-action` to that redirect, so X's origins must be allowed there. With the
    sandbox, avatars come from the sandbox too. Both follow `X_API_BASE_URL` and
    `X_WEB_BASE_URL`, which tests and deployments change after settings load.

    django-csp builds the header from the settings on every response, which costs
    as much as serving a static file; unless a response needs its own (a nonce, a
    csp decorator, a report-only policy), the header built for the current X
    configuration is reused.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if self._has_own_policy(request, response):
            return super().process_response(request, response)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}
        excluded = policy.get("EXCLUDE_URL_PREFIXES") or ()
        if HEADER not in response and not request.path_info.startswith(tuple(excluded)):
            response[HEADER] = _policy_from_settings(
                settings.X_API_BASE_URL, settings.X_WEB_BASE_URL, settings.X_SANDBOX
            )
        # As django-csp does: a nonce asked for now could no longer reach the header.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response

    @staticmethod
    def _has_own_policy(request: HttpRequest, response: HttpResponse) -> bool:
        return (
            settings.DEBUG
            or getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in _PER_RESPONSE_POLICY)
            or bool(getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None))
        )

    @staticmethod
    def add_x_origins(
        parts: PolicyParts, x_api_base_url: str, x_web_base_url: str, x_sandbox: bool
    ) -> PolicyParts:
        x_origins = sorted({_origin(x_api_base_url), _origin(x_web_base_url)})
        additions = {"form-action": x_origins}
        if x_sandbox:
            additions["img-src"] = x_origins
        update = dict(parts.update or {})
        for directive, sources in additions.items():
            update[directive] = [*update.get(directive, []), *sources]
        parts.update = update
        return parts

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponse, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        return self.add_x_origins(
            parts, settings.X_API_BASE_URL, settings.X_WEB_BASE_URL, settings.X_SANDBOX
        )
