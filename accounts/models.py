"""X profiles and the X tokens the site holds for them.

The seed's `UserProfile` (profile_image_url, location, url, description, one per
user, made by a post_save signal) grows into `Profile`; its clear-text
`access_token` becomes `XToken`, encrypted, one per sign-in method.
"""

import json
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts import crypto, x_values
from accounts.fields import EncryptedTextField
from accounts.secret_columns import HINT_LENGTH, SECRET_COLUMNS, hint_of, masked
from tallies import keys
from tallies.tracked import TalliedModel, TalliedQuerySet


class TokenKind(models.TextChoices):
    OAUTH1 = "oauth1", _("OAuth 1.0a")
    OAUTH2 = "oauth2", _("OAuth 2.0")


class TokenStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    EXPIRED = "expired", _("Expired")
    REVOKED = "revoked", _("Revoked")
    INVALID = "invalid", _("Invalid")
    ERROR = "error", _("Error")
    # No configured key decrypts it: found by any use of the token or by
    # `manage.py rotate_token_keys`; putting the key back and checking it heals it.
    UNREADABLE = "unreadable", _("Cannot be decrypted")
    # A refresh X answered too late: X may have spent the refresh token and issued a
    # pair the site never received, so only the person signing in again can recover.
    NEEDS_SIGN_IN = "needs_signin", _("Needs a new sign-in")


