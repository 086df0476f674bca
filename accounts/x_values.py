"""What X says about a person, made fit to store and to show.

X's answers are input like any other: a name can carry a NUL byte (PostgreSQL
refuses it, so the sign-in would fail and its fresh grant would be orphaned), a
bio can carry terminal escapes or a right-to-left override that disguises the
text around it, a count can be larger than its column, a "website" can be a
`javascript:` URL. Every value from X passes through here once, when XUser is
built, and stored values pass through again on their way to a page or an export,
because rows written before this existed may hold anything.

Limits are read from the Profile model's fields, so a migration that widens a
column widens what is kept.
"""

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.db.backends.base.operations import BaseDatabaseOperations

# C0 and C1 control characters (NUL, BEL, ESC, CSI...), DEL, lone surrogates (not
# encodable, so no database takes them), the bidi embeddings, overrides and
# isolates (U+202A-202E, U+2066-2069) that reorder the text around them, and the
# two noncharacters XML (and so XLSX) refuses.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069\ufffe\uffff]")
# Whitespace controls become a space, so "a\tb" stays two words.
_SPACING = re.compile("[\t\n\v\f\r\x85\u2028\u2029]+")
# A bio may span lines; a line break is kept there and nothing else.
_LINE_BREAKS = re.compile("\r\n?|[\v\f\x85\u2028\u2029]")
X_ID = re.compile(r"[0-9]+")
WEB_SCHEMES = ("http", "https")


def clean_text(value: Any, *, multiline: bool = False) -> str:
    """`value` as text with no control character, bidi control or unencodable character.

    Anything that is not a string (X sends null for a missing url) is "".
    """
    if not isinstance(value, str):
        return ""
    if multiline:
        value = _LINE_BREAKS.sub("\n", value)
        lines = (_SPACING.sub(" ", line) for line in value.split("\n"))
        return "\n".join(_UNSAFE.sub("", line) for line in lines)
    return _UNSAFE.sub("", _SPACING.sub(" ", value))


def _profile_field(field_name: str):
    # Looked up, not imported: the Profile model cleans itself with this module.
    return apps.get_model("accounts", "Profile")._meta.get_field(field_name)


def _max_length(field_name: str) -> int:
    return _profile_field(field_name).max_length


def profile_text(field_name: str, value: Any) -> str:
    """Clean text, without spaces at either end, cut to the Profile column `field_name`."""
    multiline = field_name == "description"
    return clean_text(value, multiline=multiline).strip()[: _max_length(field_name)]


def profile_url(field_name: str, value: Any) -> str:
    """An http(s) URL with a host that fits the column, else "".

    A longer URL is dropped rather than cut: a cut URL leads somewhere else.
    """
    url = clean_text(value).strip()
    if len(url) > _max_length(field_name):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme not in WEB_SCHEMES or not parts.hostname:
        return ""
    return url


def count_range(field_name: str) -> tuple[int, int]:
    """The values the Profile column `field_name` can hold on every supported database.

    Django's portable ranges, not the current connection's: SQLite would take any
    64-bit number and a copy of its data would then not fit in PostgreSQL.
    """
    internal_type = _profile_field(field_name).get_internal_type()
    return BaseDatabaseOperations.integer_field_ranges[internal_type]


def profile_count(field_name: str, value: Any) -> int:
    """A count clamped to its column's range; anything that is not a number counts 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 0
    low, high = count_range(field_name)
    return min(max(number, low), high)


def x_user_id(value: Any) -> str:
    """X's id for a person as stored: digits only, within the column.

    The id is what links a sign-in to an existing account, so it is never
    repaired: anything else raises ValueError and the answer is refused.
    """
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not X_ID.fullmatch(text):
        raise ValueError("X sent a user id that is not a number")
    if len(text) > _max_length("x_user_id"):
        raise ValueError("X sent a user id longer than any X id")
    return text


def flag(value: Any) -> bool:
    """Only JSON true is true (a string "false" is not)."""
    return value is True


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def v1_date(value: Any) -> datetime | None:
    """X v1.1's "Wed Oct 21 23:53:04 +0000 2015", or None when it does not parse."""
    if not isinstance(value, str):
        return None
    try:
        return _aware(parsedate_to_datetime(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def v2_date(value: Any) -> datetime | None:
    """X v2's ISO 8601 "2015-10-21T23:53:04.000Z", or None when it does not parse."""
    if not isinstance(value, str):
        return None
    try:
        return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def clean_json(value: Any) -> Any:
    """A JSON document with every string (keys too) cleaned, for storing X's raw answer.

    PostgreSQL's jsonb refuses a NUL even escaped, so allauth's copy of X's answer
    (SocialAccount.extra_data) needs this as much as the profile does.
    """
    if isinstance(value, str):
        return clean_text(value, multiline=True)
    if isinstance(value, dict):
        return {clean_text(key): clean_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clean_json(item) for item in value]
    return value


def clean_loaded_profile(profile, field_names: Iterable[str]) -> None:
    """Make the loaded fields of a profile read from the database safe to show.

    Rows written before X's values were cleaned may hold control characters,
    bidi overrides, counts beyond the column or a `javascript:` URL. Only the
    fields that were loaded are touched: reading a deferred one would cost a query.
    """
    for name in field_names:
        value = getattr(profile, name)
        if name in TEXT_FIELDS and value is not None:
            setattr(profile, name, profile_text(name, value))
        elif name in URL_FIELDS:
            setattr(profile, name, profile_url(name, value))
        elif name in COUNT_FIELDS:
            setattr(profile, name, profile_count(name, value))


TEXT_FIELDS = frozenset({"x_user_id", "screen_name", "name", "location", "description"})
URL_FIELDS = frozenset({"url", "profile_image_url"})
COUNT_FIELDS = frozenset({"followers_count", "following_count", "tweet_count", "listed_count"})
