"""The user-facing half of both OAuth flows: X's consent page and callback handling.

Both OAuth 1.0a and 2.0 send the user to the same kind of page and back to a
registered callback, so the allow-list rules and the page live here once.
"""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from x_sandbox.state import Sandbox
from x_sandbox.web import Request, Response, redirect

PAGE_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f7f9f9;color:#0f1419;
margin:0;padding:2rem 1rem}
main{max-width:28rem;margin:0 auto;background:#fff;border:1px solid #cfd9de;border-radius:16px;
padding:1.5rem}
.notice{background:#fff4cc;border-radius:8px;padding:.5rem .75rem;font-size:.9rem;margin:0 0 1rem}
h1{font-size:1.4rem;margin:.25rem 0 1rem}
fieldset{border:0;padding:0;margin:0 0 1.25rem;max-height:24rem;overflow:auto}
label{display:flex;gap:.6rem;align-items:center;padding:.5rem;border-radius:8px;cursor:pointer}
label:hover{background:#f7f9f9}
.handle{color:#536471}
.actions{display:flex;gap:.75rem}
button{flex:1;font:inherit;font-weight:700;padding:.7rem;border-radius:999px;cursor:pointer;
border:1px solid #cfd9de;background:#fff}
button[value=allow]{background:#0f1419;color:#fff;border-color:#0f1419}
"""


def callback_allowed(url: str, patterns: list[str]) -> bool:
    """Whether a callback/redirect URI is registered.

    A pattern ending in ":*" (e.g. "http://127.0.0.1:*") allows any port and path
    on that scheme and host; every other pattern must match exactly. The URL is
    parsed rather than prefix-matched so "http://127.0.0.1:80@evil.example/"
    does not slip through.
    """
    return any(_matches(url, pattern) for pattern in patterns)


def _matches(url: str, pattern: str) -> bool:
    if not pattern.endswith(":*"):
        return url == pattern
    allowed = urlsplit(pattern[:-2])
    candidate = urlsplit(url)
    try:
        candidate.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    return (
        candidate.scheme == allowed.scheme
        and candidate.hostname == allowed.hostname
        and candidate.username is None
        and candidate.password is None
    )


def redirect_with(url: str, params: dict[str, str]) -> Response:
    """Redirect to a callback, keeping any query it already had."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return redirect(urlunsplit(parts._replace(query=urlencode(query))))


def _page(title: str, content: str, status: int = 200) -> Response:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{PAGE_STYLE}</style></head><body><main>"
        '<p class="notice">X sandbox — not the real X</p>'
        f"{content}</main></body></html>"
    )
    return Response(status, html.encode(), "text/html; charset=utf-8")


def error_page(title: str, message: str) -> Response:
    """Shown instead of redirecting when the redirect target itself cannot be trusted."""
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>", status=400)


def consent_page(sandbox: Sandbox, request: Request) -> Response:
    """X's "Authorize app" page: pick a persona, then allow or cancel.

    The form posts back to the very same URL, query string included, so the
    handler sees the original authorization request again.
    """
    action = request.raw_path + ("?" + request.query_string if request.query_string else "")
    app_name = escape(sandbox.config.app_name)
    choices = "".join(
        f'<label><input type="radio" name="persona" value="{escape(p.screen_name)}"'
        f"{' checked' if index == 0 else ''}> <span><strong>{escape(p.name)}</strong> "
        f'<span class="handle">@{escape(p.screen_name)}</span></span></label>'
        for index, p in enumerate(sandbox.list_personas())
    )
    content = (
        f"<h1>{app_name} wants to access your X account</h1>"
        f'<form method="post" action="{escape(action)}">'
        f"<fieldset><legend>Choose an account</legend>{choices}</fieldset>"
        '<div class="actions">'
        '<button type="submit" name="decision" value="allow">Authorize app</button>'
        '<button type="submit" name="decision" value="deny">Cancel</button>'
        "</div></form>"
    )
    return _page(f"Authorize {sandbox.config.app_name}", content)
