"""What the site stores about one person: for their account page and their data download.

Both are built from the model definitions, not from hand-written field lists: every
concrete column of each model is included unless it is a secret. A column is a
secret when it is encrypted (EncryptedTextField), named in SECRET_COLUMNS, or in
SECRET_DERIVED below, so a field added to a model later shows up in the download
by itself, and a new encrypted field can never leak into it.

The download's shape is versioned (SCHEMA_VERSION) and documented in the README
("Your data"). Values are JSON-native: numbers as numbers, booleans as booleans,
times as ISO 8601 strings in UTC, missing values as null.
"""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from allauth.socialaccount.models import SocialAccount
from django.contrib.auth.models import AbstractBaseUser
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.fields import EncryptedTextField
from accounts.models import SECRET_COLUMNS, PendingRevocation, Profile, XToken
from admin_ext.models import AuditEvent, SignInEvent

SCHEMA_VERSION = 1
# Not secrets themselves, but cut from one (the last characters of a token) or, for
# the user, a password hash: never handed out, not even to their owner.
SECRET_DERIVED = ("token_hint", "password")
# Links between rows inside the site (ids of other tables) say nothing about the
# person and would only confuse a reader of the file.
INTERNAL_LINKS = ("user", "profile", "actor", "job", "token", "token_ref")
# What staff typed about the person is not theirs to read in the audit trail's
# `actor_label` (a staff username); the action, outcome and message are.
NOT_ABOUT_THE_PERSON = ("actor_label",)
RECENT_EVENTS = 20


def is_secret(field: models.Field) -> bool:
    """Whether a column must never leave the site, whoever asks."""
    return (
        isinstance(field, EncryptedTextField)
        or field.name in SECRET_COLUMNS
        or field.name in SECRET_DERIVED
    )


def shared_fields(model: type[models.Model]) -> list[models.Field]:
    """The columns of `model` a person gets about themselves, in definition order."""
    return [
        field
        for field in model._meta.concrete_fields
        if not is_secret(field)
        and field.name not in INTERNAL_LINKS
        and field.name not in NOT_ABOUT_THE_PERSON
    ]


def json_value(value: Any) -> Any:
    """A column's value as JSON: times ISO 8601 (UTC), numbers and booleans as they are."""
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def row(instance: models.Model) -> dict[str, Any]:
    """One row as a JSON object of its shared columns."""
    return {
        field.name: json_value(field.value_from_object(instance))
        for field in shared_fields(instance._meta.model)
    }


def tokens_of(profile: Profile):
    # Only state columns are loaded: the secrets are never even decrypted here.
    secrets = [field.name for field in XToken._meta.concrete_fields if is_secret(field)]
    return profile.tokens.defer(*secrets).order_by("kind")


def sign_ins_of(user: AbstractBaseUser, limit: int | None = None):
    events = SignInEvent.objects.filter(user=user).order_by("-created_at", "-id")
    return events[:limit] if limit else events


def token_events_of(profile: Profile, limit: int | None = None):
    """Audit-trail rows about this person's grants: staff actions, Disconnect, revocations."""
    about = Q(profile=profile)
    if profile.x_user_id:
        about |= Q(x_user_id=profile.x_user_id)
    events = AuditEvent.objects.filter(about).order_by("-created_at", "-id")
    return events[:limit] if limit else events


def pending_revocations_of(profile: Profile):
    """Grants of this person the site gave up and X has not yet confirmed revoked."""
    if not profile.x_user_id:
        return PendingRevocation.objects.none()
    return PendingRevocation.objects.filter(x_user_id=profile.x_user_id).order_by("-created_at")


def last_used(token: XToken, sign_ins: list[SignInEvent]) -> datetime | None:
    """The last time the site used this grant: a sign-in with it, a check or a refresh."""
    moments = [token.last_checked_at, token.last_refreshed_at, token.created_at]
    moments += [event.created_at for event in sign_ins if event.method == token.kind]
    return max((moment for moment in moments if moment is not None), default=None)


def account_overview(user: AbstractBaseUser) -> dict[str, Any]:
    """What the account page shows: the profile, each grant and recent events."""
    profile, _ = Profile.objects.get_or_create(user=user)
    sign_ins = list(sign_ins_of(user))
    grants = [
        {"token": token, "last_used": last_used(token, sign_ins)} for token in tokens_of(profile)
    ]
    profile_facts = [
        (field.verbose_name, field.value_from_object(profile))
        for field in shared_fields(Profile)
        if field.name != "id"
    ]
    return {
        "profile": profile,
        "profile_facts": profile_facts,
        "grants": grants,
        "sign_ins": sign_ins[:RECENT_EVENTS],
        "token_events": list(token_events_of(profile, RECENT_EVENTS)),
        "x_only": not user.has_usable_password(),
    }


def personal_data(user: AbstractBaseUser) -> dict[str, Any]:
    """Everything the site stores about `user`, except secrets, as one JSON-ready dict."""
    profile, _ = Profile.objects.get_or_create(user=user)
    tokens = list(tokens_of(profile))
    sign_ins = list(sign_ins_of(user))
    x_grants = []
    for token in tokens:
        grant = row(token)
        grant["last_used_at"] = json_value(last_used(token, sign_ins))
        x_grants.append(grant)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": json_value(timezone.now()),
        "user": row(user),
        "profile": row(profile),
        "x_grants": x_grants,
        "x_connections": [row(account) for account in SocialAccount.objects.filter(user=user)],
        "sign_ins": [row(event) for event in sign_ins],
        "token_events": [row(event) for event in token_events_of(profile)],
        "pending_revocations": [row(pending) for pending in pending_revocations_of(profile)],
    }
