"""The 500 page: the site's look, with nothing in it that could fail a second time.

Django's own 500 handler would render templates/500.html without the site's name or
stylesheet; rendering it like the other pages (request context, session, user)
could hit the very fault that caused the 500. So it gets three strings: the site's
name and the two stylesheet URLs. The 400, 403 and 404 pages are Django's handlers
with the site's templates.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.template import loader
from django.templatetags.static import static


def stylesheet_url(path: str) -> str:
    """The hashed URL of a stylesheet, or its plain name (also served) if that lookup fails.

    The lookup fails when collectstatic's manifest lacks the file, which is one of
    the faults a 500 may be reporting.
    """
    try:
        return static(path)
    except ValueError:
        return f"{settings.STATIC_URL}{path}"


def server_error(request: HttpRequest) -> HttpResponse:
    context = {
        "SITE_NAME": settings.SITE_NAME,
        "site_css": stylesheet_url("css/site.css"),
        "accounts_css": stylesheet_url("css/accounts.css"),
    }
    return HttpResponseServerError(loader.render_to_string("500.html", context))
