from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict:
    """Values every page's layout needs (site name, whether X is the sandbox)."""
    return {
        "SITE_NAME": settings.SITE_NAME,
        "X_SANDBOX": getattr(settings, "X_SANDBOX", False),
    }
