"""Ending grants at X: revoke now, or keep the grant durably until X confirms.

The promise (README, "What revoke promises"): a grant the site stops holding is
revoked at X first; when X cannot be reached, rate-limits us or refuses the app,
the grant goes to the encrypted PendingRevocation list, which the job workers
(and `manage.py x_tokens retry-revocations`) retry with exponential backoff until
X confirms. Nothing is reported "revoked" unless X answered for every token of
the grant, and no row ever drops a grant silently:

- `end_grant` is the one way code that gives up a grant asks for it to end
  (Disconnect X, a superseded sign-in, an abandoned sign-in, ...);
- any deletion of an XToken row (admin, cascade, shell, command) is caught by a
  pre_delete receiver that copies the grant into PendingRevocation inside the
  deleting transaction and tries X once that transaction has committed;
- deleting an allauth SocialAccount deletes the X token of that method, so the
  same receiver revokes it (our tokens hang off Profile, not SocialAccount).

`end_grant(..., token=...)` is an optional addition to the agreed signature: the
XToken row the grant is stored in, when the caller keeps that row (the Revoke
action). A later successful retry then also wipes that row.

Every attempt (not those made inside a bulk job, which audits its own items) is
announced with the `revocation_attempted` signal; admin_ext turns it into an
AuditEvent, so this app need not know about the staff tools.
"""

import contextvars
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from allauth.socialaccount.models import SocialAccount
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import pre_delete
from django.dispatch import Signal, receiver
from django.utils import timezone

from accounts import crypto, x_client
from accounts.models import PendingRevocation, Profile, TokenKind, TokenStatus, XToken
from accounts.outcomes import Outcome
from accounts.secret_columns import hint_of
from accounts.x_client import XError, XRateLimited, XTokenInvalid

logger = logging.getLogger(__name__)

# sender=PendingRevocation; kwargs: outcome (Outcome), reason (str), kind, x_user_id,
# screen_name, pending (PendingRevocation | None).
revocation_attempted = Signal()

FIRST_RETRY = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=6)
# A retry claims a row for this long, so two workers never revoke the same grant at
# once; a worker that dies mid-call leaves the row due again after it.
CLAIM_SECONDS = 120
# After a deletion commits, a thread spends at most this long per window calling X
# while the person waits; the rest is left to the workers.
INLINE_BUDGET_SECONDS = 5
INLINE_WINDOW_SECONDS = 30
REVOKED_MESSAGE = "Revoked at X."
ALREADY_GONE_MESSAGE = "X no longer knew this token."
DELETED_REASON = "token deleted (admin, cascade, shell or command)"
_deletion_reason: contextvars.ContextVar[str] = contextvars.ContextVar(
    "deletion_reason", default=DELETED_REASON
)
SOCIAL_PROVIDER_KINDS = {"twitter": TokenKind.OAUTH1, "twitter_oauth2": TokenKind.OAUTH2}


class RevokeRateLimited(XRateLimited):
    """X answered 429 partway through a grant; `remaining` is what is still alive."""

    def __init__(self, limited: XRateLimited, remaining: "Grant") -> None:
        super().__init__(
            limited.message,
            reset_at=limited.reset_at,
            http_status=limited.http_status,
            code=limited.code,
        )
        self.remaining = remaining


@dataclass(frozen=True)
class Grant:
    """Every token of one grant that X may still honour. Secrets: never logged."""

    kind: str
    access_token: str = field(default="", repr=False)
    token_secret: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    earlier_access_tokens: tuple[str, ...] = field(default=(), repr=False)

    @property
    def is_empty(self) -> bool:
        return not (self.access_token or self.refresh_token or self.earlier_access_tokens)

    @property
    def is_readable(self) -> bool:
        values = (self.access_token, self.token_secret, self.refresh_token)
        return not any(crypto.is_unreadable(v) for v in (*values, *self.earlier_access_tokens))


