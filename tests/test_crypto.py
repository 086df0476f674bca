"""Tokens are encrypted at rest, decryptable with any configured key, rotatable."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from accounts import crypto
from accounts.models import Profile, TokenKind, XToken
from accounts.tokens import store_token

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def raw_token_row(token_id: int) -> tuple[str, str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, token_secret, refresh_token FROM accounts_xtoken WHERE id = %s",
            [token_id],
        )
        return cursor.fetchone()


@pytest.fixture
def profile(django_user_model) -> Profile:
    return django_user_model.objects.create(username="ada").x_profile


def test_every_user_gets_a_profile(django_user_model):
    user = django_user_model.objects.create(username="grace")
    assert Profile.objects.filter(user=user).count() == 1


def test_stored_token_is_not_in_the_database_in_clear(profile, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    token = store_token(
        profile,
        TokenKind.OAUTH2,
        access_token="access-SECRET-1234",
        refresh_token="refresh-SECRET-5678",
        expires_in=7200,
    )
    raw = raw_token_row(token.pk)
    assert all(raw[i] and "SECRET" not in raw[i] for i in (0, 2))
    assert Fernet(OLD_KEY.encode()).decrypt(raw[0].encode()) == b"access-SECRET-1234"

    reloaded = XToken.objects.get(pk=token.pk)
    assert reloaded.access_token == "access-SECRET-1234"
    assert reloaded.refresh_token == "refresh-SECRET-5678"
    assert reloaded.masked == "OAuth 2.0 …1234"
    assert reloaded.expires_at is not None


def test_same_token_encrypts_differently_each_time(profile):
    assert crypto.encrypt("same") != crypto.encrypt("same")


def test_rotation_rewrites_tokens_under_the_newest_key(profile, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    token = store_token(profile, TokenKind.OAUTH1, access_token="1-abc", token_secret="s3cr3t")

    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert XToken.objects.get(pk=token.pk).token_secret == "s3cr3t"  # old key still reads
    out = io.StringIO()
    call_command("rotate_token_keys", stdout=out)
    assert "Re-encrypted 1 tokens" in out.getvalue()

    raw_access, raw_secret, _ = raw_token_row(token.pk)
    assert Fernet(NEW_KEY.encode()).decrypt(raw_secret.encode()) == b"s3cr3t"
    assert Fernet(NEW_KEY.encode()).decrypt(raw_access.encode()) == b"1-abc"
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY]
    assert XToken.objects.get(pk=token.pk).access_token == "1-abc"


def test_missing_key_loads_the_row_but_keeps_the_secret_unreadable_and_intact(profile, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [OLD_KEY]
    token = store_token(profile, TokenKind.OAUTH1, access_token="1-abc", token_secret="x")
    raw_before = raw_token_row(token.pk)
    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY]

    loaded = XToken.objects.get(pk=token.pk)
    assert not loaded.is_readable and crypto.is_unreadable(loaded.access_token)
    with pytest.raises(crypto.TokenDecryptionError, match="TOKEN_ENCRYPTION_KEYS"):
        crypto.decrypt(raw_before[0])
    loaded.save()  # writes the very ciphertext it read, not a placeholder
    assert raw_token_row(token.pk) == raw_before

    settings.TOKEN_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert XToken.objects.get(pk=token.pk).access_token == "1-abc"
