"""Encryption at rest for X tokens.

Fernet gives authenticated encryption with a timestamp; MultiFernet lets operators
rotate keys: the first key in `TOKEN_ENCRYPTION_KEYS` encrypts, every key decrypts,
and `manage.py rotate_token_keys` rewrites old rows under the newest key.
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

UNREADABLE_MESSAGE = (
    "A stored X token could not be decrypted: is its key missing from TOKEN_ENCRYPTION_KEYS?"
)


class TokenDecryptionError(Exception):
    """A stored token cannot be decrypted with any configured key."""


class UnreadableSecret:
    """Stands in for a stored secret that no configured key decrypts.

    Loading such a row must not fail: a bulk job, a deletion or a page would crash
    on one bad row (a key removed from TOKEN_ENCRYPTION_KEYS, a development key's
    data under production keys). The ciphertext is kept, so saving the row writes
    it back unchanged and putting the key back makes the token readable again. It
    is deliberately not a str: nothing can send it to X by mistake.
    """

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: str) -> None:
        self.ciphertext = ciphertext

    def __repr__(self) -> str:
        return "<unreadable secret>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnreadableSecret) and other.ciphertext == self.ciphertext

    def __hash__(self) -> int:
        return hash(self.ciphertext)


def is_unreadable(value: object) -> bool:
    return isinstance(value, UnreadableSecret)


def derived_development_key(secret_key: str) -> str:
    """A stable Fernet key for development, so a laptop needs no extra setting.

    Production refuses to start without TOKEN_ENCRYPTION_KEYS (see settings), so
    this never protects real tokens.
    """
    digest = hashlib.sha256(b"x-signin token encryption\x00" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


@lru_cache(maxsize=4)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def configured_keys() -> tuple[str, ...]:
    keys = tuple(settings.TOKEN_ENCRYPTION_KEYS)
    return keys or (derived_development_key(settings.SECRET_KEY),)


def encrypt(plaintext: str) -> str:
    return _multi_fernet(configured_keys()).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _multi_fernet(configured_keys()).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise TokenDecryptionError(UNREADABLE_MESSAGE) from exc