def grants_held(tokens: QuerySet[XToken]) -> int:
    """How many of these token rows still hold a grant (what deleting them will revoke).

    An empty secret is stored as "" (never encrypted), so this needs no decryption.
    """
    return tokens.exclude(access_token="", refresh_token="", earlier_access_tokens="").count()


def grant_of(token: XToken) -> Grant:
    """The grant an XToken row holds, including replaced access tokens not yet expired."""
    earlier = token.earlier_access_tokens
    earlier_tokens = (earlier,) if crypto.is_unreadable(earlier) else ()
    return Grant(
        kind=token.kind,
        access_token=token.access_token,
        token_secret=token.token_secret,
        refresh_token=token.refresh_token,
        earlier_access_tokens=earlier_tokens or tuple(token.live_earlier_access_tokens()),
    )


# Ending a grant ----------------------------------------------------------------------


def end_grant(
    kind: str,
    *,
    access_token: str,
    token_secret: str = "",
    refresh_token: str = "",
    earlier_access_tokens: Sequence[str] = (),
    profile: Profile | None = None,
    reason: str,
    token: XToken | None = None,
) -> Outcome:
    """Revoke every token of one grant at X now; when X cannot be reached or refuses the
    client, put it on the durable, encrypted pending-revocations list for the workers to retry.

    `ok` is True only when X confirmed (or said it no longer knew the tokens). When
    it is False the grant is safe in PendingRevocation (`pending_revocation_id`), so
    the caller may forget it. Call it outside a transaction that may roll back.
    """
    grant = Grant(kind, access_token, token_secret, refresh_token, tuple(earlier_access_tokens))
    if grant.is_empty:
        return Outcome(True, TokenStatus.REVOKED, "Nothing left to revoke.")
    try:
        outcome, remaining = revoke_at_x(grant)
        retry_at = None
    except RevokeRateLimited as limited:
        outcome = Outcome(False, TokenStatus.ERROR, limited.message, limited.http_status)
        remaining, retry_at = limited.remaining, limited.reset_at
    if not outcome.ok:
        pending = queue_revocation(
            remaining,
            reason=reason,
            profile=profile,
            token_ref=token.pk if token is not None else None,
            failure=outcome,
            retry_at=retry_at,
        )
        outcome = replace(
            outcome,
            message=f"{outcome.message} Kept to revoke later (pending revocation #{pending.pk}).",
            pending_revocation_id=pending.pk,
        )
    elif token is not None:
        resolve_waiting_for_token(token, outcome.message)
    _announce(outcome, reason, grant.kind, profile=profile)
    return outcome


def end_token_grant(token: XToken, reason: str) -> Outcome:
    """end_grant for everything an XToken row holds (the row itself is left to the caller)."""
    grant = grant_of(token)
    return end_grant(
        grant.kind,
        access_token=grant.access_token,
        token_secret=grant.token_secret,
        refresh_token=grant.refresh_token,
        earlier_access_tokens=grant.earlier_access_tokens,
        profile=token.profile,
        reason=reason,
        token=token,
    )


def revoke_at_x(grant: Grant) -> tuple[Outcome, Grant]:
    """Ask X to revoke each token of the grant; what happened, and what is still alive.

    OAuth 2.0 revokes the current access token, the refresh token and every replaced
    access token X may still honour: X ends only the token it is handed. It stops at
    the first refusal (the rest would be refused too); a 429 raises RevokeRateLimited
    carrying the tokens not yet revoked, for the caller to keep.
    """
    if not grant.is_readable:
        return Outcome(False, TokenStatus.UNREADABLE, crypto.UNREADABLE_MESSAGE), grant
    if grant.kind == TokenKind.OAUTH1:
        return _revoke_oauth1(grant)
    return _revoke_oauth2(grant)