class Profile(TalliedModel, models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="x_profile",
    )
    # Empty until the first sign-in; X's id, not the screen name, identifies the
    # person, because screen names can be changed and reused.
    x_user_id = models.CharField(_("X user id"), max_length=32, unique=True, null=True, blank=True)
    screen_name = models.CharField(
        verbose_name=_("screen name"), max_length=50, blank=True, db_index=True
    )
    name = models.CharField(verbose_name=_("name"), max_length=100, blank=True)
    profile_image_url = models.URLField(
        verbose_name=_("profile image url"), max_length=500, blank=True
    )
    location = models.CharField(verbose_name=_("location"), max_length=100, blank=True)
    url = models.URLField(verbose_name=_("url"), max_length=500, blank=True)
    description = models.CharField(verbose_name=_("description"), max_length=500, blank=True)
    followers_count = models.PositiveIntegerField(verbose_name=_("followers count"), default=0)
    following_count = models.PositiveIntegerField(verbose_name=_("following count"), default=0)
    tweet_count = models.PositiveIntegerField(verbose_name=_("tweet count"), default=0)
    listed_count = models.PositiveIntegerField(verbose_name=_("listed count"), default=0)
    protected = models.BooleanField(verbose_name=_("protected"), default=False)
    verified = models.BooleanField(verbose_name=_("verified"), default=False)
    x_created_at = models.DateTimeField(_("joined X"), null=True, blank=True)
    last_synced_at = models.DateTimeField(verbose_name=_("last synced at"), null=True, blank=True)
    sign_in_method = models.CharField(
        verbose_name=_("sign in method"),
        max_length=10,
        choices=TokenKind.choices,
        blank=True,
        help_text=_("Last method used."),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    objects = TalliedQuerySet.as_manager()
    # The dashboard's users, X accounts by method and sign-ups per day (tallies.keys).
    tally_fields = ("x_user_id", "sign_in_method", "created_at")

    class Meta:
        permissions = [
            ("export_profile", _("Can export profiles")),
        ]

    def __str__(self) -> str:
        return f"@{self.screen_name}" if self.screen_name else f"{self.user}'s profile"

    @classmethod
    def tally_keys(cls, values) -> list[str]:
        return keys.of_profile(*values)

    @classmethod
    def from_db(cls, db, field_names, values):
        """A profile as loaded, its values from X made safe to show (Django's loading hook).

        Values from X are cleaned before they are stored, but rows written earlier
        may hold anything X sent; cleaning on load covers every page that shows a
        profile (the person's own, the admin's) without each having to remember.
        """
        profile = super().from_db(db, field_names, values)
        x_values.clean_loaded_profile(profile, field_names)
        return profile

    @property
    def x_profile_url(self) -> str:
        if not self.screen_name:
            return ""
        return f"{settings.X_WEB_BASE_URL}/{self.screen_name}"

    @property
    def current_token(self) -> "XToken | None":
        """The token of the method the person last signed in with."""
        tokens = {token.kind: token for token in self.tokens.all()}
        return tokens.get(self.sign_in_method) or next(iter(tokens.values()), None)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_profile_for_new_user(sender, instance, created: bool, **kwargs) -> None:
    """Every user has a profile, as in the seed, so views never need to check."""
    if created:
        Profile.objects.get_or_create(user=instance)


def current_token_column(
    column: str, profile: str = "pk", method: str = "sign_in_method"
) -> Subquery:
    """One column of a profile's current token, as a correlated subquery.

    The rule of Profile.current_token inside a single query (admin lists, exports):
    the token of the method the person last signed in with, else any other. The
    preference is a WHERE condition, not an ORDER BY, because SQLite cannot see the
    outer row there. `profile` and `method` name the outer row's columns.
    """
    same_method = XToken.objects.filter(
        profile=OuterRef(OuterRef(profile)), kind=OuterRef(OuterRef(method))
    )
    tokens = (
        XToken.objects.filter(profile=OuterRef(profile))
        .filter(Q(kind=OuterRef(method)) | ~Exists(same_method))
        .order_by("kind")
        .values(column)[:1]
    )
    return Subquery(tokens)


class XTokenQuerySet(TalliedQuerySet):
    def expiring_within(self, delta: timedelta) -> "XTokenQuerySet":
        return self.filter(
            kind=TokenKind.OAUTH2,
            expires_at__isnull=False,
            expires_at__lte=timezone.now() + delta,
        )


class GrantSecrets(models.Model):
    """The encrypted columns of a grant (SECRET_COLUMNS) and their clear hint.

    Declared once for the tokens the site holds and the grants it is revoking.
    """

    access_token = EncryptedTextField(blank=True, editable=False)
    token_secret = EncryptedTextField(blank=True, editable=False)
    refresh_token = EncryptedTextField(blank=True, editable=False)
    # OAuth 2.0: access tokens a refresh replaced, which X honours until they
    # expire; JSON. Revoking the grant revokes them too.
    earlier_access_tokens = EncryptedTextField(blank=True, editable=False)
    # The last HINT_LENGTH characters, kept apart so lists never decrypt anything.
    token_hint = models.CharField(
        verbose_name=_("token hint"), max_length=HINT_LENGTH, blank=True, editable=False
    )

    class Meta:
        abstract = True


class XToken(TalliedModel, GrantSecrets):
    """An access token X issued for a profile, encrypted at rest.

    Secrets are only ever read to call X; everywhere else `masked` stands in.
    """

    profile = models.ForeignKey(
        Profile, verbose_name=_("profile"), on_delete=models.CASCADE, related_name="tokens"
    )
    kind = models.CharField(verbose_name=_("kind"), max_length=10, choices=TokenKind.choices)
    scopes = models.CharField(verbose_name=_("scopes"), max_length=255, blank=True)
    expires_at = models.DateTimeField(
        verbose_name=_("expires at"), null=True, blank=True, db_index=True
    )
    status = models.CharField(
        verbose_name=_("status"),
        max_length=16,
        choices=TokenStatus.choices,
        default=TokenStatus.ACTIVE,
        db_index=True,
    )
    last_checked_at = models.DateTimeField(
        verbose_name=_("last checked at"), null=True, blank=True
    )
    last_refreshed_at = models.DateTimeField(
        verbose_name=_("last refreshed at"), null=True, blank=True
    )
    last_error = models.TextField(verbose_name=_("last error"), blank=True)
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    objects = XTokenQuerySet.as_manager()
    # The dashboard's token health: tokens per method and status (tallies.keys).
    tally_fields = ("kind", "status")

    class Meta:
        verbose_name = _("X token")
        constraints = [
            models.UniqueConstraint(fields=["profile", "kind"], name="one_token_per_method"),
        ]
        # "Active OAuth 2.0 tokens expiring within 24 hours" (a window that moves, so
        # not a tally) is a range count on this index, never a scan of the table.
        indexes = [
            models.Index(
                fields=["status", "kind", "expires_at"], name="xtoken_status_kind_expiry"
            ),
        ]
        permissions = [
            ("check_token", _("Can check X tokens")),
            ("refresh_token", _("Can refresh X tokens")),
            ("revoke_token", _("Can revoke X tokens")),
        ]

    def __str__(self) -> str:
        return self.masked

    @classmethod
    def tally_keys(cls, values) -> list[str]:
        return keys.of_token(*values)

    @property
    def masked(self) -> str:
        return masked(self.get_kind_display(), self.token_hint)

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def set_secrets(self, access_token: str, token_secret: str = "", refresh_token: str = ""):
        self.access_token = access_token
        self.token_secret = token_secret
        self.refresh_token = refresh_token
        self.token_hint = hint_of(access_token)

    def wipe_secrets(self) -> None:
        self.set_secrets("", "", "")
        self.earlier_access_tokens = ""

    @property
    def is_readable(self) -> bool:
        """False when a secret could not be decrypted with any configured key."""
        return not any(crypto.is_unreadable(getattr(self, name)) for name in SECRET_COLUMNS)

    @property
    def holds_grant(self) -> bool:
        """Whether this row still holds something X may honour (and so must be revoked)."""
        return any(getattr(self, name) for name in SECRET_COLUMNS)

    def live_earlier_access_tokens(self, now: datetime | None = None) -> list[str]:
        """The replaced access tokens X still honours (not yet expired)."""
        return [token for token, _ in _live_earlier(self.earlier_access_tokens, now)]

    def remember_replaced_access_token(self, access_token: str, expires_at: datetime | None):
        """Keep an access token a refresh replaced until it expires, so a revoke can
        end it too: X does not kill it when it issues the next pair."""
        kept = _live_earlier(self.earlier_access_tokens)
        if access_token and expires_at is not None and expires_at > timezone.now():
            kept.append((access_token, expires_at))
        self.earlier_access_tokens = _dump_earlier(kept)


def _live_earlier(stored: str, now: datetime | None = None) -> list[tuple[str, datetime]]:
    if not stored or crypto.is_unreadable(stored):
        return []
    now = now or timezone.now()
    entries = [
        (item["token"], datetime.fromisoformat(item["expires_at"])) for item in json.loads(stored)
    ]
    return [(token, expires_at) for token, expires_at in entries if expires_at > now]


def _dump_earlier(entries: list[tuple[str, datetime]]) -> str:
    if not entries:
        return ""
    return json.dumps([{"token": t, "expires_at": e.isoformat()} for t, e in entries])


class PendingRevocation(TalliedModel, GrantSecrets):
    """A grant the site no longer holds (or could not revoke) that X has not confirmed revoked.

    The secrets stay encrypted exactly like XToken's until X confirms, then they are
    wiped and the row is kept as a record. There are no foreign keys on purpose: the
    row must outlive its token, profile and user (it is often written while they are
    being deleted), so it keeps snapshots and the token's id instead.
    """

    kind = models.CharField(verbose_name=_("kind"), max_length=10, choices=TokenKind.choices)
    token_ref = models.PositiveBigIntegerField(
        _("X token id"),
        null=True,
        blank=True,
        db_index=True,
        help_text=_("The XToken it came from."),
    )
    x_user_id = models.CharField(_("X user id"), max_length=32, blank=True)
    screen_name = models.CharField(verbose_name=_("screen name"), max_length=50, blank=True)
    reason = models.CharField(verbose_name=_("reason"), max_length=200)
    attempts = models.PositiveIntegerField(verbose_name=_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(
        verbose_name=_("next attempt at"), default=timezone.now, db_index=True
    )
    last_error = models.TextField(verbose_name=_("last error"), blank=True)
    last_http_status = models.PositiveSmallIntegerField(
        verbose_name=_("last http status"), null=True, blank=True
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    resolved_at = models.DateTimeField(
        verbose_name=_("resolved at"), null=True, blank=True, db_index=True
    )
    resolution = models.CharField(verbose_name=_("resolution"), max_length=200, blank=True)

    objects = TalliedQuerySet.as_manager()
    # The dashboard's "Revocations X has not confirmed yet" (tallies.keys).
    tally_fields = ("resolved_at",)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("pending revocation")

    def __str__(self) -> str:
        who = f"@{self.screen_name}" if self.screen_name else "an account"
        return f"{self.masked} of {who}"

    @classmethod
    def tally_keys(cls, values) -> list[str]:
        return keys.of_pending_revocation(*values)

    @property
    def masked(self) -> str:
        label = TokenKind(self.kind).label if self.kind in TokenKind.values else self.kind
        return masked(label, self.token_hint)

    @property
    def is_resolved(self) -> bool:
        return self.resolved_at is not None


class AccountDeletion(models.Model):
    """The only trace of a person who deleted their account: when, and a keyed hash.

    No name, no X id, no user id. `subject_hash` is an HMAC of the X user id keyed
    from SECRET_KEY (accounts.account_deletion.subject_hash), so staff can see that
    one X account was deleted twice without being able to tell whose it was.
    """

    subject_hash = models.CharField(
        verbose_name=_("subject hash"), max_length=64, blank=True, db_index=True
    )
    deleted_at = models.DateTimeField(
        verbose_name=_("deleted at"), default=timezone.now, db_index=True
    )
    grants_revoked = models.PositiveIntegerField(verbose_name=_("grants revoked"), default=0)
    grants_pending = models.PositiveIntegerField(
        verbose_name=_("grants pending"),
        default=0,
        help_text=_("Grants X did not confirm revoked yet (kept as pending revocations)."),
    )

    class Meta:
        ordering = ["-deleted_at", "-id"]
        verbose_name = _("account deletion")

    def __str__(self) -> str:
        return f"Account deleted {self.deleted_at:%Y-%m-%d %H:%M}"
