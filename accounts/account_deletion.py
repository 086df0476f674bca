"""Deleting an account at its owner's request, leaving nothing of them behind.

Order matters. Grants are ended first, through the same path as Disconnect X
(revoked at X, or kept encrypted on the pending-revocations list until X
confirms): an account is never deleted while the site still silently holds a
grant. Then, in one transaction: every session of the user ends, rows elsewhere
that keep a snapshot of the person (audit trail, bulk job items, pending
revocations, the admin's log, django-axes' login records) are anonymised, the
user is deleted (its profile, tokens, X connections and sign-in events cascade),
and one AccountDeletion row records that it happened.

The AccountDeletion row keeps a keyed hash of the X user id instead of the id:
staff can tell two deletions of one X account apart from two different people,
and nobody holding the database alone can test a guessed X id against it.
"""

import logging
from dataclasses import dataclass
from importlib import import_module

from allauth.socialaccount.models import SocialAccount
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Q
from django.utils.crypto import salted_hmac

from accounts import signin
from accounts.models import AccountDeletion, PendingRevocation, Profile, XToken
from admin_ext.models import AuditEvent, BulkJobItem

logger = logging.getLogger(__name__)

HASH_SALT = "accounts.account_deletion.subject"
# What replaces the person's name in rows that must stay (an audit message).
REDACTED = "[deleted account]"


def subject_hash(x_user_id: str) -> str:
    """HMAC-SHA256 of the X user id, keyed from SECRET_KEY; "" for an account without X."""
    if not x_user_id:
        return ""
    return salted_hmac(HASH_SALT, x_user_id, algorithm="sha256").hexdigest()


def confirmation_word(user: AbstractBaseUser) -> str:
    """What the person types to confirm: their @screen name, or their username without X."""
    profile = Profile.objects.filter(user=user).first()
    if profile is not None and profile.screen_name:
        return f"@{profile.screen_name}"
    return user.get_username()


def is_confirmed(user: AbstractBaseUser, typed: str) -> bool:
    """The typed text names this account (letter case and a missing @ forgiven)."""
    expected = confirmation_word(user).lstrip("@").casefold()
    return bool(expected) and typed.strip().lstrip("@").casefold() == expected


@dataclass(frozen=True)
class Deletion:
    grants_revoked: int
    grants_pending: int


def delete_account(user: AbstractBaseUser) -> Deletion:
    """End every grant at X, then remove the person from every table but one anonymous line."""
    profile, _ = Profile.objects.get_or_create(user=user)
    tokens = list(profile.tokens.all())
    signin.disconnect_x(profile)
    pending = _unconfirmed(tokens)
    identity = _Identity.of(user, profile, [token.pk for token in tokens])
    with transaction.atomic():
        end_sessions_of(user.pk)
        _anonymise_snapshots(identity)
        user.delete()
        # Again for what the cascade itself wrote: a token a sign-in created meanwhile
        # is queued as a pending revocation, with the person's name, by its pre_delete.
        _anonymise_snapshots(identity)
        AccountDeletion.objects.create(
            subject_hash=subject_hash(identity.x_user_id),
            grants_revoked=len(tokens) - pending,
            grants_pending=pending,
        )
    logger.info("Account deleted at its owner's request (%s grant(s) pending)", pending)
    return Deletion(grants_revoked=len(tokens) - pending, grants_pending=pending)


def _unconfirmed(tokens: list[XToken]) -> int:
    """How many of the grants just ended wait on the pending list for X to confirm."""
    ids = [token.pk for token in tokens]
    return (
        PendingRevocation.objects.filter(token_ref__in=ids, resolved_at__isnull=True)
        .values("token_ref")
        .distinct()
        .count()
    )