def _revoke_oauth1(grant: Grant) -> tuple[Outcome, Grant]:
    try:
        x_client.revoke_oauth1(grant.access_token, grant.token_secret)
    except XTokenInvalid:
        return Outcome(True, TokenStatus.REVOKED, ALREADY_GONE_MESSAGE, 200), Grant(grant.kind)
    except XRateLimited as limited:
        raise RevokeRateLimited(limited, grant) from limited
    except XError as error:
        return _refused(error), grant
    return Outcome(True, TokenStatus.REVOKED, REVOKED_MESSAGE, 200), Grant(grant.kind)


def _revoke_oauth2(grant: Grant) -> tuple[Outcome, Grant]:
    remaining = grant
    steps = [("access_token", grant.access_token), ("refresh_token", grant.refresh_token)]
    steps += [("earlier", earlier) for earlier in grant.earlier_access_tokens]
    for slot, value in steps:
        if not value:
            continue
        try:
            hint = "refresh_token" if slot == "refresh_token" else "access_token"
            x_client.revoke_oauth2(value, hint)
        except XTokenInvalid:
            pass  # X's own word that this token is dead: as good as revoked.
        except XRateLimited as limited:
            raise RevokeRateLimited(limited, remaining) from limited
        except XError as error:
            return _refused(error), remaining
        remaining = _without(remaining, slot, value)
    return Outcome(True, TokenStatus.REVOKED, REVOKED_MESSAGE, 200), remaining


def _without(grant: Grant, slot: str, value: str) -> Grant:
    if slot == "earlier":
        return replace(
            grant,
            earlier_access_tokens=tuple(t for t in grant.earlier_access_tokens if t != value),
        )
    return replace(grant, **{slot: ""})


def _refused(error: XError) -> Outcome:
    return Outcome(False, TokenStatus.ERROR, error.message, error.http_status)


# The pending list --------------------------------------------------------------------


def queue_revocation(
    grant: Grant,
    *,
    reason: str,
    profile: Profile | None = None,
    token_ref: int | None = None,
    failure: Outcome | None = None,
    retry_at: datetime | None = None,
) -> PendingRevocation:
    """Keep the grant, encrypted, until X confirms it revoked; one row per grant.

    A grant already waiting (same token row, same access token) is updated rather
    than queued twice: a token deleted in a cascade can be seen twice, and staff
    may press Revoke again while X is still refusing.
    """
    now = timezone.now()
    pending = _waiting_for(token_ref, grant) or PendingRevocation(
        kind=grant.kind, token_ref=token_ref, reason=reason[:200]
    )
    pending.access_token = grant.access_token
    pending.token_secret = grant.token_secret
    pending.refresh_token = grant.refresh_token
    pending.earlier_access_tokens = _dump_tokens(grant.earlier_access_tokens)
    pending.token_hint = _hint(grant)
    if profile is not None:
        pending.x_user_id = profile.x_user_id or ""
        pending.screen_name = profile.screen_name
    if failure is not None:
        pending.attempts += 1
        pending.last_error = failure.message
        pending.last_http_status = failure.http_status
        pending.next_attempt_at = max(retry_at or now, now + backoff(pending.attempts))
    else:
        pending.next_attempt_at = now
    pending.save()
    transaction.on_commit(_schedule_retries)
    logger.warning(
        "Grant of %s kept as pending revocation %s: %s",
        pending.screen_name or "an account",
        pending.pk,
        pending.last_error or reason,
    )
    return pending


def _waiting_for(token_ref: int | None, grant: Grant) -> PendingRevocation | None:
    if token_ref is None:
        return None
    waiting = PendingRevocation.objects.filter(token_ref=token_ref, resolved_at__isnull=True)
    for pending in waiting:
        if pending.access_token == grant.access_token and pending.kind == grant.kind:
            return pending
    return None


def _hint(grant: Grant) -> str:
    return hint_of(grant.access_token or grant.refresh_token)


def _dump_tokens(tokens: tuple) -> object:
    if len(tokens) == 1 and crypto.is_unreadable(tokens[0]):
        return tokens[0]
    return json.dumps(list(tokens)) if tokens else ""


def _load_tokens(stored: object) -> tuple:
    if not stored:
        return ()
    if crypto.is_unreadable(stored):
        return (stored,)
    return tuple(json.loads(stored))


