"""GET /healthz: is the database answering, and is the job queue keeping up?

Load balancers and uptime checks call this every few seconds, so it is one
query, touches no session (no cookie, no session row) and is never cached.
"""

import logging
from typing import Any

from django.db import DatabaseError
from django.db.models import Count, Min
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_tasks_db.models import DBTaskResult

logger = logging.getLogger(__name__)


def queue_backlog() -> dict[str, Any]:
    """Jobs due to run that no worker has picked up yet, and how long the oldest waited.

    A growing `oldest_seconds` means the workers are down or too few.
    """
    backlog = DBTaskResult.objects.ready().aggregate(
        pending=Count("pk"), oldest=Min("enqueued_at")
    )
    oldest = backlog["oldest"]
    waited = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return {"pending": backlog["pending"], "oldest_seconds": round(max(waited, 0.0), 1)}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        queue = queue_backlog()
    except DatabaseError as error:
        # The class name says enough (OperationalError, ...); the message may
        # quote connection details, which do not belong in an open endpoint.
        logger.error("healthz: database unreachable (%s)", type(error).__name__)
        return JsonResponse({"db": "unreachable"}, status=503)
    return JsonResponse({"db": "ok", "queue": queue})
