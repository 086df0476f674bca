"""Check, refresh and revoke stored X tokens, one at a time, without ever losing one.

The rules every caller (admin actions, bulk jobs, cron commands, "Disconnect X")
relies on:
- a failure never destroys anything: the old token and the profile stay as they were,
  and the token's status and last_error say what happened;
- X saying the token is dead (401, code 89, an invalid refresh token) marks it
  invalid (or expired, when its expiry has passed) but keeps the profile;
- 5xx, timeouts and dropped connections mark it "error" and change nothing else;
- except a refresh X answered too late: X may have spent the refresh token and
  issued a pair we never saw, so the token is marked "needs a new sign-in" at once
  and no later check or refresh pretends otherwise;
- 429 is raised to the caller (XRateLimited), which decides whether to wait;
- a revoke counts only when X confirmed it (accounts.revocation decides what X's
  answers mean); a token X did not confirm revoked is kept and also queued as a
  pending revocation, retried until X confirms;
- a token no configured key decrypts is marked "unreadable" and its ciphertext left
  untouched, never sent to X;
- a refresh holds the row lock while it talks to X, so two refreshes of the same
  single-use refresh token cannot both reach X: the second sees the new pair.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts import crypto, revocation, x_client
from accounts.models import SECRET_COLUMNS, Profile, TokenKind, TokenStatus, XToken
from accounts.outcomes import Outcome
from accounts.profiles import apply_x_user
from accounts.x_client import (
    TokenGrant,
    XAnswerLost,
    XError,
    XRateLimited,
    XTokenInvalid,
    XUser,
)

NEEDS_SIGN_IN_MESSAGE = (
    "X answered a refresh too late: it may have replaced this token with one we never "
    "received. The person must sign in again."
)
LOST_PAIR_MESSAGE = (
    "We revoked every token we held, but X may still honour the pair it issued in a "
    "refresh whose answer never reached us; only the person can end it at X "
    "(Settings, Connected apps)."
)


def store_token(
    profile: Profile,
    kind: str,
    *,
    access_token: str,
    token_secret: str = "",
    refresh_token: str = "",
    expires_in: int | None = None,
    expires_at: datetime | None = None,
    scopes: str = "",
) -> XToken:
    """Keep the token X just issued for this profile and method, replacing any older one.

    One INSERT ... ON CONFLICT (profile, kind) DO UPDATE: the old token is replaced
    without being read (and decrypted) first, and two sign-ins storing at once
    cannot both insert. `expires_at` (as allauth computed it during a sign-in) wins
    over `expires_in`. The returned instance holds what was written; created_at
    and last_refreshed_at, which this call leaves alone, are not read back.
    """
    now = timezone.now()
    token = XToken(
        profile=profile,
        kind=kind,
        scopes=scopes,
        expires_at=expires_at or (now + timedelta(seconds=expires_in) if expires_in else None),
        status=TokenStatus.ACTIVE,
        last_error="",
        last_checked_at=now,
    )
    token.set_secrets(access_token, token_secret, refresh_token)
    XToken.objects.bulk_create(
        [token],
        update_conflicts=True,
        unique_fields=["profile", "kind"],
        update_fields=[
            "access_token",
            "token_secret",
            "refresh_token",
            "token_hint",
            "scopes",
            "expires_at",
            "status",
            "last_error",
            "last_checked_at",
            "updated_at",
        ],
    )
    return token


def _record_failure(token: XToken, error: XError) -> Outcome:
    if isinstance(error, XTokenInvalid):
        token.status = TokenStatus.EXPIRED if token.is_expired else TokenStatus.INVALID
    else:
        token.status = TokenStatus.ERROR
    token.last_error = error.message
    token.last_checked_at = timezone.now()
    token.save(update_fields=["status", "last_error", "last_checked_at", "updated_at"])
    return Outcome(False, token.status, error.message, error.http_status)


def _record_success(token: XToken, x_user: XUser, message: str) -> Outcome:
    apply_x_user(token.profile, x_user)
    token.status = TokenStatus.ACTIVE
    token.last_error = ""
    token.last_checked_at = timezone.now()
    # Only the fields a check changes: a refresh may have stored a new pair since
    # this copy was read, and writing the old, spent one back would lose the account.
    token.save(update_fields=["status", "last_error", "last_checked_at", "updated_at"])
    return Outcome(True, token.status, message, 200)


def _unusable(token: XToken) -> Outcome | None:
    if not token.is_readable:
        return _record_unreadable(token)
    if token.status == TokenStatus.REVOKED or not token.access_token:
        return Outcome(
            False, token.status, "This token was revoked; the person must sign in again."
        )
    if token.status == TokenStatus.NEEDS_SIGN_IN:
        # The old access token may still answer until it expires; a check saying
        # "works" would hide that its grant was (probably) replaced at X.
        return Outcome(False, token.status, NEEDS_SIGN_IN_MESSAGE)
    return None


def _record_unreadable(token: XToken) -> Outcome:
    """A token no configured key decrypts: say so, count it, touch nothing else.

    Its ciphertext stays as it was, so putting the key back makes it usable again.
    """
    token.status = TokenStatus.UNREADABLE
    token.last_error = crypto.UNREADABLE_MESSAGE
    token.save(update_fields=["status", "last_error", "updated_at"])
    return Outcome(False, token.status, crypto.UNREADABLE_MESSAGE)


def check_token(token: XToken) -> Outcome:
    """Ask X whether the token still works; on success refresh the profile too."""
    if refusal := _unusable(token):
        return refusal
    try:
        x_user = x_client.fetch_user(token.kind, token.access_token, token.token_secret)
    except XRateLimited:
        raise
    except XError as error:
        return _record_failure(token, error)
    return _record_success(token, x_user, "Token works; profile updated from X.")


# What a successful refresh changes; the rest of the row is left as it was read.
REFRESHED_FIELDS = [
    *SECRET_COLUMNS,
    "token_hint",
    "scopes",
    "expires_at",
    "status",
    "last_error",
    "last_refreshed_at",
    "last_checked_at",
    "updated_at",
]


def _refreshed_fields(status_before: str, status_after: str) -> list[str]:
    """REFRESHED_FIELDS, without the status when it stays as the row holds it.

    The row was read under this transaction's lock, so its status is current: an
    unchanged one need not be written, and then the counted figures (tallies) have
    nothing to move and skip their own locked read of the row, the largest share of
    a bulk refresh's CPU after the call to X.
    """
    if status_before == status_after:
        return [name for name in REFRESHED_FIELDS if name != "status"]
    return REFRESHED_FIELDS


def refresh_token(token: XToken) -> Outcome:
    """OAuth 2.0: trade the refresh token for a new pair. OAuth 1.0a: re-verify.

    OAuth 1.0a tokens never expire, so "refresh" means confirming the token and
    refreshing the profile data from X.
    """
    if token.kind == TokenKind.OAUTH1:
        return check_token(token)
    requested_at = timezone.now()
    with transaction.atomic():
        # The token row alone: joining the profile would lock it too (FOR UPDATE locks
        # every joined row) and read columns a refresh never uses.
        locked = XToken.objects.select_for_update().get(pk=token.pk)
        if refusal := _refresh_refusal(locked, requested_at):
            # Someone else may have refreshed while we waited for the lock; their pair
            # is ours, and the caller's copy must hold it too, not the pair X spent.
            _copy_state(locked, token)
            return refusal
        try:
            grant = x_client.refresh_oauth2(locked.refresh_token)
        except XRateLimited:
            raise
        except XError as error:
            return _record_refresh_failure(locked, error)
        status_before = locked.status
        _apply_grant(locked, grant)
        locked.save(update_fields=_refreshed_fields(status_before, locked.status))
    _copy_state(locked, token)
    return Outcome(True, token.status, REFRESHED_MESSAGE, 200)


REFRESHED_MESSAGE = "Refreshed; X issued a new token pair."
ALREADY_REFRESHED_FOR_JOB = "Refreshed once already for this job; not exchanged again."


def _refresh_refusal(
    locked: XToken, requested_at: datetime, done_since: datetime | None = None
) -> Outcome | None:
    """Why a locked OAuth 2.0 token is not to be exchanged now, if it is not."""
    refreshed = locked.last_refreshed_at
    if refreshed and refreshed >= requested_at:
        return Outcome(True, locked.status, "Already refreshed a moment ago.", 200)
    if refreshed and done_since and refreshed >= done_since:
        return Outcome(True, locked.status, ALREADY_REFRESHED_FOR_JOB, 200)
    if refusal := _unusable(locked):
        return refusal
    if not locked.refresh_token:
        return Outcome(
            False, locked.status, "No refresh token: X only issues one with offline.access."
        )
    return None


def _record_refresh_failure(locked: XToken, error: XError) -> Outcome:
    if isinstance(error, XAnswerLost):
        return _record_answer_lost(locked, error)
    return _record_failure(locked, error)


def _apply_grant(locked: XToken, grant: TokenGrant) -> None:
    """Put the pair X just issued on the locked row, in memory; the caller saves it."""
    locked.remember_replaced_access_token(locked.access_token, locked.expires_at)
    locked.set_secrets(grant.access_token, "", grant.refresh_token or locked.refresh_token)
    locked.scopes = grant.scope or locked.scopes
    locked.expires_at = (
        timezone.now() + timedelta(seconds=grant.expires_in) if grant.expires_in else None
    )
    locked.status = TokenStatus.ACTIVE
    locked.last_error = ""
    locked.last_refreshed_at = timezone.now()
    locked.last_checked_at = locked.last_refreshed_at
    locked.updated_at = locked.last_refreshed_at


class RefreshBatch:
    """OAuth 2.0 tokens locked together for one round of exchanges at X.

    refresh_token's rules, for many tokens at once (bulk jobs): one SELECT ... FOR
    UPDATE locks the whole batch, the caller sends `to_exchange` to X however it
    likes (concurrently) and hands every answer to `settle`, and the new pairs are
    stored in one statement when the batch's transaction ends (see `refresh_batch`).
    Until then nothing is committed, so a process killed meanwhile loses the pairs
    X issued for the whole batch, as refresh_token loses the one in flight: keep
    batches as small as the calls in flight.
    """

    def __init__(self, token_ids: Sequence[int], done_since: Mapping[int, datetime]) -> None:
        requested_at = timezone.now()
        # In id order, so batches that share tokens (two jobs over one selection)
        # take their locks in the same order and wait for each other, never deadlock.
        rows = XToken.objects.select_for_update().filter(pk__in=token_ids).order_by("pk")
        self.locked = {token.pk: token for token in rows}
        self.outcomes: dict[int, Outcome] = {}
        self.to_exchange: dict[int, str] = {}
        self.rate_limited: dict[int, XRateLimited] = {}
        self._refreshed: list[tuple[XToken, str]] = []
        for pk, token in self.locked.items():
            refusal = _refresh_refusal(token, requested_at, done_since.get(pk))
            if refusal is not None:
                self.outcomes[pk] = refusal
            else:
                self.to_exchange[pk] = token.refresh_token

    def settle(self, token_id: int, answer: TokenGrant | XError) -> None:
        """Take X's answer to one exchange of `to_exchange`: a new pair, or the error.

        A 429 changes nothing (X spent nothing): the token is left in `rate_limited`
        for the caller to send again after X's reset.
        """
        locked = self.locked[token_id]
        if isinstance(answer, XRateLimited):
            self.rate_limited[token_id] = answer
        elif isinstance(answer, XError):
            self.outcomes[token_id] = _record_refresh_failure(locked, answer)
        else:
            status_before = locked.status
            _apply_grant(locked, answer)
            self._refreshed.append((locked, status_before))
            self.outcomes[token_id] = Outcome(True, locked.status, REFRESHED_MESSAGE, 200)

    def store(self) -> None:
        """Write every new pair in one statement.

        An upsert of rows that exist and are locked by this transaction, so it only
        ever updates: Django's INSERT ... ON CONFLICT DO UPDATE is one plain list of
        values, where bulk_update builds a CASE per column and row and costs more
        than the calls to X. Tokens whose status stays (nearly all) leave the counted
        figures alone, so they are written past the counting manager; a status that
        changes goes through it, a row at a time.
        """
        same = [token for token, before in self._refreshed if before == token.status]
        if same:
            XToken._base_manager.bulk_create(
                same,
                update_conflicts=True,
                unique_fields=["id"],
                update_fields=_refreshed_fields(TokenStatus.ACTIVE, TokenStatus.ACTIVE),
            )
        for token, status_before in self._refreshed:
            if status_before != token.status:
                token.save(update_fields=_refreshed_fields(status_before, token.status))


@contextmanager
def refresh_batch(
    token_ids: Sequence[int], *, done_since: Mapping[int, datetime] | None = None
) -> Iterator[RefreshBatch]:
    """Lock OAuth 2.0 tokens for a RefreshBatch; store its new pairs when the block ends.

    `done_since` names tokens that count as refreshed already if they were at or
    after the given time (a bulk job's items taken over from a stopped runner, which
    may have stored its exchange before it stopped). If the block raises, nothing
    of the batch is stored.
    """
    with transaction.atomic():
        batch = RefreshBatch(token_ids, done_since or {})
        yield batch
        batch.store()


def _record_answer_lost(token: XToken, error: XAnswerLost) -> Outcome:
    """The refresh reached X but its answer did not reach us: assume the pair was replaced.

    The old pair is kept (its access token may still be revoked until it expires),
    but the token is no longer offered for checks or refreshes: the next refresh
    would spend nothing and only mark it invalid, hiding what happened.
    """
    token.status = TokenStatus.NEEDS_SIGN_IN
    token.last_error = f"{error.message}. {NEEDS_SIGN_IN_MESSAGE}"
    token.last_checked_at = timezone.now()
    token.save(update_fields=["status", "last_error", "last_checked_at", "updated_at"])
    return Outcome(False, token.status, token.last_error)


def _copy_state(source: XToken, target: XToken) -> None:
    """Let the caller's instance see what the locked copy saved."""
    for field in XToken._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))


