"""Site-wide middleware: one log line per request."""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import SESSION_KEY
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