def end_sessions_of(user_id: int) -> int:
    """Delete every session signed in as this user, through the session store's API.

    Django keeps no index from users to sessions, so each stored session is decoded
    to read its user. Deleting through SessionStore.delete() also drops the cached
    copy under cached_db. A cache-only or cookie engine keeps no list of sessions
    to read: there, the person's other sessions end when they expire.
    """
    engine = import_module(settings.SESSION_ENGINE)
    store_class = engine.SessionStore
    if not hasattr(store_class, "get_model_class"):
        return 0
    model = store_class.get_model_class()
    decoder = store_class()
    ended = 0
    rows = model.objects.values_list("session_key", "session_data")
    for session_key, session_data in rows.iterator(chunk_size=2000):
        if decoder.decode(session_data).get("_auth_user_id") == str(user_id):
            store_class(session_key=session_key).delete()
            ended += 1
    return ended


@dataclass(frozen=True)
class _Identity:
    user_id: int
    profile_id: int
    token_ids: list[int]
    username: str
    x_user_id: str
    texts: tuple[str, ...]

    @classmethod
    def of(cls, user: AbstractBaseUser, profile: Profile, token_ids: list[int]) -> "_Identity":
        x_user_id = profile.x_user_id or ""
        texts = (profile.screen_name, x_user_id, profile.name, user.get_username())
        return cls(
            user_id=user.pk,
            profile_id=profile.pk,
            token_ids=token_ids,
            username=user.get_username(),
            x_user_id=x_user_id,
            texts=tuple(sorted({text for text in texts if text}, key=len, reverse=True)),
        )

    def redact(self, text: str) -> str:
        for known in self.texts:
            text = text.replace(known, REDACTED)
        return text


def _anonymise_snapshots(identity: _Identity) -> None:
    """Rows kept for staff (what happened to a grant, a job, a login) lose who it was."""
    audit = Q(profile_id=identity.profile_id) | Q(token_id__in=identity.token_ids)
    items = Q(profile_id=identity.profile_id) | Q(token_id__in=identity.token_ids)
    pending = Q(token_ref__in=identity.token_ids)
    if identity.x_user_id:
        audit |= Q(x_user_id=identity.x_user_id)
        pending |= Q(x_user_id=identity.x_user_id)
    _anonymise(
        AuditEvent.objects.filter(audit),
        identity,
        blank=("x_user_id", "screen_name"),
        unlink=("profile", "token"),
        redact=("message",),
    )
    _anonymise(
        BulkJobItem.objects.filter(items),
        identity,
        blank=("screen_name",),
        unlink=("profile", "token"),
        redact=("message",),
    )
    pending_rows = PendingRevocation.objects.filter(pending)
    pending_ids = list(pending_rows.values_list("pk", flat=True))
    _anonymise(
        pending_rows,
        identity,
        blank=("x_user_id", "screen_name"),
        redact=("reason", "last_error", "resolution"),
    )
    _anonymise_log_entries(identity, pending_ids)
    for model in (AccessAttempt, AccessLog, AccessFailureLog):
        model.objects.filter(username__iexact=identity.username).delete()


def _anonymise(
    rows: models.QuerySet,
    identity: _Identity,
    *,
    blank: tuple[str, ...] = (),
    unlink: tuple[str, ...] = (),
    redact: tuple[str, ...] = (),
) -> None:
    for row in rows.select_for_update():
        for name in blank:
            setattr(row, name, "")
        for name in unlink:
            setattr(row, name, None)
        for name in redact:
            setattr(row, name, identity.redact(getattr(row, name)))
        row.save(update_fields=[*blank, *[f"{name}_id" for name in unlink], *redact])


def _anonymise_log_entries(identity: _Identity, pending_ids: list[int]) -> None:
    """The admin's "Recent actions" keep each object's name as it was: drop the name."""
    social_ids = SocialAccount.objects.filter(user_id=identity.user_id).values_list("pk")
    about = Q(pk__in=[])
    for model, ids in (
        (get_user_model(), [identity.user_id]),
        (Profile, [identity.profile_id]),
        (XToken, identity.token_ids),
        (SocialAccount, [pk for (pk,) in social_ids]),
        (PendingRevocation, pending_ids),
    ):
        content_type = ContentType.objects.get_for_model(model)
        about |= Q(content_type=content_type, object_id__in=[str(pk) for pk in ids])
    for entry in LogEntry.objects.filter(about):
        entry.object_repr = REDACTED
        entry.change_message = identity.redact(entry.change_message)
        entry.save(update_fields=["object_repr", "change_message"])