def grant_of_pending(pending: PendingRevocation) -> Grant:
    return Grant(
        kind=pending.kind,
        access_token=pending.access_token,
        token_secret=pending.token_secret,
        refresh_token=pending.refresh_token,
        earlier_access_tokens=_load_tokens(pending.earlier_access_tokens),
    )


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes after each failure, never more than six hours."""
    if attempts <= 0:
        return timedelta(0)
    return min(FIRST_RETRY * (2 ** min(attempts - 1, 20)), LONGEST_WAIT)


def due_revocations():
    return PendingRevocation.objects.filter(
        resolved_at__isnull=True, next_attempt_at__lte=timezone.now()
    ).order_by("next_attempt_at", "pk")


@dataclass(frozen=True)
class RetrySummary:
    attempted: int
    revoked: int
    failed: int


def retry_due_revocations(limit: int | None = None) -> RetrySummary:
    """Try every pending revocation that is due; what workers and cron call."""
    attempted = revoked = 0
    ids = list(due_revocations().values_list("pk", flat=True)[:limit])
    for pk in ids:
        outcome = attempt_pending(pk)
        if outcome is None:
            continue
        attempted += 1
        revoked += outcome.ok
    return RetrySummary(attempted, revoked, attempted - revoked)


def attempt_pending(pk: int) -> Outcome | None:
    """One attempt at one pending revocation, or None if another worker has it or it is done.

    The row is claimed by moving its next attempt a little into the future in one
    conditional UPDATE, so no lock is held while X is called and two workers never
    send the same grant at once.
    """
    now = timezone.now()
    claimed = PendingRevocation.objects.filter(
        pk=pk, resolved_at__isnull=True, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    if not claimed:
        return None
    pending = PendingRevocation.objects.get(pk=pk)
    grant = grant_of_pending(pending)
    retry_at = None
    try:
        outcome, remaining = revoke_at_x(grant)
    except RevokeRateLimited as limited:
        outcome = Outcome(False, TokenStatus.ERROR, limited.message, limited.http_status)
        remaining, retry_at = limited.remaining, limited.reset_at
    if outcome.ok:
        _resolve(pending, outcome)
    else:
        _record_failed_attempt(pending, remaining, outcome, retry_at)
    _announce(
        outcome,
        f"retry of pending revocation #{pending.pk}: {pending.reason}",
        pending.kind,
        pending=pending,
    )
    return outcome


def _resolve(pending: PendingRevocation, outcome: Outcome) -> None:
    """X confirmed: wipe the secrets here, and in the token row it came from if that row
    still holds the same grant (the Revoke action keeps the row while X refuses)."""
    with transaction.atomic():
        if pending.token_ref is not None:
            token = XToken.objects.select_for_update().filter(pk=pending.token_ref).first()
            if token is not None and token.access_token == pending.access_token:
                token.wipe_secrets()
                token.status = TokenStatus.REVOKED
                token.last_error = ""
                token.save()
        pending.access_token = pending.token_secret = pending.refresh_token = ""
        pending.earlier_access_tokens = ""
        pending.attempts += 1
        pending.resolved_at = timezone.now()
        pending.resolution = outcome.message
        pending.last_error = ""
        pending.last_http_status = outcome.http_status
        pending.save()


def _record_failed_attempt(
    pending: PendingRevocation, remaining: Grant, outcome: Outcome, retry_at: datetime | None
) -> None:
    now = timezone.now()
    pending.attempts += 1
    pending.access_token = remaining.access_token
    pending.refresh_token = remaining.refresh_token
    pending.earlier_access_tokens = _dump_tokens(remaining.earlier_access_tokens)
    pending.last_error = outcome.message
    pending.last_http_status = outcome.http_status
    pending.next_attempt_at = max(retry_at or now, now + backoff(pending.attempts))
    pending.save()


def resolve_waiting_for_token(token: XToken, message: str) -> None:
    """The token row's grant was just revoked directly: close what waited for it."""
    for pending in PendingRevocation.objects.filter(token_ref=token.pk, resolved_at__isnull=True):
        _resolve(pending, Outcome(True, TokenStatus.REVOKED, message, 200))


