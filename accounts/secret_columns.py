"""Which columns hold a token secret, and the one way a token is shown: masked.

Named once, in a module that imports no model, so that everything that must keep the
secrets in reads the same list: the models' encryption checks, the admin and the
x_tokens command (never load them for a list), exports and the personal data
download (never write them), wiping a token, and the log filter (never log them,
project.logging, which loads before any model).
"""

from django.utils.translation import gettext

SECRET_COLUMNS = ("access_token", "token_secret", "refresh_token", "earlier_access_tokens")
# How much of a token is kept in clear (`token_hint`) to tell tokens apart on a page.
HINT_LENGTH = 4


def hint_of(token: object) -> str:
    """The last characters of a token, kept in clear as its `token_hint`."""
    return token[-HINT_LENGTH:] if isinstance(token, str) else ""


def masked(kind_label: str, hint: str | None) -> str:
    """A token as pages show it: its kind and hint ("OAuth 2.0 …x9Qz"), never more."""
    return f"{kind_label} …{hint}" if hint else gettext("%(kind)s (none)") % {"kind": kind_label}
