"""Log lines that machines can read and that never carry a secret.

`JsonFormatter` writes one JSON object per record (the request log and the X
client put their numbers in `extra`, which becomes top-level keys).
`RedactSecretsFilter` sits on every handler: OAuth libraries log signatures,
parameters and token responses at DEBUG, callback URLs carry `oauth_verifier`,
`code` and `state`, and an exception message can quote a URL. Rather than trust
each caller, the filter scrubs every line on its way out.
"""

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from accounts.secret_columns import SECRET_COLUMNS

REDACTED = "[redacted]"

# Parameter and field names whose values are secrets or single-use proofs.
SECRET_NAMES = (
    "oauth_token_secret",
    "oauth_token",
    "oauth_verifier",
    "oauth_signature",
    "oauth_consumer_secret",
    *SECRET_COLUMNS,
    "id_token",
    "code_verifier",
    "client_secret",
    "consumer_secret",
    "csrfmiddlewaretoken",
    "sessionid",
    "csrftoken",
    "password",
    "signature",
    "secret",
    "token",
    "code",
    "state",
)
_NAMES = "|".join(SECRET_NAMES)
# A value ends at a separator of whichever encoding it sits in (query string,
# JSON, Python repr, header list, or a percent-encoded OAuth base string).
_VALUE = r"(?:(?!%26|%2526|%22|%2C)[^\s&,;'\"<>(){}\[\]])+"

# `name=value`, `name%3Dvalue` (OAuth base strings), `name="value"` (OAuth header).
_ASSIGNED = re.compile(
    rf"(?i)(?<![A-Za-z0-9])(?P<name>{_NAMES})(?P<sep>=|%3D|%253D)(?P<quote>\"?)(?P<value>{_VALUE})"
)
# `"name": "value"` (JSON), `'name': 'value'` (dict repr), `('name', 'value')` (pairs).
_QUOTED = re.compile(
    rf"(?i)(?P<q>['\"])(?P<name>{_NAMES})(?P=q)(?P<sep>\s*[:,]\s*)(?P<quote>b?['\"]?)(?P<value>{_VALUE})"
)
# `name: value` in prose ("state: abc"), only for names that are never ordinary words.
_COLON = re.compile(
    rf"(?i)(?<![A-Za-z0-9_])(?P<name>oauth_token|oauth_verifier|{'|'.join(SECRET_COLUMNS)}"
    rf"|client_secret|code_verifier)(?P<sep>:\s*)(?P<quote>)(?P<value>{_VALUE})"
)
_AUTH_SCHEME = re.compile(r"(?i)\b(?P<scheme>Bearer|Basic)\s+(?P<value>[A-Za-z0-9._~+/=-]+)")
# Tokens look like this; identifiers and paths do not, because they lack either a
# digit or the mix of cases plus `-`/`_` that base64url produces, or they are
# lower-case snake_case.
_OPAQUE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

# Attributes every LogRecord has; anything else came in through `extra`.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


def _looks_opaque(word: str) -> bool:
    if _UUID.match(word):
        return False
    if word.count("_") >= 2 and not any(c.isupper() for c in word):
        return False  # a snake_case identifier, such as a database constraint's name
    has_digit = any(c.isdigit() for c in word)
    has_alpha = any(c.isalpha() for c in word)
    if has_digit and has_alpha:
        return True
    mixed_case = any(c.isupper() for c in word) and any(c.islower() for c in word)
    return mixed_case and ("-" in word or "_" in word)


def _redact_value(match: re.Match) -> str:
    return match.group(0)[: match.start("value") - match.start(0)] + REDACTED


def redact(text: str) -> str:
    """The text with every secret-looking value replaced by `[redacted]`."""
    text = _ASSIGNED.sub(_redact_value, text)
    text = _QUOTED.sub(_redact_value, text)
    text = _COLON.sub(_redact_value, text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group('scheme')} {REDACTED}", text)
    return _OPAQUE.sub(lambda m: REDACTED if _looks_opaque(m.group(0)) else m.group(0), text)


class RedactSecretsFilter(logging.Filter):
    """Rewrite the record's message, traceback and string extras without secrets.

    The record is changed in place, so whichever handler sees it first protects
    every later one; the message is rendered here once and its args dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_secrets_redacted", False):
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg} {record.args!r}"
        record.msg = redact(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, redact(value))
        record._secrets_redacted = True
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name in _RECORD_ATTRIBUTES or name.startswith("_"):
                continue
            if value is None or isinstance(value, str | int | float | bool):
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str)