def _announce(
    outcome: Outcome,
    reason: str,
    kind: str,
    *,
    profile: Profile | None = None,
    pending: PendingRevocation | None = None,
) -> None:
    source = pending or profile
    revocation_attempted.send(
        sender=PendingRevocation,
        outcome=outcome,
        reason=reason,
        kind=kind,
        x_user_id=(getattr(source, "x_user_id", "") or "") if source else "",
        screen_name=(getattr(source, "screen_name", "") or "") if source else "",
        pending=pending,
    )


# Deletions -----------------------------------------------------------------------------


@contextmanager
def deletion_reason(reason: str) -> Iterator[None]:
    """Name why tokens deleted inside this block are being given up (admin, command)."""
    reset = _deletion_reason.set(reason)
    try:
        yield
    finally:
        _deletion_reason.reset(reset)


@receiver(pre_delete, sender=XToken, dispatch_uid="accounts.revocation.keep_deleted_grant")
def keep_deleted_grant(sender, instance: XToken, **kwargs) -> None:
    """Whatever deletes a token row, its grant first goes to the pending list.

    Inside the deleting transaction, so the row and its pending revocation commit or
    roll back together; X is asked only after the commit (never for a deletion that
    rolled back). A grant already waiting for this row is not queued twice.
    """
    if not instance.holds_grant:
        return
    grant = grant_of(instance)
    if _waiting_for(instance.pk, grant) is not None:
        return
    profile = Profile.objects.filter(pk=instance.profile_id).first()
    pending = queue_revocation(
        grant, reason=_deletion_reason.get(), profile=profile, token_ref=instance.pk
    )
    _after_commit(pending.pk)


_recent_inline = threading.local()


def _after_commit(pk: int) -> None:
    transaction.on_commit(lambda: _attempt_soon(pk))


def _attempt_soon(pk: int) -> None:
    """Try X as soon as the deletion commits, within a time budget per thread.

    Deleting one person revokes their grants while staff wait (a few milliseconds
    each); deleting thousands, or X hanging until the timeout, would make them wait
    far too long, so once INLINE_BUDGET_SECONDS of calls were spent in the last
    INLINE_WINDOW_SECONDS the rest is left to the workers (already scheduled).
    """
    now = time.monotonic()
    spent = [(end, took) for end, took in _spent_inline() if now - end < INLINE_WINDOW_SECONDS]
    _recent_inline.spent = spent
    if sum(took for _, took in spent) >= INLINE_BUDGET_SECONDS:
        return
    try:
        attempt_pending(pk)
    except Exception:
        # The grant is safe in the pending list; a worker or cron retries it.
        logger.exception("Pending revocation %s: first attempt failed", pk)
    finished = time.monotonic()
    spent.append((finished, finished - now))


def _spent_inline() -> list[tuple[float, float]]:
    return getattr(_recent_inline, "spent", [])


def _schedule_retries() -> None:
    from accounts.tasks import schedule_revocation_retries

    try:
        schedule_revocation_retries()
    except Exception:
        # The grant is stored; cron (`x_tokens retry-revocations`) still reaches it.
        logger.exception("Could not schedule the pending-revocation retries")


@receiver(
    pre_delete, sender=SocialAccount, dispatch_uid="accounts.revocation.end_grant_of_connection"
)
def end_grant_of_connection(sender, instance: SocialAccount, **kwargs) -> None:
    """Removing an X connection (allauth's connections page, the admin, a cascade)
    ends the grant of that sign-in method, which lives on the profile's XToken."""
    kind = SOCIAL_PROVIDER_KINDS.get(instance.provider)
    if kind is None:
        return
    XToken.objects.filter(profile__user_id=instance.user_id, kind=kind).delete()
