"""The Content-Security-Policy, as django-csp's CONTENT_SECURITY_POLICY setting.

Nothing inline, nothing from a CDN. The sign-in button posts a form whose answer
redirects to X, and browsers apply `form-action` to that redirect, so X's origins
(OAuth 1.0a's authenticate page is on the API host, OAuth 2.0's authorize page on
the web host) are allowed there. With the sandbox, avatars come from it too.
"""

from urllib.parse import urlsplit


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(x_api_base_url: str, x_web_base_url: str, x_sandbox: bool) -> dict:
    """The policy for X at these base URLs, in django-csp's settings format."""
    x_origins = sorted({_origin(x_api_base_url), _origin(x_web_base_url)})
    sandbox_images = x_origins if x_sandbox else []
    return {
        "DIRECTIVES": {
            "default-src": ["'self'"],
            "script-src": ["'self'"],
            "style-src": ["'self'"],
            "img-src": [
                "'self'",
                "data:",
                "https://pbs.twimg.com",
                "https://abs.twimg.com",
                *sandbox_images,
            ],
            "font-src": ["'self'"],
            "connect-src": ["'self'"],
            "object-src": ["'none'"],
            "base-uri": ["'self'"],
            "form-action": ["'self'", *x_origins],
            "frame-ancestors": ["'none'"],
        }
    }