def revoke_token(token: XToken) -> Outcome:
    """Revoke at X first; only when X has let go (or never knew it) wipe it here.

    If X does not confirm (unreachable, or refusing the app: a 401/403 from a revoke
    endpoint is about the client, not the token) the token is kept, marked with the
    failure, and also put on the pending-revocations list, so the workers keep
    trying until X confirms. The row lock (as in refresh_token) makes a concurrent
    refresh finish first, so what is revoked at X is the pair actually stored, not
    one the refresh just replaced. A 429 is raised to the caller, as everywhere.
    """
    with transaction.atomic():
        locked = XToken.objects.select_for_update().select_related("profile").get(pk=token.pk)
        outcome = _revoke_locked(locked)
    _copy_state(locked, token)
    return outcome


def _revoke_locked(token: XToken) -> Outcome:
    if not token.is_readable:
        return _record_unreadable(token)
    if not token.holds_grant:
        if token.status == TokenStatus.NEEDS_SIGN_IN:
            return Outcome(True, token.status, LOST_PAIR_MESSAGE)
        token.status = TokenStatus.REVOKED
        token.save(update_fields=["status", "updated_at"])
        return Outcome(True, token.status, "Already revoked.")
    grant = revocation.grant_of(token)
    outcome, _ = revocation.revoke_at_x(grant)
    if not outcome.ok:
        pending = revocation.queue_revocation(
            grant,
            reason="Revoke action: X did not confirm",
            profile=token.profile,
            token_ref=token.pk,
            failure=outcome,
        )
        if token.status != TokenStatus.NEEDS_SIGN_IN:
            token.status = TokenStatus.ERROR
        token.last_error = outcome.message
        token.last_checked_at = timezone.now()
        token.save(update_fields=["status", "last_error", "last_checked_at", "updated_at"])
        return Outcome(
            False,
            token.status,
            f"{outcome.message} Kept here and queued to revoke again "
            f"(pending revocation #{pending.pk}).",
            outcome.http_status,
            pending.pk,
        )
    if token.status == TokenStatus.NEEDS_SIGN_IN:
        # Never "revoked": X may hold a pair from the refresh whose answer was lost.
        token.wipe_secrets()
        token.last_checked_at = timezone.now()
        token.save()
        revocation.resolve_waiting_for_token(token, LOST_PAIR_MESSAGE)
        return Outcome(True, token.status, f"{outcome.message} {LOST_PAIR_MESSAGE}", 200)
    message = (
        "X no longer knew this token; deleted here."
        if outcome.message == revocation.ALREADY_GONE_MESSAGE
        else "Revoked at X and deleted here."
    )
    token.wipe_secrets()
    token.status = TokenStatus.REVOKED
    token.last_error = ""
    token.last_checked_at = timezone.now()
    token.save()
    revocation.resolve_waiting_for_token(token, message)
    return Outcome(True, token.status, message, 200)
